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
            eprintln!("error: {err:#}");
            ExitCode::from(u8::try_from(Kind::of(&err).exit_code()).unwrap_or(1))
        }
    }
}
