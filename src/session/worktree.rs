//! The session's workdir: a git worktree on its own branch per ticket, or the
//! repository itself when worktrees are off. Making one twice reuses the first, so an approve
//! that failed later leaves nothing orphaned: the next try picks it up.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::error::Error;
use crate::git::Git;
use crate::session::made::{self, Made};
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

/// How long one git call may take: making a worktree checks out every file of the
/// repository, which takes a while on a large one, but a git that runs longer is stuck (a
/// lock held by another git, a credential prompt, a hung filesystem).
const GIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

fn run_git(cmd: &mut Command, what: &str) -> Result<std::process::Output> {
    // Never a prompt: there is nobody to answer it.
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    crate::process::run(cmd, GIT_DEADLINE).map_err(|e| {
        let hint = match e {
            crate::process::RunError::Spawn(_) => "install git or put it on PATH",
            _ => "look for a stuck git process or a stale .git/index.lock",
        };
        Error::Session(format!("cannot run git to {what} ({e}): {hint}")).into()
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
        let made = add_worktree(repo, &path, &branch)?;
        record_made(config, id, &path, &branch, made);
    }
    copy_files(config, &path)?;
    Ok(Workdir {
        path: path.canonicalize().unwrap_or(path),
        branch: Some(branch),
    })
}

/// Writes down what was made, so `cleanup` may later remove it and nothing else. A failure to
/// write is logged, not fatal: cleanup then leaves the worktree alone, which is safe.
fn record_made(config: &Config, id: &TicketId, path: &Path, branch: &str, made_branch: bool) {
    let repo = Git::at(&config.automation.repo_path);
    let mut made = Made::new(id.clone());
    made.worktree = Some(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
    made.branch = Some(branch.to_string());
    made.made_worktree = true;
    made.made_branch = made_branch;
    made.base_branch = repo.current_branch();
    made.base = if made_branch {
        repo.commit_of("HEAD").ok().flatten()
    } else {
        repo.run(&["merge-base", "HEAD", &format!("refs/heads/{branch}")])
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Err(e) = made::append(&made::path_for(&config.state.path), &made) {
        log::warn!("{id}: cannot record the worktree it was given: {e:#}");
    }
}

/// Makes the worktree; whether it made the branch too (`false`: the branch was there).
fn add_worktree(repo: &Path, path: &Path, branch: &str) -> Result<bool> {
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
        return Ok(!exists);
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
