//! `cleanup`: what done and removed tickets left behind — sessions still running, worktrees,
//! branches, trust entries, lock files — removed only when no work can be lost.
//!
//! Only what plane-orch wrote down as made by it (`session::made`) is ever looked at. A
//! worktree goes only when it has no uncommitted or untracked changes (the `worktree_copy`
//! files plane-orch copied in, unchanged, aside); a branch only when each of its commits is
//! on a remote or patch-equivalent to the base branch (`git cherry`, or the whole branch
//! squashed into one commit there). Anything else is kept with the reason. A branch is
//! deleted only if it still points where it pointed when it was checked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::App;
use crate::git::Git;
use crate::session::{self, claude, made, made::Made};
use crate::ticket::{now, SessionInfo, Status, Ticket, TicketId};

/// How to clean up.
#[derive(Debug, Clone, Default)]
pub struct CleanupOptions {
    /// Change nothing; say what would be done.
    pub dry_run: bool,
    /// Only tickets done or removed at least this many days ago.
    pub older_than_days: u32,
    /// Write a bundle of each branch here before deleting it.
    pub bundle_dir: Option<PathBuf>,
}

/// What cleanup did (or would do) for one ticket.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TicketCleanup {
    pub ticket: String,
    /// `done` or `removed`.
    pub was: String,
    /// What was removed (or would be, in a dry run).
    pub removed: Vec<String>,
    /// What was kept, each with the reason.
    pub kept: Vec<String>,
    /// The bundle written before the branch was deleted.
    pub bundle: Option<PathBuf>,
    /// Bytes of disk the removed worktree used.
    pub freed_bytes: u64,
}

/// What a cleanup run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    pub dry_run: bool,
    pub tickets: Vec<TicketCleanup>,
    pub freed_bytes: u64,
}

/// A ticket whose leftovers may go, with what is known of it.
struct Candidate {
    id: TicketId,
    was: &'static str,
    since: DateTime<Utc>,
    session: Option<SessionInfo>,
    made: Option<Made>,
}

/// Runs cleanup.
///
/// # Errors
/// The state file or the record of what plane-orch made cannot be read.
pub fn cleanup(app: &App, opts: &CleanupOptions) -> Result<CleanupReport> {
    let mut report = CleanupReport {
        dry_run: opts.dry_run,
        ..CleanupReport::default()
    };
    let oldest = now() - chrono::Duration::days(i64::from(opts.older_than_days));
    let mut live: Option<HashSet<String>> = None;
    for c in candidates(app)? {
        let mut out = TicketCleanup {
            ticket: c.id.to_string(),
            was: c.was.to_string(),
            ..TicketCleanup::default()
        };
        if c.since > oldest {
            continue;
        }
        // Approve and restart hold this claim while they make a workdir: a ticket queued and
        // approved again meanwhile is left alone.
        let _claim = if opts.dry_run {
            None
        } else {
            match super::op::lease(app, &c.id, "being cleaned up") {
                Ok(claim) => Some(claim),
                Err(e) => {
                    out.kept.push(format!("everything: {e:#}"));
                    report.tickets.push(out);
                    continue;
                }
            }
        };
        if !opts.dry_run && !still_candidate(app, &c)? {
            continue;
        }
        stop_session(app, &c, opts, &mut live, &mut out);
        if let Some(m) = &c.made {
            clean_made(app, &c.id, m, opts, &mut out);
        }
        report.freed_bytes += out.freed_bytes;
        if !out.removed.is_empty() || !out.kept.is_empty() {
            report.tickets.push(out);
        }
    }
    Ok(report)
}

