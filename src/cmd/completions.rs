use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell, CompletionsArgs, GlobalArgs};

use super::Run;

impl Run for CompletionsArgs {
    fn run(&self, _global: &GlobalArgs) -> Result<()> {
        let shell = match self.shell {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        };
        let mut cmd = Cli::command();
        clap_complete::generate(shell, &mut cmd, "plane-orch", &mut std::io::stdout());
        Ok(())
    }
}
