//! plane-orch: Plane tickets in, supervised Claude Code sessions out, a person approving
//! at both ends. `main.rs` parses the command line and calls [`run`]; everything else lives
//! in the modules below.

pub mod activity;
pub mod app;
pub mod cli;
pub mod cmd;
pub mod completion;
pub mod config;
pub mod doctor;
pub mod error;
pub mod logging;
pub mod notify;
pub mod plane;
pub mod progress;
pub mod server;
pub mod session;
pub mod store;
pub mod ticket;
pub mod view;
pub mod workflow;

use anyhow::Result;

/// Runs one command line.
///
/// # Errors
/// Whatever the command fails with; [`error::Kind::of`] gives its exit code.
pub fn run(cli: cli::Cli) -> Result<()> {
    logging::init(&cli.global);
    let result = cmd::dispatch(cli);
    if let Err(err) = &result {
        logging::record_failure(err);
    }
    result
}
