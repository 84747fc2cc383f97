//! The state file: one JSON document shared by cron, the server and every CLI call.
//!
//! Every change is a read-modify-write under an exclusive lock on a sidecar lock file; readers
//! take a shared lock. A new version is written to a temp file in the same folder, fsynced and
//! renamed over the old one, and the folder is fsynced, so a reader sees the old file or the new
//! one, never a mix, and a crash at any moment leaves a whole file behind.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use fs2::FileExt;
use serde::{Deserialize, Serialize};

use crate::ticket::{Status, Ticket, TicketId};

/// The state file format this binary reads and writes.
pub const VERSION: u32 = 1;

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub tickets: BTreeMap<TicketId, Ticket>,
    /// Plane issues removed from the queue, by UUID, with when: poll does not re-queue them
    /// until it has seen them leave every trigger and enter one again.
    #[serde(default)]
    pub dismissed: BTreeMap<String, DateTime<Utc>>,
    /// Done tickets moved to the archive: polling never queues these ids again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub archived: BTreeSet<TicketId>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: VERSION,
            tickets: BTreeMap::new(),
            dismissed: BTreeMap::new(),
            archived: BTreeSet::new(),
        }
    }
}

impl State {
    /// Whether the id was ever queued and is still remembered: in the queue or archived.
    #[must_use]
    pub fn knows(&self, id: &TicketId) -> bool {
        self.tickets.contains_key(id) || self.archived.contains(id)
    }

    /// The ticket, or `Error::NotFound`.
    ///
    /// # Errors
    /// `Error::NotFound` when there is no such ticket.
    pub fn get(&self, id: &TicketId) -> Result<&Ticket> {
        self.tickets
            .get(id)
            .ok_or_else(|| crate::error::Error::NotFound(id.to_string()).into())
    }

    /// The ticket for changing, or `Error::NotFound`.
    ///
    /// # Errors
    /// `Error::NotFound` when there is no such ticket.
    pub fn get_mut(&mut self, id: &TicketId) -> Result<&mut Ticket> {
        self.tickets
            .get_mut(id)
            .ok_or_else(|| crate::error::Error::NotFound(id.to_string()).into())
    }
}

/// The state file with each ticket left as raw JSON, for [`raw_tickets`].
#[derive(Deserialize)]
struct LazyState<'a> {
    version: u32,
    #[serde(borrow, default)]
    tickets: BTreeMap<&'a str, &'a serde_json::value::RawValue>,
}

/// Only a ticket's status.
#[derive(Deserialize)]
struct StatusPeek {
    status: Status,
}

/// Each ticket's id and raw JSON, in file order, without decoding them; `None` when the file
/// is not a state of this version this way can read (the caller then decodes it whole, which
/// reads any layout and explains any error).
///
/// The fast way reads the layout [`encode`] writes, a ticket a line, by splitting lines: a
/// JSON string never holds a raw newline, so a line is a ticket. Anything else (a file edited
/// by hand, say) is read with serde's own scan.
fn raw_tickets(bytes: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    ticket_lines(bytes).or_else(|| {
        let lazy = serde_json::from_slice::<LazyState<'_>>(bytes).ok()?;
        (lazy.version <= VERSION).then_some(())?;
        // Ids hold no escapes, so they borrow; one that does fails here and is decoded whole.
        Some(
            lazy.tickets
                .into_iter()
                .map(|(id, raw)| (id, raw.get().as_bytes()))
                .collect(),
        )
    })
}

/// [`raw_tickets`] for the layout [`encode`] writes; `None` for anything else. Works on bytes:
/// the tickets it hands on are checked (UTF-8 included) when they are decoded.
fn ticket_lines(bytes: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let mut start = 0;
    let mut lines = memchr::memchr_iter(b'\n', bytes).map(|end| {
        let line = &bytes[start..end];
        start = end + 1;
        line
    });
    let version: u32 = std::str::from_utf8(
        lines
            .next()?
            .strip_prefix(b"{\"version\":")?
            .strip_suffix(b",")?,
    )
    .ok()?
    .parse()
    .ok()?;
    if version > VERSION || lines.next()? != b"\"tickets\":{" {
        return None;
    }
    let mut out = Vec::new();
    loop {
        let line = lines.next()?;
        if line == b"}," || line == b"}" {
            break;
        }
        let rest = line.strip_prefix(b"\"")?;
        let colon = memchr::memmem::find(rest, b"\":")?;
        let id = std::str::from_utf8(&rest[..colon]).ok()?;
        let raw = &rest[colon + 2..];
        let raw = raw.strip_suffix(b",").unwrap_or(raw);
        if !(raw.starts_with(b"{") && raw.ends_with(b"}")) {
            return None;
        }
        out.push((id, raw));
    }
    // The document must end where encode ends it: a cut-off file is read the slow way.
    bytes.trim_ascii_end().ends_with(b"}").then_some(out)
}

