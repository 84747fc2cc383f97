//! The session's workdir: a git worktree on its own branch per ticket, or the
//! repository itself when worktrees are off. Making one twice reuses the first, so an approve
//! that failed later leaves nothing orphaned: the next try picks it up.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::error::Error;
use crate::ticket::TicketId;

/// Where a session works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workdir {
    /// Absolute, symlinks resolved (Claude Code keys its trust entries by the real path).
    pub path: PathBuf,
    /// The worktree's branch; none when the session works in `repo_path` itself.
    pub branch: Option<String>,
}

/// `<branch_prefix><id-lowercase>`, e.g. `claude/cslog-123`.
#[must_use]
pub fn branch_name(config: &Config, id: &TicketId) -> String {
    format!(
        "{}{}",
        config.automation.branch_prefix,
        id.as_str().to_ascii_lowercase()
    )
}

/// `<worktree_dir>/<ID>`.
#[must_use]
pub fn worktree_path(config: &Config, id: &TicketId) -> PathBuf {
    config.automation.worktree_dir.join(id.as_str())
}

fn git(repo: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo);
    cmd
}

fn run_git(cmd: &mut Command, what: &str) -> Result<std::process::Output> {
    cmd.output().map_err(|e| {
        Error::Session(format!(
            "cannot run git to {what} ({e}): install git or put it on PATH"
        ))
        .into()
    })
}

/// Makes (or reuses) the ticket's workdir and copies the `worktree_copy` files into it.
///
/// # Errors
/// `Error::Session` saying what git refused and what to fix.
pub fn prepare(config: &Config, id: &TicketId) -> Result<Workdir> {
    let repo = &config.automation.repo_path;
    if !config.automation.worktrees {
        if !repo.is_dir() {
            return Err(Error::Session(format!(
                "the repository {} does not exist: fix automation.repo_path",
                repo.display()
            ))
            .into());
        }
        return Ok(Workdir {
            path: repo.canonicalize().unwrap_or_else(|_| repo.clone()),
            branch: None,
        });
    }
    let path = worktree_path(config, id);
    let branch = branch_name(config, id);
    if path.join(".git").exists() {
        log::info!("reusing the worktree {}", path.display());
    } else {
        add_worktree(repo, &path, &branch)?;
    }
    copy_files(config, &path)?;
    Ok(Workdir {
        path: path.canonicalize().unwrap_or(path),
        branch: Some(branch),
    })
}

fn add_worktree(repo: &Path, path: &Path, branch: &str) -> Result<()> {
    let probe = run_git(
        git(repo).args(["rev-parse", "--git-dir"]),
        "read the repository",
    )?;
    if !probe.status.success() {
        return Err(Error::Session(format!(
            "{} is not a git repository ({}): fix automation.repo_path, or set automation.worktrees: false",
            repo.display(),
            String::from_utf8_lossy(&probe.stderr).trim()
        ))
        .into());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the worktree folder {}", parent.display()))?;
    }
    // A worktree folder deleted by hand is still registered; prune forgets it so the add works.
    let _ = run_git(git(repo).args(["worktree", "prune"]), "prune worktrees");
    let exists = run_git(
        git(repo).args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ]),
        "look up the branch",
    )?
    .status
    .success();
    let mut cmd = git(repo);
    cmd.args(["worktree", "add"]);
    if exists {
        cmd.arg(path).arg(branch);
    } else {
        cmd.args(["-b", branch]).arg(path).arg("HEAD");
    }
    let out = run_git(&mut cmd, "add a worktree")?;
    if out.status.success() || path.join(".git").exists() {
        log::info!("made the worktree {} on branch {branch}", path.display());
        return Ok(());
    }
    Err(Error::Session(format!(
        "git could not make the worktree {} on branch {branch}: {} (does the repository have a commit? \
         is the branch checked out elsewhere? remove the folder or the branch and approve again)",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
    .into())
}

fn copy_files(config: &Config, worktree: &Path) -> Result<()> {
    for name in &config.automation.worktree_copy {
        let from = config.automation.repo_path.join(name);
        let to = worktree.join(name);
        if !from.is_file() || to.exists() {
            continue;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::copy(&from, &to).with_context(|| {
            format!(
                "cannot copy {} into the worktree {}",
                from.display(),
                worktree.display()
            )
        })?;
    }
    Ok(())
}
