//! The `sizer` command: parses the command line and dispatches to `cli/`, one file per subcommand.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Resize-on-demand image origin")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve images over HTTP (the default with no subcommand).
    Serve(cli::serve::ServeArgs),
    /// Resize one file with exactly the server's pipeline.
    Resize(cli::resize::ResizeArgs),
    /// Print a path signed with the first of `signing.keys`.
    Sign(cli::sign::SignArgs),
    /// Make the configured variants (`[pregenerate] variants`) of every original in the store.
    Pregenerate(cli::pregenerate::PregenerateArgs),
    /// Delete every variant of one original.
    Purge(cli::purge::PurgeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => cli::serve::run(cli::serve::ServeArgs::default()),
        Some(Command::Serve(args)) => cli::serve::run(args),
        Some(Command::Resize(args)) => cli::resize::run(args),
        Some(Command::Sign(args)) => cli::sign::run(args),
        Some(Command::Pregenerate(args)) => cli::pregenerate::run(args),
        Some(Command::Purge(args)) => cli::purge::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sizer: {message}");
            ExitCode::FAILURE
        }
    }
}