/// A ticket's status found by searching its raw JSON for `"status":"`, without decoding it.
/// That byte run can only be a key (inside a JSON string every `"` is escaped), and of the
/// objects in a ticket only the ticket itself has a `status` key. `None` (other spacing, as in
/// a file edited by hand) means: decode it instead.
fn quick_status(raw: &[u8]) -> Option<Status> {
    const KEY: &[u8] = b"\"status\":\"";
    let at = memchr::memmem::find(raw, KEY)? + KEY.len();
    let rest = &raw[at..];
    let value = &rest[..memchr::memchr(b'"', rest)?];
    Status::ALL
        .into_iter()
        .find(|s| s.as_str().as_bytes() == value)
}

/// Only the version, to explain why a file from a newer plane-orch does not parse.
#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

/// A handle on the state file and its lock; cheap to make, holds nothing open.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    /// Done tickets older than this move to the archive; `None` keeps them.
    keep_done: Option<chrono::TimeDelta>,
}

/// A held lock on the sidecar file; released when dropped.
struct Lock(Option<File>);

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            let _ = FileExt::unlock(f);
        }
    }
}

impl Store {
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store {
            path: path.into(),
            keep_done: None,
        }
    }

    /// Moves done tickets older than `days` to the archive at each write; 0 keeps them all.
    #[must_use]
    pub fn keep_done_days(mut self, days: u32) -> Store {
        self.keep_done = (days > 0).then(|| chrono::TimeDelta::days(i64::from(days)));
        self
    }

    /// The append-only archive of old done tickets, one JSON ticket a line.
    #[must_use]
    pub fn archive_path(&self) -> PathBuf {
        self.path.with_extension("archive.jsonl")
    }

    /// The archived tickets, oldest first. A line that does not parse (the torn end of an
    /// append cut short) is skipped with a warning.
    ///
    /// # Errors
    /// The archive exists but cannot be read.
    pub fn load_archive(&self) -> Result<Vec<Ticket>> {
        let path = self.archive_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the archive {}", path.display()))
            }
        };
        let mut out = Vec::new();
        for (n, line) in io::BufReader::new(file).lines().enumerate() {
            let line =
                line.with_context(|| format!("cannot read the archive {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Ticket>(&line) {
                Ok(t) => out.push(t),
                Err(e) => log::warn!("{}:{}: skipped: {e}", path.display(), n + 1),
            }
        }
        Ok(out)
    }

    /// An archived ticket by id (the latest copy, should it be there twice).
    ///
    /// # Errors
    /// The archive cannot be read.
    pub fn find_archived(&self, id: &TicketId) -> Result<Option<Ticket>> {
        Ok(self.load_archive()?.into_iter().rev().find(|t| &t.id == id))
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sidecar lock file.
    #[must_use]
    pub fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }

    /// The previous good state, kept at every write.
    #[must_use]
    pub fn backup_path(&self) -> PathBuf {
        sibling(&self.path, ".bak")
    }

    /// Reads the state under a shared lock. A missing file is an empty queue.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or is from a newer plane-orch.
    pub fn load(&self) -> Result<State> {
        let _lock = self.lock(false)?;
        match self.read_bytes()? {
            Some(bytes) => self.decode(&bytes),
            None => Ok(State::default()),
        }
    }

    /// Only the tickets whose status `wanted` accepts, read under a shared lock. Faster than
    /// [`Store::load`] on a large queue: every ticket is scanned for its status, but only the
    /// wanted ones are decoded in full (most of a long-lived queue is done tickets).
    ///
    /// # Errors
    /// As [`Store::load`].
    pub fn load_where(&self, wanted: impl Fn(Status) -> bool) -> Result<Vec<Ticket>> {
        self.load_where_with(wanted, |_, _| Ok(()))
    }

    /// [`Store::load_where`], handing every ticket not wanted to `other` as its status and
    /// raw JSON (to count it, or to decode a few of its fields).
    ///
    /// # Errors
    /// As [`Store::load`], or what `other` returns.
    pub fn load_where_with(
        &self,
        wanted: impl Fn(Status) -> bool,
        mut other: impl FnMut(Status, &[u8]) -> Result<()>,
    ) -> Result<Vec<Ticket>> {
        let _lock = self.lock(false)?;
        let Some(bytes) = self.read_bytes()? else {
            return Ok(Vec::new());
        };
        let Some(raws) = raw_tickets(&bytes) else {
            // Let the full decoder explain what is wrong (or read an unusual layout).
            let state = self.decode(&bytes)?;
            let mut out = Vec::new();
            for t in state.tickets.into_values() {
                if wanted(t.status) {
                    out.push(t);
                } else {
                    other(t.status, &serde_json::to_vec(&t)?)?;
                }
            }
            return Ok(out);
        };
        let mut out = Vec::new();
        for (_, raw) in raws {
            let status = match quick_status(raw) {
                Some(status) => status,
                None => {
                    serde_json::from_slice::<StatusPeek>(raw)
                        .map_err(|e| self.damaged(&e))?
                        .status
                }
            };
            if wanted(status) {
                out.push(serde_json::from_slice(raw).map_err(|e| self.damaged(&e))?);
            } else {
                other(status, raw)?;
            }
        }
        Ok(out)
    }

    /// The tickets a list shows: those `wanted` in the state file and, when done tickets are
    /// wanted, the archived ones too (the latest copy of each id), in list order.
    ///
    /// # Errors
    /// As [`Store::load`], or the archive cannot be read.
    pub fn load_listed(&self, wanted: impl Fn(Status) -> bool) -> Result<Vec<Ticket>> {
        let mut tickets = self.load_where(&wanted)?;
        if wanted(Status::Done) {
            let mut known: std::collections::HashSet<TicketId> =
                tickets.iter().map(|t| t.id.clone()).collect();
            let mut archived = self.load_archive()?;
            // A crash between an append and the write can archive an id twice: the latest wins.
            archived.reverse();
            tickets.extend(
                archived
                    .into_iter()
                    .filter(|t| wanted(t.status) && known.insert(t.id.clone())),
            );
        }
        tickets.sort_by(Ticket::list_order);
        Ok(tickets)
    }

    /// One ticket, decoding no other (an archived one is not looked for).
    ///
    /// # Errors
    /// As [`Store::load`].
    pub fn find(&self, id: &TicketId) -> Result<Option<Ticket>> {
        let _lock = self.lock(false)?;
        let Some(bytes) = self.read_bytes()? else {
            return Ok(None);
        };
        let Some(raws) = raw_tickets(&bytes) else {
            return Ok(self.decode(&bytes)?.tickets.remove(id));
        };
        raws.into_iter()
            .find(|(key, _)| *key == id.as_str())
            .map(|(_, raw)| serde_json::from_slice(raw).map_err(|e| self.damaged(&e)))
            .transpose()
    }

    /// Changes the state: takes the exclusive lock, reads, calls `change`, writes the result if
    /// it differs from what was read, releases. `change` must not wait on the network or a
    /// person. When it fails nothing is written.
    ///
    /// # Errors
    /// Whatever `change` returns, or the file cannot be read, parsed or written.
    pub fn update<T>(&self, change: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let _lock = self.lock(true)?;
        let old_bytes = self.read_bytes()?;
        self.update_locked(old_bytes, change)
    }

    /// Changes one ticket, like `update(|s| change(s.get_mut(id)?))`, but without decoding and
    /// encoding every other ticket: in a file of the layout [`encode`] writes, the ticket's
    /// line is replaced and every other byte kept. The whole file is still checked to be JSON
    /// first, so a damaged file is never written over; a file of any other layout goes the
    /// whole way. Done tickets are archived by the next whole update.
    ///
    /// # Errors
    /// Unknown ticket (not found), whatever `change` returns, or as [`Store::update`].
    pub fn update_ticket<T>(
        &self,
        id: &TicketId,
        change: impl FnOnce(&mut Ticket) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock(true)?;
        let Some(old) = self.read_bytes()? else {
            return Err(crate::error::Error::NotFound(id.to_string()).into());
        };
        let line = ticket_lines(&old)
            .filter(|_| serde_json::from_slice::<serde::de::IgnoredAny>(&old).is_ok())
            .map(|lines| lines.into_iter().find(|(key, _)| *key == id.as_str()));
        let raw = match line {
            Some(Some((_, raw))) => raw,
            Some(None) => return Err(crate::error::Error::NotFound(id.to_string()).into()),
            None => return self.update_locked(Some(old), |s| change(s.get_mut(id)?)),
        };
        let mut ticket: Ticket = serde_json::from_slice(raw).map_err(|e| self.damaged(&e))?;
        let out = change(&mut ticket)?;
        let new_raw = serde_json::to_vec(&ticket).context("cannot encode the ticket")?;
        if new_raw != raw {
            // `raw` lies inside `old`: where it starts and ends there.
            let start = raw.as_ptr() as usize - old.as_ptr() as usize;
            let end = start + raw.len();
            let mut bytes = Vec::with_capacity(old.len() + new_raw.len());
            bytes.extend_from_slice(&old[..start]);
            bytes.extend_from_slice(&new_raw);
            bytes.extend_from_slice(&old[end..]);
            self.write_unlocked(&bytes, true)?;
        }
        Ok(out)
    }

    /// The body of [`Store::update`], with the lock held and the file's bytes read.
    fn update_locked<T>(
        &self,
        old_bytes: Option<Vec<u8>>,
        change: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        let mut state = match &old_bytes {
            Some(bytes) => self.decode(bytes)?,
            None => State::default(),
        };
        let out = change(&mut state)?;
        self.archive_old_done(&mut state)?;
        let new_bytes = encode(&state, old_bytes.as_ref().map_or(0, Vec::len))?;
        if old_bytes.as_deref() != Some(new_bytes.as_slice()) {
            self.write_unlocked(&new_bytes, old_bytes.is_some())?;
        }
        Ok(out)
    }

    /// Appends done tickets past `keep_done` to the archive (synced) before the state file
    /// that drops them is written: a crash in between leaves a ticket in both, never in
    /// neither, and readers prefer the state file's copy.
    fn archive_old_done(&self, state: &mut State) -> Result<()> {
        let Some(keep) = self.keep_done else {
            return Ok(());
        };
        let cutoff = crate::ticket::now() - keep;
        let old: Vec<TicketId> = state
            .tickets
            .values()
            .filter(|t| t.status == crate::ticket::Status::Done)
            .filter(|t| t.done_at.is_some_and(|d| d < cutoff))
            .map(|t| t.id.clone())
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for id in &old {
            serde_json::to_writer(&mut lines, &state.tickets[id])
                .context("cannot encode a ticket for the archive")?;
            lines.push(b'\n');
        }
        let path = self.archive_path();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open the archive {}", path.display()))?;
        file.write_all(&lines)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot append to the archive {}", path.display()))?;
        for id in old {
            state.tickets.remove(&id);
            state.archived.insert(id);
        }
        Ok(())
    }

    fn lock(&self, exclusive: bool) -> Result<Lock> {
        let lock_path = self.lock_path();
        if exclusive {
            if let Some(dir) = lock_path.parent() {
                fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the state folder {}", dir.display()))?;
            }
        }
        // Readers never create the lock file: reading leaves nothing behind.
        let file = match OpenOptions::new()
            .read(true)
            .write(exclusive)
            .create(exclusive)
            .truncate(false)
            .open(&lock_path)
        {
            Ok(f) => f,
            // A reader without a lock file (nothing was ever written, a read-only folder) reads
            // without it: writers replace the file atomically, so it is still never torn.
            Err(_) if !exclusive => return Ok(Lock(None)),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot open the state lock file {}", lock_path.display())
                })
            }
        };
        let attempt = if exclusive {
            FileExt::try_lock_exclusive(&file)
        } else {
            FileExt::try_lock_shared(&file)
        };
        if let Err(e) = attempt {
            if e.kind() != fs2::lock_contended_error().kind() {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
            log::debug!(
                "waiting for the state lock {} held by another plane-orch",
                lock_path.display()
            );
            let wait = if exclusive {
                FileExt::lock_exclusive(&file)
            } else {
                FileExt::lock_shared(&file)
            };
            wait.with_context(|| format!("cannot lock {}", lock_path.display()))?;
        }
        Ok(Lock(Some(file)))
    }

    /// The state and the bytes it was parsed from (`None` when the file does not exist).
    /// The state file's bytes; `None` when it does not exist.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>> {
        match fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e)
                .with_context(|| format!("cannot read the state file {}", self.path.display())),
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<State> {
        let newer = |v: u64| {
            anyhow::anyhow!(
                "the state file {} has format version {v}, newer than this plane-orch understands ({VERSION}); \
                 it was left unchanged: run the newer plane-orch that wrote it",
                self.path.display()
            )
        };
        match serde_json::from_slice::<State>(bytes) {
            Ok(state) if u64::from(state.version) > u64::from(VERSION) => {
                Err(newer(state.version.into()))
            }
            Ok(state) => Ok(state),
            Err(e) => match serde_json::from_slice::<VersionProbe>(bytes) {
                Ok(p) if p.version > u64::from(VERSION) => Err(newer(p.version)),
                _ => Err(self.damaged(&e)),
            },
        }
    }

    fn damaged(&self, e: &serde_json::Error) -> anyhow::Error {
        anyhow::anyhow!(
            "the state file {} is damaged: {e}; it was left unchanged. \
             Fix it by hand, or restore the previous good state with `cp {} {}`",
            self.path.display(),
            self.backup_path().display(),
            self.path.display()
        )
    }

    fn write_unlocked(&self, bytes: &[u8], had_old: bool) -> Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state folder {}", dir.display()))?;
        if had_old {
            // The previous good state stays reachable as .bak: a hard link costs no copy, and the
            // old inode survives the rename below.
            let bak = self.backup_path();
            let _ = fs::remove_file(&bak);
            if fs::hard_link(&self.path, &bak).is_err() {
                let _ = fs::copy(&self.path, &bak);
            }
        }
        remove_stale_temp_files(dir);
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write the state file {}", self.path.display()))?;
        tmp.persist(&self.path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot replace the state file {}", self.path.display()))?;
        // The rename is durable only once the folder itself is on disk.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync the state folder {}", dir.display()))?;
        Ok(())
    }
}

