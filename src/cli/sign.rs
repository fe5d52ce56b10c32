//! `sizer sign [--config FILE] [--exp UNIX] PATH`: prints the signed path, `/s/<signature>/...`, with the
//! first of `signing.keys`, exactly as the server verifies it.

use std::path::PathBuf;

use clap::Args;
use sizer::config::{Config, Overrides};
use sizer::options::signing::Signer;

#[derive(Args)]
pub struct SignArgs {
    /// TOML configuration file holding `[signing] keys` (or set SIZER_SIGNING__KEYS).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Expiry in unix seconds: adds `exp/UNIX` to the signed path (410 after it).
    #[arg(long)]
    exp: Option<u64>,
    /// The path to sign, as clients will send it (percent-encoded), e.g. /w/300/images/x.jpg.
    path: String,
}

pub fn run(args: SignArgs) -> Result<(), String> {
    let config =
        Config::load(args.config.as_deref(), &Overrides::default()).map_err(|e| e.to_string())?;
    let signer = Signer::from_hex(&config.signing.keys)?;
    println!("{}", signed_path(&signer, &args.path, args.exp)?);
    Ok(())
}

/// `/s/<sig>[/exp/<t>]<path>`.
fn signed_path(signer: &Signer, path: &str, exp: Option<u64>) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("the path must start with '/': {path}"));
    }
    if path.starts_with("/s/") {
        return Err("the path is already signed".into());
    }
    let rest = match exp {
        Some(t) => format!("/exp/{t}{path}"),
        None => path.to_string(),
    };
    let signature = signer
        .sign(&rest)
        .ok_or("no signing keys: set [signing] keys in the config file or SIZER_SIGNING__KEYS")?;
    Ok(format!("/s/{signature}{rest}"))
}
