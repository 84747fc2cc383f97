use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionShell, CompletionsArgs, GlobalArgs};

use super::Run;

/// The binary's name, as the shells see it.
const BIN: &str = "plane-orch";

/// The completion script for `shell`.
///
/// clap_complete's bash script names the state of each subcommand after the binary with its
/// hyphens turned into `__` where it sets that state (`plane__orch__subcmd__list`), but into
/// `__subcmd__` where it matches it (`plane__subcmd__orch__subcmd__list`), so for a binary
/// name with a hyphen nothing past the first word ever completes (clap-rs/clap#6421). The
/// matching side is renamed to the setting side's spelling.
#[must_use]
pub fn script(shell: CompletionShell) -> String {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    if shell == Shell::Bash {
        let set = BIN.replace('-', "__");
        let matched = BIN.replace('-', "__subcmd__");
        return text.replace(&matched, &set);
    }
    text
}

impl Run for CompletionsArgs {
    fn run(&self, _global: &GlobalArgs) -> Result<()> {
        std::io::stdout()
            .write_all(script(self.shell).as_bytes())
            .context("cannot write to stdout")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bash_state_that_is_matched_is_also_set() {
        let text = script(CompletionShell::Bash);
        assert!(!text.contains("plane__subcmd__orch"), "{text}");
        let set: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("cmd=\""))
            .filter_map(|l| l.strip_suffix('"'))
            .collect();
        let matched: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("plane__orch") && l.ends_with(')') && !l.contains(','))
            .map(|l| l.trim_end_matches(')'))
            .collect();
        assert!(
            matched.contains(&"plane__orch__subcmd__list"),
            "{matched:?}"
        );
        for m in &matched {
            assert!(set.contains(m), "{m} is matched but never set");
        }
    }
}
