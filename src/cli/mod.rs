//! The `sizer` subcommands, one file each; `main.rs` only parses and dispatches.

pub mod pregenerate;
pub mod purge;
pub mod resize;
pub mod serve;
pub mod sign;
pub mod store_args;
