//! What plane-orch made for each ticket — the worktree, the branch, the commit it was made
//! from, the trust entry — so `cleanup` removes only those, long after the ticket itself was
//! removed or archived. An append-only file of JSON lines beside the state file: appending a
//! line is one small write, so no lock is needed, and a torn last line (a crash mid-write) is
//! skipped when read.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ticket::{now, TicketId};

/// One line of the file: something plane-orch made, or the end of a ticket's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Made {
    pub ticket: TicketId,
    pub at: DateTime<Utc>,
    /// The worktree folder (absolute).
    #[serde(default)]
    pub worktree: Option<PathBuf>,
    #[serde(default)]
    pub branch: Option<String>,
    /// The commit the branch was made from.
    #[serde(default)]
    pub base: Option<String>,
    /// The branch checked out in the repository then (the branch work is merged into).
    #[serde(default)]
    pub base_branch: Option<String>,
    /// plane-orch made the worktree (not reused one that was there).
    #[serde(default)]
    pub made_worktree: bool,
    /// plane-orch made the branch (not reused one that was there).
    #[serde(default)]
    pub made_branch: bool,
    /// plane-orch added the folder's trust entry to Claude Code's config.
    #[serde(default)]
    pub made_trust: bool,
    /// When the ticket was removed from the queue (cleanup's `--older-than` counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<DateTime<Utc>>,
    /// Everything above was cleaned up: what came before this line is forgotten.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleaned: bool,
}

impl Made {
    /// A record of nothing made yet for `ticket`.
    #[must_use]
    pub fn new(ticket: TicketId) -> Made {
        Made {
            ticket,
            at: now(),
            worktree: None,
            branch: None,
            base: None,
            base_branch: None,
            made_worktree: false,
            made_branch: false,
            made_trust: false,
            removed_at: None,
            cleaned: false,
        }
    }

    /// Folds a later line into this record: what was made stays made; the first base wins.
    fn absorb(&mut self, later: Made) {
        self.worktree = self.worktree.take().or(later.worktree);
        self.branch = self.branch.take().or(later.branch);
        self.base = self.base.take().or(later.base);
        self.base_branch = self.base_branch.take().or(later.base_branch);
        self.made_worktree |= later.made_worktree;
        self.made_branch |= later.made_branch;
        self.made_trust |= later.made_trust;
        self.removed_at = later.removed_at.or(self.removed_at);
    }
}

/// `<state folder>/made.jsonl`.
#[must_use]
pub fn path_for(state_path: &Path) -> PathBuf {
    state_path.with_file_name("made.jsonl")
}

/// Appends one line.
///
/// # Errors
/// The file cannot be opened or written.
pub fn append(file: &Path, made: &Made) -> Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    // A torn last line (a crash mid-append) is ended first, so this line stays whole.
    let mut line = if ends_torn(file) {
        vec![b'\n']
    } else {
        Vec::new()
    };
    line.extend(serde_json::to_vec(made).context("cannot encode a made record")?);
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    f.write_all(&line)
        .and_then(|()| f.sync_data())
        .with_context(|| format!("cannot append to {}", file.display()))
}

fn ends_torn(file: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(file) else {
        return false;
    };
    let mut last = [0u8; 1];
    f.seek(SeekFrom::End(-1)).is_ok() && f.read_exact(&mut last).is_ok() && last[0] != b'\n'
}

/// What plane-orch made and has not cleaned up, per ticket.
///
/// # Errors
/// The file exists but cannot be read.
pub fn load(file: &Path) -> Result<BTreeMap<TicketId, Made>> {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let mut map: BTreeMap<TicketId, Made> = BTreeMap::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line.with_context(|| format!("cannot read {}", file.display()))?;
        let Ok(made) = serde_json::from_str::<Made>(&line) else {
            continue;
        };
        if made.cleaned {
            map.remove(&made.ticket);
            continue;
        }
        match map.get_mut(&made.ticket) {
            Some(known) => known.absorb(made),
            None => {
                map.insert(made.ticket.clone(), made);
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fold_per_ticket_and_a_cleaned_line_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("made.jsonl");
        let a = TicketId::parse("A-1").unwrap();
        let mut first = Made::new(a.clone());
        first.branch = Some("claude/a-1".into());
        first.base = Some("abc".into());
        first.made_branch = true;
        append(&file, &first).unwrap();
        let mut later = Made::new(a.clone());
        later.base = Some("def".into());
        later.made_trust = true;
        append(&file, &later).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(b"{\"ticket\":\"A-1\",\"at")
            .unwrap();
        let map = load(&file).unwrap();
        let m = &map[&a];
        assert_eq!(m.base.as_deref(), Some("abc"));
        assert!(m.made_branch && m.made_trust && !m.made_worktree);

        let mut gone = Made::new(a.clone());
        gone.cleaned = true;
        append(&file, &gone).unwrap();
        assert!(load(&file).unwrap().is_empty());
    }
}