/// Done tickets (in the queue or archived) and removed ones plane-orch made something for.
fn candidates(app: &App) -> Result<Vec<Candidate>> {
    let state = app.store.load()?;
    let mut made = made::load(&made::path_for(app.store.path()))?;
    let mut out = Vec::new();
    for t in state.tickets.values() {
        if t.status == Status::Done {
            out.push(done(t, made.remove(&t.id)));
        } else {
            made.remove(&t.id);
        }
    }
    if made.is_empty() {
        return Ok(out);
    }
    for (id, m) in made {
        // Through the archive's index: one ticket read for each, not the whole archive.
        let archived = if state.archived.contains(&id) {
            app.store.find_archived(&id)?
        } else {
            None
        };
        match &archived {
            Some(t) => out.push(done(t, Some(m))),
            _ => out.push(Candidate {
                since: m.removed_at.unwrap_or(m.at),
                id,
                was: "removed",
                session: None,
                made: Some(m),
            }),
        }
    }
    Ok(out)
}

fn done(t: &Ticket, made: Option<Made>) -> Candidate {
    Candidate {
        id: t.id.clone(),
        was: "done",
        since: t.done_at.unwrap_or_else(|| t.updated_at()),
        session: t.session.as_deref().cloned(),
        made,
    }
}

/// Re-checked with the claim held: the ticket is still done, or still gone.
fn still_candidate(app: &App, c: &Candidate) -> Result<bool> {
    let state = app.store.load()?;
    Ok(match state.tickets.get(&c.id) {
        Some(t) => t.status == Status::Done,
        None => true,
    })
}

fn stop_session(
    app: &App,
    c: &Candidate,
    opts: &CleanupOptions,
    live: &mut Option<HashSet<String>>,
    out: &mut TicketCleanup,
) {
    let config = &app.config;
    let info = c.session.clone().or_else(|| {
        // A removed ticket's session, by the name plane-orch gives it.
        c.made.as_ref().map(|_| SessionInfo {
            name: session::session_name(config, &c.id),
            backend: config.sessions.backend.as_str().to_string(),
            workdir: String::new(),
            branch: None,
            agent_session: None,
            started_at: None,
        })
    });
    let Some(info) = info else {
        return;
    };
    // Only the configured backend is asked which sessions run.
    if info.backend != config.sessions.backend.as_str() {
        return;
    }
    let names = live.get_or_insert_with(|| session::live_sessions(config).unwrap_or_default());
    if !names.contains(&info.name) {
        return;
    }
    if opts.dry_run {
        out.removed.push(format!("session {}", info.name));
        return;
    }
    match session::kill(config, &info) {
        Ok(()) => out.removed.push(format!("session {}", info.name)),
        Err(e) => out.kept.push(format!("session {}: {e:#}", info.name)),
    }
}