/// Temp files of the state file start with this; only the lock holder makes one.
const TEMP_PREFIX: &str = ".pending-tickets.";

/// A writer killed between creating its temp file and renaming it leaves the file behind.
/// Under the exclusive lock no other writer's temp file can be in flight, so any found is
/// stale.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The state as JSON with one ticket a line: compact enough to parse fast at 10,000
/// tickets, and still readable and greppable a ticket at a time.
fn encode(state: &State, size_hint: usize) -> Result<Vec<u8>> {
    fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<()> {
        serde_json::to_writer(out, value).context("cannot encode the state")
    }
    // About the old file's size: growing a 20 MB buffer by doubling copies it over and over.
    let mut out = Vec::with_capacity(size_hint + size_hint / 8 + 4096);
    out.extend_from_slice(format!("{{\"version\":{},\n\"tickets\":{{", state.version).as_bytes());
    for (i, (id, ticket)) in state.tickets.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        put(&mut out, id)?;
        out.push(b':');
        put(&mut out, ticket)?;
    }
    out.extend_from_slice(b"\n},\n\"dismissed\":");
    put(&mut out, &state.dismissed)?;
    if !state.archived.is_empty() {
        out.extend_from_slice(b",\n\"archived\":");
        put(&mut out, &state.archived)?;
    }
    out.extend_from_slice(b"\n}\n");
    Ok(out)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Replaces a small file of plane-orch's own (not the state file) atomically: a temp file in
