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
pub mod git;
pub mod html;
pub mod lock;
pub mod logging;
pub mod notify;
pub mod plane;
pub mod process;
pub mod progress;
pub mod server;
pub mod session;
pub mod signature;
pub mod store;
pub mod term;
pub mod ticket;
pub mod view;
pub mod workflow;

use anyhow::Result;

/// Whether `err` is a write to a closed pipe (the reader of stdout exited early).
#[must_use]
pub fn is_closed_stdout(err: &anyhow::Error) -> bool {
    let broken = Some(std::io::ErrorKind::BrokenPipe);
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            == broken
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == broken
    })
}

/// Makes a closed stdout end the process quietly with status 0, like a Unix tool, instead
/// of a panic: `print!` panics when its write fails, and the reader leaving early (`| head`)
/// is no failure of ours. Any other panic is reported as before.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Runs one command line.
///
/// # Errors
/// Whatever the command fails with; [`error::Kind::of`] gives its exit code.
pub fn run(cli: cli::Cli) -> Result<()> {
    logging::init(&cli.global);
    // Before anything can replace the binary under a long-running command.
    session::resolve_exe();
    let result = cmd::dispatch(cli);
    if let Err(err) = &result {
        logging::record_failure(err);
    }
    result
}
