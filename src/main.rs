use std::process::ExitCode;

use clap::Parser;
use plane_orch::{cli::Cli, error::Kind};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match plane_orch::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Error texts quote Plane's answers and ticket text: inert for the terminal.
            eprintln!("error: {}", plane_orch::term::inert(&format!("{err:#}")));
            ExitCode::from(u8::try_from(Kind::of(&err).exit_code()).unwrap_or(1))
        }
    }
}