/// The worktree, branch, trust entry and lock file plane-orch made for the ticket.
fn clean_made(app: &App, id: &TicketId, m: &Made, opts: &CleanupOptions, out: &mut TicketCleanup) {
    let config = &app.config;
    let repo = Git::at(&config.automation.repo_path);
    let mut all_gone = true;

    // What is there, and whether it is safe to remove.
    let worktree = m.worktree.as_ref().filter(|_| m.made_worktree);
    let worktree_there = worktree.is_some_and(|p| p.exists());
    let branch = m.branch.as_deref();
    let head = branch.and_then(|b| repo.commit_of(&format!("refs/heads/{b}")).ok().flatten());
    let branch_ours = m.made_branch && head.is_some();

    let mut unsafe_reasons = Vec::new();
    let mut copies = Vec::new();
    if let (Some(path), true) = (worktree, worktree_there) {
        match worktree_check(config, &repo, path, branch) {
            Ok(ours) => copies = ours,
            Err(reason) => unsafe_reasons.push(format!("worktree {}: {reason}", path.display())),
        }
    }
    if let (Some(b), Some(h)) = (branch, &head) {
        if let Err(reason) = commits_check(&repo, m, h) {
            unsafe_reasons.push(format!("branch {b}: {reason}"));
        }
    }
    if !unsafe_reasons.is_empty() {
        out.kept.extend(unsafe_reasons);
        return;
    }

    // The bundle first: a branch whose bundle cannot be written is kept.
    if let (true, Some(dir), Some(b), Some(h)) = (branch_ours, &opts.bundle_dir, branch, &head) {
        match write_bundle(&repo, dir, id, m, b, h, opts.dry_run) {
            Ok(Some(file)) => out.bundle = Some(file),
            Ok(None) => {}
            Err(e) => {
                out.kept.push(format!(
                    "branch {b}: the bundle could not be written: {e:#}"
                ));
                return;
            }
        }
    }

    if let (Some(path), true) = (worktree, worktree_there) {
        let size = disk_usage(path);
        let removed = if opts.dry_run {
            Ok(())
        } else {
            remove_worktree(&repo, path, &copies)
        };
        match removed {
            Ok(()) => {
                out.freed_bytes += size;
                out.removed.push(format!(
                    "worktree {} ({})",
                    path.display(),
                    human_bytes(size)
                ));
            }
            Err(e) => {
                all_gone = false;
                out.kept.push(format!("worktree {}: {e:#}", path.display()));
            }
        }
    } else if worktree.is_some() && !opts.dry_run {
        // Deleted by hand: git still lists it until it is pruned.
        let _ = repo.run(&["worktree", "prune"]);
    }

    if let (true, Some(b), Some(h)) = (branch_ours, branch, &head) {
        let done = if opts.dry_run || !all_gone {
            Ok(())
        } else {
            repo.delete_branch(b, h)
        };
        match done {
            Ok(()) if all_gone => out.removed.push(format!("branch {b}")),
            Ok(()) => out
                .kept
                .push(format!("branch {b}: its worktree is still there")),
            Err(e) => {
                all_gone = false;
                out.kept.push(format!("branch {b}: {e:#}"));
            }
        }
    }

    if let (false, Some(b), Some(_)) = (m.made_branch, branch, &head) {
        out.kept.push(format!(
            "branch {b}: it was there before plane-orch used it: left alone"
        ));
    }

    if m.made_trust && all_gone {
        if let Some(path) = &m.worktree {
            if opts.dry_run {
                out.removed
                    .push(format!("trust entry for {}", path.display()));
            } else {
                match claude::untrust(path) {
                    Ok(true) => out
                        .removed
                        .push(format!("trust entry for {}", path.display())),
                    Ok(false) => {}
                    Err(e) => {
                        all_gone = false;
                        out.kept
                            .push(format!("trust entry for {}: {e:#}", path.display()));
                    }
                }
            }
        }
    }

    let lock = super::op::lease_path(app, id);
    if all_gone && lock.exists() && (opts.dry_run || std::fs::remove_file(&lock).is_ok()) {
        out.removed.push(format!("lock file {}", lock.display()));
    }

    if all_gone && !opts.dry_run {
        let mut gone = Made::new(id.clone());
        gone.cleaned = true;
        if let Err(e) = made::append(&made::path_for(app.store.path()), &gone) {
            log::warn!("{id}: cleaned up, but that could not be written down: {e:#}");
        }
    }
}

/// Whether the worktree may go: git knows it, it has the ticket's branch, and nothing in it is
/// uncommitted. The `worktree_copy` files plane-orch copied in, unchanged, are returned (they
/// are removed with it); anything else is the reason to keep it.
fn worktree_check(
    config: &crate::config::Config,
    repo: &Git,
    path: &Path,
    branch: Option<&str>,
) -> Result<Vec<String>, String> {
    let known = repo.worktrees().map_err(|e| format!("{e:#}"))?;
    let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Some((_, checked_out)) = known
        .iter()
        .find(|(p, _)| p.canonicalize().unwrap_or_else(|_| p.clone()) == real)
    else {
        return Err("git does not know it as a worktree of the repository: left alone".into());
    };
    if branch.is_some() && checked_out.as_deref() != branch {
        return Err(format!(
            "it has {} checked out, not {}: left alone",
            checked_out.as_deref().unwrap_or("a detached HEAD"),
            branch.unwrap_or_default()
        ));
    }
    // A copied file the agent changed is work too: only identical copies are ours.
    let ours: Vec<String> = config
        .automation
        .worktree_copy
        .iter()
        .filter(|name| {
            let (a, b) = (config.automation.repo_path.join(name), path.join(name));
            matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
        })
        .cloned()
        .collect();
    let changes = Git::at(path).changes(&ours).map_err(|e| format!("{e:#}"))?;
    if !changes.modified.is_empty() {
        return Err(format!(
            "{} uncommitted change(s): {}",
            changes.modified.len(),
            some(&changes.modified)
        ));
    }
    if !changes.untracked.is_empty() {
        return Err(format!(
            "{} untracked file(s): {}",
            changes.untracked.len(),
            some(&changes.untracked)
        ));
    }
    Ok(ours)
}

