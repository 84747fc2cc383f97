use std::process::ExitCode;

use clap::Parser;
use plane_orch::{cli::Cli, error::Kind};

fn main() -> ExitCode {
    plane_orch::quiet_on_closed_stdout();
    let cli = Cli::parse();
    match plane_orch::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`plane-orch list | head -1`): it has what it wanted.
        Err(err) if plane_orch::is_closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // Error texts quote Plane's answers and ticket text: inert for the terminal.
            eprintln!("error: {}", plane_orch::term::inert(&format!("{err:#}")));
            ExitCode::from(u8::try_from(Kind::of(&err).exit_code()).unwrap_or(1))
        }
    }
}