/// the same folder, synced, renamed over it, the folder synced; private to the user.
///
/// # Errors
/// The folder or the file cannot be written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().map_or_else(
        || ".plane-orch.".to_string(),
        |n| format!(".{}.", n.to_string_lossy()),
    );
    let mut tmp = tempfile::Builder::new()
        .prefix(&name)
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{now, NewTicket};

    fn ticket(id: &str) -> Ticket {
        Ticket::new(NewTicket::manual(TicketId::parse(id).unwrap(), "t"), now())
    }

    fn add(store: &Store, id: &str) {
        store
            .update(|s| {
                let t = ticket(id);
                s.tickets.insert(t.id.clone(), t);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_encoding_is_json_with_a_ticket_a_line() {
        let mut state = State::default();
        for id in ["A-1", "A-2"] {
            let t = ticket(id);
            state.tickets.insert(t.id.clone(), t);
        }
        state.archived.insert(TicketId::parse("Z-1").unwrap());
        let bytes = encode(&state, 0).unwrap();
        let back: State = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, state);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.lines().any(|l| l.starts_with("\"A-1\":{")), "{text}");
        assert_eq!(text.lines().count(), 8, "{text}");
        let empty = String::from_utf8(encode(&State::default(), 0).unwrap()).unwrap();
        assert_eq!(
            serde_json::from_str::<State>(&empty).unwrap(),
            State::default()
        );
    }

    #[test]
    fn a_status_is_found_without_decoding_and_text_cannot_fake_it() {
        use crate::ticket::Status;
        let mut t = ticket("A-1");
        t.title = r#""status":"done""#.into();
        t.description_text = "\"status\":\"done\"".into();
        let raw = serde_json::to_string(&t).unwrap();
        assert_eq!(quick_status(raw.as_bytes()), Some(Status::Pending));
        let spaced = serde_json::to_string_pretty(&t).unwrap();
        assert_eq!(quick_status(spaced.as_bytes()), None);
    }

    #[test]
    fn load_where_decodes_only_the_wanted_tickets() {
        use crate::ticket::Status;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        add(&store, "A-1");
        add(&store, "A-2");
        store
            .update(|s| {
                s.get_mut(&TicketId::parse("A-2").unwrap())?.status = Status::Done;
                Ok(())
            })
            .unwrap();
        let pending = store.load_where(|s| s == Status::Pending).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id.as_str(), "A-1");
        assert_eq!(store.load_where(|_| true).unwrap().len(), 2);
    }

    #[test]
    fn a_file_laid_out_by_hand_is_read_the_slow_way_with_the_same_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        add(&store, "A-1");
        add(&store, "A-2");
        let bytes = fs::read(store.path()).unwrap();
        assert_eq!(raw_tickets(&bytes).unwrap().len(), 2);
        assert!(ticket_lines(&bytes).is_some());
        let pretty = serde_json::to_vec_pretty(&store.load().unwrap()).unwrap();
        assert!(ticket_lines(&pretty).is_none());
        assert_eq!(raw_tickets(&pretty).unwrap().len(), 2);
        fs::write(store.path(), &pretty).unwrap();
        assert_eq!(store.load_where(|_| true).unwrap().len(), 2);
        let found = store.find(&TicketId::parse("A-2").unwrap()).unwrap();
        assert_eq!(found.unwrap().id.as_str(), "A-2");
        assert!(store
            .find(&TicketId::parse("A-3").unwrap())
            .unwrap()
            .is_none());
        // A file cut off in the middle is never read as a shorter queue.
        fs::write(store.path(), &bytes[..bytes.len() / 2]).unwrap();
        assert!(store.load_where(|_| true).is_err());
        assert!(store.find(&TicketId::parse("A-1").unwrap()).is_err());
    }

    #[test]
    fn changing_one_ticket_rewrites_its_line_only_and_matches_a_whole_update() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        for id in ["A-1", "A-2", "A-3"] {
            add(&store, id);
        }
        let id = TicketId::parse("A-2").unwrap();
        let before = fs::read(store.path()).unwrap();
        store
            .update_ticket(&id, |t| {
                t.title = "changed \"quoted\"\nline".into();
                Ok(())
            })
            .unwrap();
        let after = fs::read(store.path()).unwrap();
        assert_eq!(fs::read(store.backup_path()).unwrap(), before);
        let state = store.load().unwrap();
        assert_eq!(state.tickets[&id].title, "changed \"quoted\"\nline");
        // Byte for byte what a whole update would have written.
        assert_eq!(encode(&state, 0).unwrap(), after);
        let lines_changed = before
            .split(|b| *b == b'\n')
            .zip(after.split(|b| *b == b'\n'))
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(lines_changed, 1);

        // No change: no write.
        let mtime = fs::metadata(store.path()).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.update_ticket(&id, |_| Ok(())).unwrap();
        assert_eq!(
            fs::metadata(store.path()).unwrap().modified().unwrap(),
            mtime
        );

        let missing = store.update_ticket(&TicketId::parse("A-9").unwrap(), |_| Ok(()));
        assert_eq!(
            crate::error::Kind::of(&missing.unwrap_err()),
            crate::error::Kind::NotFound
        );
    }

    #[test]
    fn changing_one_ticket_in_a_damaged_or_hand_laid_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        add(&store, "A-1");
        add(&store, "A-2");
        let id = TicketId::parse("A-1").unwrap();
        // Another ticket's line damaged: refused, the file unchanged.
        let good = fs::read(store.path()).unwrap();
        let text = String::from_utf8(good.clone()).unwrap();
        let damaged = text.replacen("\"A-2\":{\"id\"", "\"A-2\":{\"id\"::", 1);
        fs::write(store.path(), &damaged).unwrap();
        assert!(store
            .update_ticket(&id, |t| {
                t.title = "x".into();
                Ok(())
            })
            .is_err());
        assert_eq!(fs::read_to_string(store.path()).unwrap(), damaged);
        // Laid out by hand: changed the whole way, and written back in the usual layout.
        let pretty = serde_json::to_vec_pretty(&store_state(&good)).unwrap();
        fs::write(store.path(), &pretty).unwrap();
        store
            .update_ticket(&id, |t| {
                t.title = "y".into();
                Ok(())
            })
            .unwrap();
        let state = store.load().unwrap();
        assert_eq!(state.tickets[&id].title, "y");
        assert_eq!(fs::read(store.path()).unwrap(), encode(&state, 0).unwrap());
    }

    fn store_state(bytes: &[u8]) -> State {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn missing_file_is_an_empty_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("data/pending-tickets.json"));
        assert!(store.load().unwrap().tickets.is_empty());
        assert!(!dir.path().join("data").exists());
    }

    #[test]
    fn update_writes_and_keeps_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        store
            .update(|s| {
                let t = ticket("A-1");
                s.tickets.insert(t.id.clone(), t);
                Ok(())
            })
            .unwrap();
        let first = fs::read(store.path()).unwrap();
        store
            .update(|s| {
                let t = ticket("A-2");
                s.tickets.insert(t.id.clone(), t);
                Ok(())
            })
            .unwrap();
        assert_eq!(fs::read(store.backup_path()).unwrap(), first);
        assert_eq!(store.load().unwrap().tickets.len(), 2);
    }

    #[test]
    fn unchanged_state_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        store
            .update(|s| {
                let t = ticket("A-1");
                s.tickets.insert(t.id.clone(), t);
                Ok(())
            })
            .unwrap();
        let before = fs::metadata(store.path()).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.update(|_| Ok(())).unwrap();
        assert_eq!(
            fs::metadata(store.path()).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn a_failed_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        let r: Result<()> = store.update(|s| {
            let t = ticket("A-1");
            s.tickets.insert(t.id.clone(), t);
            anyhow::bail!("no")
        });
        assert!(r.is_err());
        assert!(!store.path().exists());
    }

    #[test]
    fn old_done_tickets_move_to_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json")).keep_done_days(30);
        store
            .update(|s| {
                for (id, days) in [("A-1", 40), ("A-2", 5)] {
                    let mut t = ticket(id);
                    t.status = crate::ticket::Status::Done;
                    t.done_at = Some(now() - chrono::TimeDelta::days(days));
                    s.tickets.insert(t.id.clone(), t);
                }
                s.tickets
                    .insert(TicketId::parse("A-3").unwrap(), ticket("A-3"));
                Ok(())
            })
            .unwrap();
        let state = store.load().unwrap();
        let ids: Vec<_> = state.tickets.keys().map(TicketId::as_str).collect();
        assert_eq!(ids, ["A-2", "A-3"]);
        assert!(state.knows(&TicketId::parse("A-1").unwrap()));
        let archived = store.load_archive().unwrap();
        assert_eq!(archived.len(), 1);
        assert_eq!(archived[0].id.as_str(), "A-1");
        assert!(store
            .find_archived(&TicketId::parse("a-1").unwrap())
            .unwrap()
            .is_some());
    }

    #[test]
    fn damaged_and_future_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        fs::write(store.path(), "{not json").unwrap();
        let msg = format!("{:#}", store.load().unwrap_err());
        assert!(msg.contains("damaged") && msg.contains(".bak"), "{msg}");
        fs::write(store.path(), r#"{"version": 9, "tickets": {}, "x": 1}"#).unwrap();
        let msg = format!("{:#}", store.update(|_| Ok(())).unwrap_err());
        assert!(msg.contains("version 9"), "{msg}");
        assert_eq!(
            fs::read_to_string(store.path()).unwrap(),
            r#"{"version": 9, "tickets": {}, "x": 1}"#
        );
    }
}