/// Whether every commit of the branch is safe elsewhere: on a remote, or patch-equivalent to
/// the base branch (or its remote copies), or the whole branch squashed into one commit there.
fn commits_check(repo: &Git, m: &Made, head: &str) -> Result<(), String> {
    let fail = |e: anyhow::Error| format!("cannot check its commits: {e:#}");
    let mut unsafe_commits: HashSet<String> = repo
        .not_on_remotes(head)
        .map_err(fail)?
        .into_iter()
        .collect();
    if unsafe_commits.is_empty() {
        return Ok(());
    }
    let base_branch = m.base_branch.clone().or_else(|| repo.current_branch());
    let mut upstreams = Vec::new();
    if let Some(b) = &base_branch {
        upstreams.push(format!("refs/heads/{b}"));
        for remote in repo.remotes().unwrap_or_default() {
            upstreams.push(format!("refs/remotes/{remote}/{b}"));
        }
    }
    for up in upstreams {
        if repo.commit_of(&up).ok().flatten().is_none() {
            continue;
        }
        let missing: HashSet<String> = repo
            .not_in_upstream(&up, head)
            .map_err(fail)?
            .into_iter()
            .collect();
        unsafe_commits.retain(|c| missing.contains(c));
        if unsafe_commits.is_empty() || repo.squashed_into(&up, head).map_err(fail)? {
            return Ok(());
        }
    }
    let n = unsafe_commits.len();
    Err(format!(
        "{n} commit(s) on no remote and not in {}: push or merge them first",
        base_branch.as_deref().unwrap_or("the base branch")
    ))
}

fn write_bundle(
    repo: &Git,
    dir: &Path,
    id: &TicketId,
    m: &Made,
    branch: &str,
    head: &str,
    dry_run: bool,
) -> Result<Option<PathBuf>> {
    let base = m.base.clone().unwrap_or_default();
    if !base.is_empty() && repo.commits(&base, head, 0)?.1 == 0 {
        return Ok(None); // nothing since the base: nothing to keep
    }
    let stamp = now().format("%Y%m%dT%H%M%SZ");
    let file = dir.join(format!("{id}-{stamp}.bundle"));
    if dry_run {
        return Ok(Some(file));
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the bundle folder {}", dir.display()))?;
    let base = if base.is_empty() {
        repo.run(&["merge-base", "HEAD", head])?.trim().to_string()
    } else {
        base
    };
    repo.bundle(&file, &base, branch)?;
    Ok(Some(file))
}

/// Removes the copies plane-orch put there, then the worktree (git refuses if anything else
/// appeared meanwhile).
fn remove_worktree(repo: &Git, path: &Path, copies: &[String]) -> Result<()> {
    for name in copies {
        let _ = std::fs::remove_file(path.join(name));
    }
    repo.remove_worktree(path)
}

/// The disk space a folder uses (blocks, not lengths; symlinks not followed).
fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            total += disk_usage(&entry.path());
        }
    }
    total
}

/// A few names, then how many more.
fn some(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    let more = names.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Bytes for people: `12.3 MiB`.
#[must_use]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    #[allow(clippy::cast_precision_loss)] // a figure for people
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Notes when a ticket plane-orch made something for was removed, so `--older-than` counts
/// from then.
pub fn note_removed(app: &App, id: &TicketId) {
    let file = made::path_for(app.store.path());
    if !made::load(&file).is_ok_and(|m| m.contains_key(id)) {
        return;
    }
    let mut line = Made::new(id.clone());
    line.removed_at = Some(now());
    if let Err(e) = made::append(&file, &line) {
        log::warn!("{id}: cannot note its removal for cleanup: {e:#}");
    }
}
