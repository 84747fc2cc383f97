//! The state file: one JSON document shared by cron, the server and every CLI call.
//!
//! Every change is a read-modify-write under an exclusive lock on a sidecar lock file; readers
//! take a shared lock. A new version is written to a temp file in the same folder, fsynced and
//! renamed over the old one, and the folder is fsynced, so a reader sees the old file or the new
//! one, never a mix, and a crash at any moment leaves a whole file behind.
//!
//! A file is replaced only when it decodes completely as the state: every ticket valid, each
//! id once. A damaged file is refused by every write, and it and `.bak` are left as they are.
//! The one-ticket fast path ([`Store::update_ticket`]) skips decoding the other tickets only
//! when the file is provably the one a plane-orch writer left (its device, inode, size, mtime
//! and ctime, recorded in `<state>.verified` after each write, still match: any edit, copy or
//! replacement changes the ctime, which no program can set back); otherwise it decodes all.
//!
//! Each write increments the file's `generation`, written on its last line, so a reader can
//! tell one version from the next by reading a few bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::lock::Lock;
use crate::ticket::{Status, Ticket, TicketId};

mod archive;
mod archived_ids;
mod journal;
mod lines;
mod located;
pub use archive::Archive;
use journal::Fit;
pub use journal::Journal;

/// The state file format this binary writes. It reads every earlier one: version 1 kept done
/// tickets in the file until `keep_done_days` passed; version 2 moves them to the archive as
/// they become done (a version-1 file is rewritten as version 2 at its first write, the
/// version-1 copy kept as `.bak`).
pub const VERSION: u32 = 2;

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    #[serde(default, deserialize_with = "unique_tickets")]
    pub tickets: BTreeMap<TicketId, Ticket>,
    /// Plane issues removed from the queue, by UUID, with when: poll does not re-queue them
    /// until it has seen them leave every trigger and enter one again.
    #[serde(default)]
    pub dismissed: BTreeMap<String, DateTime<Utc>>,
    /// Done tickets moved to the archive: polling never queues these ids again. Ids only
    /// (kept as runs of numbers by project): the rest of what is known of them is in the
    /// archive and its index.
    #[serde(
        default,
        skip_serializing_if = "BTreeSet::is_empty",
        with = "archived_ids"
    )]
    pub archived: BTreeSet<TicketId>,
    /// Sums over the archived tickets, for the metrics the archive would otherwise be read for.
    #[serde(default, skip_serializing_if = "ArchiveTotals::is_empty")]
    pub archive_totals: ArchiveTotals,
    /// Incremented by every write of the file (0 in a file from before it was kept).
    #[serde(default)]
    pub generation: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: VERSION,
            tickets: BTreeMap::new(),
            dismissed: BTreeMap::new(),
            archived: BTreeSet::new(),
            archive_totals: ArchiveTotals::default(),
            generation: 0,
        }
    }
}

/// What the metrics need of the archived tickets, kept as they are archived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveTotals {
    /// Archived tickets that had both an approval and a completion.
    #[serde(default)]
    pub sessions: u64,
    /// Seconds from approval to completion, summed over those.
    #[serde(default)]
    pub session_seconds: f64,
}

impl ArchiveTotals {
    fn is_empty(&self) -> bool {
        self.sessions == 0
    }

    fn add(&mut self, t: &Ticket) {
        if let (Some(a), Some(c)) = (t.approved_at, t.completed_at) {
            #[allow(clippy::cast_precision_loss)] // milliseconds of a session fit an f64
            let secs = (c - a).num_milliseconds().max(0) as f64 / 1000.0;
            self.sessions += 1;
            self.session_seconds += secs;
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
        self.tickets.get(id).ok_or_else(|| self.missing(id))
    }

    /// Why `id` is not in the queue: done and archived (a conflict: nothing more can be done
    /// to it), or never known (not found).
    fn missing(&self, id: &TicketId) -> anyhow::Error {
        if self.archived.contains(id) {
            crate::error::conflict(format!(
                "{id} is done (in the archive): nothing more can be done to it"
            ))
        } else {
            crate::error::Error::NotFound(id.to_string()).into()
        }
    }

    /// The ticket for changing, or `Error::NotFound`.
    ///
    /// # Errors
    /// `Error::NotFound` when there is no such ticket.
    pub fn get_mut(&mut self, id: &TicketId) -> Result<&mut Ticket> {
        if !self.tickets.contains_key(id) {
            return Err(self.missing(id));
        }
        Ok(self.tickets.get_mut(id).expect("checked above"))
    }
}

/// The tickets of a state file, refusing what a map would silently accept: an id twice (one
/// copy would be dropped at the next write), or a ticket filed under another id.
fn unique_tickets<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<TicketId, Ticket>, D::Error> {
    struct Tickets;
    impl<'de> serde::de::Visitor<'de> for Tickets {
        type Value = BTreeMap<TicketId, Ticket>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of ticket ids to tickets")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            use serde::de::Error as _;
            let mut out = BTreeMap::new();
            while let Some((id, ticket)) = map.next_entry::<TicketId, Ticket>()? {
                if ticket.id != id {
                    return Err(A::Error::custom(format!(
                        "the ticket filed under {id} has the id {}",
                        ticket.id
                    )));
                }
                if out.insert(id.clone(), ticket).is_some() {
                    return Err(A::Error::custom(format!("the ticket {id} is there twice")));
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Tickets)
}

/// The state file with each ticket left as raw JSON, for [`raw_tickets`].
#[derive(Deserialize)]
struct LazyState<'a> {
    version: u32,
    #[serde(borrow, default)]
    tickets: BTreeMap<&'a str, &'a serde_json::value::RawValue>,
}

/// What a state file says of its archived tickets: the part after the tickets, read alone.
#[derive(Deserialize)]
struct ArchiveTail {
    #[serde(default, deserialize_with = "count_archived")]
    archived: usize,
    #[serde(default)]
    archive_totals: ArchiveTotals,
}

/// How many ids `archived` holds, without making them: runs are counted, a list of ids (an
/// earlier file) is counted as it is read.
fn count_archived<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Runs(BTreeMap<String, String>),
        List(Vec<serde::de::IgnoredAny>),
    }
    match Either::deserialize(d)? {
        Either::List(ids) => Ok(ids.len()),
        Either::Runs(runs) => runs.values().try_fold(0, |n, items| {
            archived_ids::count(items)
                .map(|c| n + c)
                .map_err(serde::de::Error::custom)
        }),
    }
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
        // A map keeps one of two equal keys: an id twice goes to the full decoder, which
        // refuses it. Counting `":{"` openings would be fooled by text; counting keys is not.
        if count_ticket_keys(bytes) != Some(lazy.tickets.len()) {
            return None;
        }
        // Ids hold no escapes, so they borrow; one that does fails here and is decoded whole.
        Some(
            lazy.tickets
                .into_iter()
                .map(|(id, raw)| (id, raw.get().as_bytes()))
                .collect(),
        )
    })
}

/// How many entries the `tickets` object of a state file has, counted by serde itself.
fn count_ticket_keys(bytes: &[u8]) -> Option<usize> {
    #[derive(Deserialize)]
    struct Count {
        #[serde(default, deserialize_with = "count_entries")]
        tickets: usize,
    }
    fn count_entries<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<usize, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = usize;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<usize, A::Error> {
                let mut n = 0;
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {
                    n += 1;
                }
                Ok(n)
            }
        }
        d.deserialize_map(V)
    }
    serde_json::from_slice::<Count>(bytes)
        .ok()
        .map(|c| c.tickets)
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
    let mut seen = std::collections::HashSet::new();
    loop {
        let line = lines.next()?;
        if line == b"}," || line == b"}" {
            break;
        }
        let (id, raw) = ticket_line(line)?;
        // An id twice is damage: the full decoder refuses it and says so.
        if !seen.insert(id) {
            return None;
        }
        out.push((id, raw));
    }
    // The document must end where encode ends it: a cut-off file is read the slow way.
    bytes.trim_ascii_end().ends_with(b"}").then_some(out)
}

/// One ticket line of the layout [`encode`] writes: `"<id>":{...}` with an optional comma.
fn ticket_line(line: &[u8]) -> Option<(&str, &[u8])> {
    let rest = line.strip_prefix(b"\"")?;
    let colon = memchr::memmem::find(rest, b"\":")?;
    let id = std::str::from_utf8(&rest[..colon]).ok()?;
    let raw = &rest[colon + 2..];
    let raw = raw.strip_suffix(b",").unwrap_or(raw);
    (raw.starts_with(b"{") && raw.ends_with(b"}")).then_some((id, raw))
}

/// A ticket's status found by searching its raw JSON for `"status":"`, without decoding it.
/// That byte run can only be a key (inside a JSON string every `"` is escaped), and of the
/// objects in a ticket only the ticket itself has a `status` key. `None` (other spacing, as in
/// a file edited by hand) means: decode it instead.
fn quick_status(raw: &[u8]) -> Option<Status> {
    const KEY: &[u8] = b"\"status\":\"";
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(KEY));
    let at = FINDER.find(raw)? + KEY.len();
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
    /// How long `list --status done` shows an archived ticket; `None`: always.
    keep_done: Option<chrono::TimeDelta>,
    /// From what size of state file a change to one ticket goes to the journal.
    journal_above: u64,
}

/// The default of `state.journal_above_kib`: below about 400 open tickets a whole write
/// costs a few milliseconds, and the file stays the whole state.
pub const JOURNAL_ABOVE_KIB: u64 = 1024;

/// How long the journal may grow before the next change folds it into the state file: an
/// eighth of the file, so the whole writes it saves outweigh the reads it costs every reader,
/// and never past 512 KiB, which every reader parses.
fn fold_limit(base_len: u64) -> u64 {
    (base_len / 8).clamp(64 * 1024, 512 * 1024)
}

/// The state file and the journal that continues it, read together.
struct Parts {
    base: Vec<u8>,
    /// The journal, when it continues this very file.
    journal: Option<journal::Read>,
}

/// A state file opened for a one-ticket path without reading it whole: provably the one the
/// last writer left, and recorded by it as of today's version, in the layout [`encode`]
/// writes, holding at least one ticket and no done one.
struct Opened {
    file: File,
    len: u64,
    /// Where its ticket lines start, and the `\n` after the last.
    lines: (u64, u64),
    /// Its bytes after the ticket lines (`},` first).
    tail: Vec<u8>,
    /// The generation of the file alone.
    base_generation: u64,
    /// The journal, when it continues this file.
    journal: Option<journal::Read>,
}

impl Opened {
    /// A ticket's bytes as the state holds them now: the journal's, else the file's line.
    fn get(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        if let Some(raw) = self.journal.as_ref().and_then(|j| j.ticket(id)) {
            return Ok(Some(raw.to_vec()));
        }
        let (start, end) = self.lines;
        Ok(located::find(&self.file, start, end, id)?.map(|(_, raw)| raw))
    }

    /// The state's generation, the journal's changes counted.
    fn generation(&self) -> u64 {
        self.journal
            .as_ref()
            .map_or(self.base_generation, journal::Read::generation)
    }
}

/// What `<state>.verified` says, after the file's fingerprint, of a file in the layout
/// [`encode`] writes that is of today's version and holds at least one ticket and no done one.
const ONE_TICKET_LAYOUT: &str = "one ticket a line";

/// The length of the first two lines [`encode`] writes: `{"version":2,` and `"tickets":{`.
const HEADER_LEN: usize = 26;

/// What a [`Store::scan_raw`] read: how many tickets are archived and their totals, and,
/// when the file is in the layout a writer leaves, where it got to (for [`Store::scan_since`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scanned {
    pub archived: usize,
    pub totals: ArchiveTotals,
    pub mark: Option<Mark>,
}

/// Where a scan of the state got to: the state file it read (inode, size, generation) and
/// how far into the journal (its inode, where its last whole entry ends, the next entry's
/// generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    base: (u64, u64, u64),
    journal: Option<(u64, u64, u64)>,
}

/// What [`Store::scan_since`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Only the journal grew: the changed tickets were handed on; the new mark.
    Appended(Mark),
    /// Something else changed: scan it all again.
    Whole,
}

/// One version of the state as [`Store::look`] tells it, to be compared with another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    generation: u64,
    len: u64,
    /// The journal's inode, length and change time, when there is one.
    journal: Option<(u64, u64, i64, i64)>,
}

impl Store {
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store {
            path: path.into(),
            keep_done: None,
            journal_above: JOURNAL_ABOVE_KIB * 1024,
        }
    }

    /// Sends a change to one ticket to the journal once the state file is larger than
    /// `kib` KiB (0: always).
    #[must_use]
    pub fn journal_above_kib(mut self, kib: u64) -> Store {
        self.journal_above = kib.saturating_mul(1024);
        self
    }

    /// The journal beside the state file (see the `journal` module).
    #[must_use]
    pub fn journal(&self) -> Journal {
        Journal::new(sibling(&self.path, ".journal"))
    }

    /// Lists archived tickets done within the last `days` only; 0 lists them all. (`show`
    /// finds any archived ticket, whatever its age.)
    #[must_use]
    pub fn keep_done_days(mut self, days: u32) -> Store {
        self.keep_done = (days > 0).then(|| chrono::TimeDelta::days(i64::from(days)));
        self
    }

    /// The append-only archive of done tickets, one JSON ticket a line.
    #[must_use]
    pub fn archive_path(&self) -> PathBuf {
        self.path.with_extension("archive.jsonl")
    }

    /// The archive and its index.
    #[must_use]
    pub fn archive(&self) -> Archive {
        Archive::new(self.archive_path())
    }

    /// Every archived ticket, oldest first (see [`Archive::load`]).
    ///
    /// # Errors
    /// The archive exists but cannot be read.
    pub fn load_archive(&self) -> Result<Vec<Ticket>> {
        self.archive().load()
    }

    /// An archived ticket by id, read through the archive's index.
    ///
    /// # Errors
    /// The archive cannot be read.
    pub fn find_archived(&self, id: &TicketId) -> Result<Option<Ticket>> {
        self.archive().find(id)
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
        other: impl FnMut(Status, &[u8]) -> Result<()>,
    ) -> Result<Vec<Ticket>> {
        let _lock = self.lock(false)?;
        self.read_where_with(wanted, other)
    }

    /// [`Store::load_where_with`] without waiting: `None` when another process holds the
    /// lock now (a reader that must answer at once uses what it read before).
    ///
    /// # Errors
    /// As [`Store::load`].
    pub fn try_load_where_with(
        &self,
        wanted: impl Fn(Status) -> bool,
        other: impl FnMut(Status, &[u8]) -> Result<()>,
    ) -> Result<Option<Vec<Ticket>>> {
        let Some(_lock) = Lock::try_shared(&self.lock_path(), "the state lock")? else {
            return Ok(None);
        };
        self.read_where_with(wanted, other).map(Some)
    }

    /// Every ticket of the state file as its id, status and raw JSON, for a reader that keeps
    /// its own decoded copy and decodes only what changed; returns how many tickets are
    /// archived and their totals, of the same version of the file. The file is read a line at
    /// a time (the layout a writer leaves holds a ticket a line), so no copy of the whole file
    /// is held;
    /// a file laid out otherwise is read whole, after `each(None)`, which says: forget the
    /// tickets handed on so far, they come again. Under the shared lock when it is free; while
    /// a writer holds it, read anyway when `anyway` (a writer replaces the file by a rename, so
    /// the read sees one whole version, the one before the write or the one after), else
    /// `Ok(None)`.
    ///
    /// # Errors
    /// As [`Store::load`], or what `each` returns.
    pub fn scan_raw(
        &self,
        anyway: bool,
        each: impl FnMut(Option<(&str, Status, &[u8])>) -> Result<()>,
    ) -> Result<Option<Scanned>> {
        let Some(_lock) = self.lock_to_scan(anyway)? else {
            return Ok(None);
        };
        self.scan_locked(each).map(Some)
    }

    /// The shared lock for a scan: `Ok(None)` when a writer holds it and the scan does not
    /// read `anyway`, `Ok(Some(None))` when it reads without it.
    fn lock_to_scan(&self, anyway: bool) -> Result<Option<Option<Lock>>> {
        match Lock::try_shared(&self.lock_path(), "the state lock")? {
            Some(lock) => Ok(Some(lock)),
            None if anyway => Ok(Some(None)),
            None => Ok(None),
        }
    }

    /// After a [`Store::scan_raw`] that left `mark`: each ticket changed since, as its id,
    /// status and raw JSON, when the state file is the one it read and only its journal grew
    /// (what a change to one ticket does), at the cost of what was appended. `Since::Whole`
    /// when anything else changed: then scan it all again. The lock as for `scan_raw`.
    ///
    /// # Errors
    /// As [`Store::scan_raw`].
    pub fn scan_since(
        &self,
        mark: &Mark,
        anyway: bool,
        mut each: impl FnMut(&str, Status, &[u8]) -> Result<()>,
    ) -> Result<Option<Since>> {
        use std::os::unix::fs::MetadataExt as _;
        let Some(_lock) = self.lock_to_scan(anyway)? else {
            return Ok(None);
        };
        let journal = self.journal();
        let opened = journal.open()?;
        let Ok(file) = File::open(&self.path) else {
            return Ok(Some(Since::Whole));
        };
        if self.base_of(&file)? != Some(mark.base) {
            return Ok(Some(Since::Whole));
        }
        let Some(opened) = opened else {
            return Ok(Some(if mark.journal.is_none() {
                Since::Appended(*mark)
            } else {
                Since::Whole
            }));
        };
        let ino = opened.metadata().map(|m| m.ino()).unwrap_or_default();
        let appended = match mark.journal {
            Some((seen, end, next)) if seen == ino => journal.read_since(&opened, end, next)?,
            Some(_) => None,
            // Begun since the scan: read whole, when it continues this file.
            None => match journal.read(opened)? {
                Some(read)
                    if read.fit(&journal, Some(mark.base.2), mark.base.1)? == Fit::Continues =>
                {
                    Some(journal::Appended {
                        tickets: read
                            .latest()
                            .into_iter()
                            .map(|(id, raw)| (id.to_string(), raw.to_vec()))
                            .collect(),
                        end: read.len(),
                        next: read.generation() + 1,
                    })
                }
                _ => None,
            },
        };
        let Some(appended) = appended else {
            return Ok(Some(Since::Whole));
        };
        for (id, raw) in &appended.tickets {
            each(id, self.status_of(raw)?, raw)?;
        }
        Ok(Some(Since::Appended(Mark {
            base: mark.base,
            journal: Some((ino, appended.end, appended.next)),
        })))
    }

    /// A ticket's status, found without decoding it when it can be.
    fn status_of(&self, raw: &[u8]) -> Result<Status> {
        match quick_status(raw) {
            Some(status) => Ok(status),
            None => serde_json::from_slice::<StatusPeek>(raw)
                .map(|p| p.status)
                .map_err(|e| self.damaged(&e)),
        }
    }

    /// An opened state file's inode, size and generation; `None` when its generation cannot
    /// be told from its last bytes.
    fn base_of(&self, file: &File) -> Result<Option<(u64, u64, u64)>> {
        use std::os::unix::fs::{FileExt as _, MetadataExt as _};
        let cannot = || format!("cannot read the state file {}", self.path.display());
        let meta = file.metadata().with_context(cannot)?;
        let len = meta.len();
        let from = len.saturating_sub(64);
        let mut tail = vec![0; usize::try_from(len - from).unwrap_or(64)];
        file.read_exact_at(&mut tail, from).with_context(cannot)?;
        Ok(tail_generation(&tail).map(|(g, _)| (meta.ino(), len, g)))
    }

    /// The body of [`Store::scan_raw`], the lock held (or not needed). The tickets come in
    /// the file's order, each once, except after `each(None)`.
    fn scan_locked(
        &self,
        mut each: impl FnMut(Option<(&str, Status, &[u8])>) -> Result<()>,
    ) -> Result<Scanned> {
        use std::hash::BuildHasher;
        use std::os::unix::fs::MetadataExt as _;
        let cannot = || format!("cannot read the state file {}", self.path.display());
        let status_of = |raw: &[u8]| self.status_of(raw);
        let journal = self.journal();
        let opened = journal.open()?;
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Scanned::default()),
            Err(e) => return Err(e).with_context(cannot),
        };
        // The journal's tickets take the place of the file's (the file's generation and size
        // say whether it continues this file).
        let base = self.base_of(&file)?;
        let journal_ino = opened
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino());
        let read = match opened {
            Some(opened) => journal.read(opened)?,
            None => None,
        };
        let read = match read {
            Some(read) => {
                let len = file.metadata().with_context(cannot)?.len();
                match read.fit(&journal, base.map(|b| b.2), len)? {
                    Fit::Continues => Some(read),
                    Fit::PassedOver => None,
                }
            }
            None => None,
        };
        let mark = base.map(|base| Mark {
            base,
            journal: read
                .as_ref()
                .zip(journal_ino)
                .map(|(r, ino)| (ino, r.len(), r.generation() + 1)),
        });
        let latest = read.as_ref().map(journal::Read::latest).unwrap_or_default();
        // New ids go in id order among the file's; each id goes once.
        let mut journal_left = latest.iter().peekable();
        let mut from_journal = std::collections::HashSet::new();
        // As `ticket_lines`, a line at a time: anything unexpected sends the file the whole way.
        let mut lines = lines::Lines::new(file);
        let streamed = (|| -> Result<Option<(usize, ArchiveTotals)>> {
            let ended = |line: Option<(&[u8], bool)>| {
                line.filter(|(_, ended)| *ended).map(|(l, _)| l.to_vec())
            };
            let header = ended(lines.next_line().with_context(cannot)?).is_some_and(|line| {
                line.strip_prefix(b"{\"version\":")
                    .and_then(|v| v.strip_suffix(b","))
                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u32>().ok())
                    .is_some_and(|v| v <= VERSION)
            }) && ended(lines.next_line().with_context(cannot)?).as_deref()
                == Some(b"\"tickets\":{");
            if !header {
                return Ok(None);
            }
            // Ids seen, by hash: a collision only sends the file the whole way.
            let ids = std::collections::hash_map::RandomState::new();
            let mut seen = std::collections::HashSet::new();
            let more = loop {
                let Some(line) = lines.next_line().with_context(cannot)? else {
                    return Ok(None);
                };
                let (line, true) = line else {
                    return Ok(None);
                };
                if line == b"}," || line == b"}" {
                    break line == b"},";
                }
                let Some((id, raw)) = ticket_line(line) else {
                    return Ok(None);
                };
                if !seen.insert(ids.hash_one(id)) {
                    return Ok(None);
                }
                while let Some((&new, &raw)) = journal_left.next_if(|(new, _)| **new < id) {
                    if from_journal.insert(new) {
                        each(Some((new, status_of(raw)?, raw)))?;
                    }
                }
                match latest.get_key_value(id) {
                    Some((&changed, &raw)) => {
                        if from_journal.insert(changed) {
                            each(Some((id, status_of(raw)?, raw)))?;
                        }
                    }
                    None => each(Some((id, status_of(raw)?, raw)))?,
                }
            };
            for (&new, &raw) in journal_left {
                if from_journal.insert(new) {
                    each(Some((new, status_of(raw)?, raw)))?;
                }
            }
            // The rest, as its own object (small: ids and sums). The document must end
            // where encode ends it: a cut-off file goes the slow way.
            let mut tail = b"{".to_vec();
            while let Some((line, _)) = lines.next_line().with_context(cannot)? {
                tail.extend_from_slice(line);
                tail.push(b'\n');
            }
            if !more {
                return Ok((tail.trim_ascii() == b"{}").then(|| (0, ArchiveTotals::default())));
            }
            if !tail.trim_ascii_end().ends_with(b"}") {
                return Ok(None);
            }
            Ok(serde_json::from_slice::<ArchiveTail>(&tail)
                .ok()
                .map(|t| (t.archived, t.archive_totals)))
        })()?;
        if let Some((archived, totals)) = streamed {
            return Ok(Scanned {
                archived,
                totals,
                mark,
            });
        }
        each(None)?;
        let Some(bytes) = self.read_bytes()? else {
            return Ok(Scanned::default());
        };
        match raw_tickets(&bytes) {
            Some(raws) => {
                for (id, raw) in raws {
                    each(Some((id, status_of(raw)?, raw)))?;
                }
            }
            None => {
                for t in self.decode(&bytes)?.tickets.values() {
                    each(Some((t.id.as_str(), t.status, &serde_json::to_vec(t)?)))?;
                }
            }
        }
        let (archived, totals) = self.archived_in(&bytes)?;
        Ok(Scanned {
            archived,
            totals,
            mark: None,
        })
    }

    fn read_where_with(
        &self,
        wanted: impl Fn(Status) -> bool,
        other: impl FnMut(Status, &[u8]) -> Result<()>,
    ) -> Result<Vec<Ticket>> {
        self.read_where_decoding(wanted, other, |raw| serde_json::from_slice(raw))
    }

    /// [`Store::read_where_with`], decoding the wanted tickets with `decode`. The file is
    /// read a line at a time (see [`Store::scan_raw`]); when it must be read again another
    /// way, `other` may be handed a ticket a second time.
    fn read_where_decoding(
        &self,
        wanted: impl Fn(Status) -> bool,
        mut other: impl FnMut(Status, &[u8]) -> Result<()>,
        decode: impl Fn(&[u8]) -> serde_json::Result<Ticket>,
    ) -> Result<Vec<Ticket>> {
        let mut out = Vec::new();
        self.scan_locked(|ticket| {
            match ticket {
                Some((_, status, raw)) if wanted(status) => {
                    out.push(decode(raw).map_err(|e| self.damaged(&e))?);
                }
                Some((_, status, raw)) => other(status, raw)?,
                None => out.clear(),
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The tickets a list shows: those `wanted` in the state file and, when done tickets are
    /// wanted, the archived ones done within `keep_done_days` too (the latest copy of each
    /// id), in list order.
    ///
    /// # Errors
    /// As [`Store::load`], or the archive cannot be read.
    pub fn load_listed(&self, wanted: impl Fn(Status) -> bool) -> Result<Vec<Ticket>> {
        let tickets = self.load_where(&wanted)?;
        self.with_archived(tickets, wanted)
    }

    /// [`Store::load_listed`] for a table of tickets: each open ticket is decoded without its
    /// texts, snapshot, trail and branch (see [`Ticket::listed`]), which are most of its bytes
    /// and none of a table's columns.
    ///
    /// # Errors
    /// As [`Store::load_listed`].
    pub fn load_listed_light(&self, wanted: impl Fn(Status) -> bool) -> Result<Vec<Ticket>> {
        let tickets = {
            let _lock = self.lock(false)?;
            self.read_where_decoding(&wanted, |_, _| Ok(()), Ticket::listed)?
        };
        self.with_archived(tickets, wanted)
    }

    fn with_archived(
        &self,
        mut tickets: Vec<Ticket>,
        wanted: impl Fn(Status) -> bool,
    ) -> Result<Vec<Ticket>> {
        if wanted(Status::Done) {
            let mut known: std::collections::HashSet<TicketId> =
                tickets.iter().map(|t| t.id.clone()).collect();
            let since = self.keep_done.map(|keep| crate::ticket::now() - keep);
            let mut archived = self.archive().load_since(since)?;
            // A crash between an append and the write can archive an id twice: the latest wins.
            archived.reverse();
            tickets.extend(
                archived
                    .into_iter()
                    .filter(|t| wanted(t.status) && known.insert(t.id.clone())),
            );
        }
        Ok(in_list_order(tickets))
    }

    /// How many tickets a file's bytes say are archived, and their totals, decoding no ticket.
    fn archived_in(&self, bytes: &[u8]) -> Result<(usize, ArchiveTotals)> {
        // The part after the tickets, as its own object; any other layout is decoded whole.
        let tail = ticket_lines(bytes).and_then(|lines| {
            let end = lines.last().map_or(0, |(_, raw)| {
                raw.as_ptr() as usize - bytes.as_ptr() as usize + raw.len()
            });
            let rest = &bytes[end..];
            let at = memchr::memmem::find(rest, b"\n},\n")? + 4;
            let mut object = b"{".to_vec();
            object.extend_from_slice(&rest[at..]);
            serde_json::from_slice::<ArchiveTail>(&object).ok()
        });
        match tail {
            Some(t) => Ok((t.archived, t.archive_totals)),
            None => {
                let state = self.decode(bytes)?;
                Ok((state.archived.len(), state.archive_totals))
            }
        }
    }

    /// One ticket, decoding no other (an archived one is not looked for).
    ///
    /// # Errors
    /// As [`Store::load`].
    pub fn find(&self, id: &TicketId) -> Result<Option<Ticket>> {
        let _lock = self.lock(false)?;
        if let Some(opened) = self.open_fast()? {
            let raw = opened
                .get(id.as_str())
                .with_context(|| format!("cannot read the state file {}", self.path.display()))?;
            return raw
                .map(|raw| serde_json::from_slice(&raw).map_err(|e| self.damaged(&e)))
                .transpose();
        }
        let Some(parts) = self.read_parts()? else {
            return Ok(None);
        };
        if let Some(raw) = parts.journal.as_ref().and_then(|j| j.ticket(id.as_str())) {
            return serde_json::from_slice(raw)
                .map(Some)
                .map_err(|e| self.damaged(&e));
        }
        let bytes = parts.base;
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
    /// encoding every other ticket: in a file of the layout [`encode`] writes that is provably
    /// the one the last writer left (see the module's doc), the ticket's line and the
    /// generation are replaced and every other byte kept. Any other file goes the whole way,
    /// so a damaged one is refused exactly as by [`Store::update`]. Done tickets are archived
    /// the whole way.
    ///
    /// # Errors
    /// Unknown ticket (not found), whatever `change` returns, or as [`Store::update`].
    pub fn update_ticket<T>(
        &self,
        id: &TicketId,
        change: impl FnOnce(&mut Ticket) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock(true)?;
        let Some(opened) = self.open_fast()? else {
            let Some(old) = self.read_bytes()? else {
                return Err(crate::error::Error::NotFound(id.to_string()).into());
            };
            return self.update_locked(Some(old), |s| change(s.get_mut(id)?));
        };
        let cannot = || format!("cannot read the state file {}", self.path.display());
        let Some(raw) = opened.get(id.as_str()).with_context(cannot)? else {
            return Err(crate::error::Error::NotFound(id.to_string()).into());
        };
        let mut ticket: Ticket = serde_json::from_slice(&raw).map_err(|e| self.damaged(&e))?;
        let out = change(&mut ticket)?;
        if &ticket.id != id {
            anyhow::bail!("a change may not give {id} another id");
        }
        if ticket.status == Status::Done && ticket.op.is_none() {
            // Done: it leaves the file for the archive, which the whole way does.
            drop(opened);
            let old = self.read_bytes()?;
            self.update_locked(old, |s| {
                s.tickets.insert(id.clone(), ticket);
                Ok(())
            })?;
            return Ok(out);
        }
        let new_raw = serde_json::to_vec(&ticket).context("cannot encode the ticket")?;
        if new_raw != raw {
            self.put_one(&opened, id.as_str(), &new_raw)?;
        }
        Ok(out)
    }

    /// Adds a ticket that must be new, like `update(|s| s.tickets.insert(..))`, but in a file
    /// the fast path may change (see [`Store::update_ticket`]) without decoding any other
    /// ticket: the new line goes in its place in id order and every other byte is kept, so
    /// the file is byte for byte what a whole update would write. `refuse` makes the error
    /// when the id is in the queue (given that ticket) or archived (given `None`).
    ///
    /// # Errors
    /// What `refuse` makes, or as [`Store::update`].
    pub fn insert_new(
        &self,
        ticket: &Ticket,
        refuse: impl FnOnce(Option<&Ticket>) -> anyhow::Error,
    ) -> Result<()> {
        let _lock = self.lock(true)?;
        let Some(opened) = self.open_fast()? else {
            let old = self.read_bytes()?;
            return self.update_locked(old, |s| {
                if let Some(t) = s.tickets.get(&ticket.id) {
                    return Err(refuse(Some(t)));
                }
                if s.archived.contains(&ticket.id) {
                    return Err(refuse(None));
                }
                s.tickets.insert(ticket.id.clone(), ticket.clone());
                Ok(())
            });
        };
        let id = ticket.id.as_str();
        let cannot = || format!("cannot read the state file {}", self.path.display());
        if let Some(raw) = opened.get(id).with_context(cannot)? {
            let existing: Ticket = serde_json::from_slice(&raw).map_err(|e| self.damaged(&e))?;
            return Err(refuse(Some(&existing)));
        }
        if archived_line(&opened.tail).is_some_and(|line| holds_archived(line, &ticket.id)) {
            return Err(refuse(None));
        }
        let raw = serde_json::to_vec(ticket).context("cannot encode the ticket")?;
        self.put_one(&opened, id, &raw)
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
        if state.version < VERSION {
            // A file of the earlier format kept every ticket's text beside its HTML: from now
            // on only where the HTML does not give it.
            for t in state.tickets.values_mut() {
                t.compact_text();
            }
        }
        let out = change(&mut state)?;
        // A file of an earlier format is written in today's.
        state.version = VERSION;
        let archived = self.archive_done(&mut state)?;
        let mut new_bytes = encode(&state, old_bytes.as_ref().map_or(0, Vec::len))?;
        if old_bytes.as_deref() != Some(new_bytes.as_slice()) {
            let at = tail_generation(&new_bytes).map_or(new_bytes.len(), |(_, at)| at);
            new_bytes.truncate(at);
            put_generation(&mut new_bytes, state.generation + 1);
            if let Err(e) = self.write_unlocked(&new_bytes, old_bytes.is_some()) {
                // The tickets stay in the state file: their archive lines go too.
                if let Some(len) = archived {
                    self.archive().truncate(len);
                }
                return Err(e);
            }
            // The file now holds the journal's changes.
            self.journal().remove();
        }
        Ok(out)
    }

    /// Appends the done tickets (those no operation holds any more) to the archive (synced)
    /// before the state file that drops them is written: a crash in between leaves a ticket
    /// in both, never in neither, and readers prefer the state file's copy. An append that
    /// fails (a full disk) is cut back off, so the archive is as it was and the tickets stay
    /// in the state file until a later write archives them. Returns the archive's length
    /// before the append, when one was made.
    fn archive_done(&self, state: &mut State) -> Result<Option<u64>> {
        let done: Vec<&Ticket> = state
            .tickets
            .values()
            .filter(|t| t.status == Status::Done && t.op.is_none())
            .collect();
        if done.is_empty() {
            return Ok(None);
        }
        let Some(len) = self.archive().append(&done)? else {
            return Ok(None);
        };
        let ids: Vec<TicketId> = done.iter().map(|t| t.id.clone()).collect();
        for id in ids {
            if let Some(t) = state.tickets.remove(&id) {
                state.archive_totals.add(&t);
                state.archived.insert(id);
            }
        }
        Ok(Some(len))
    }

    fn lock(&self, exclusive: bool) -> Result<Option<Lock>> {
        if exclusive {
            Lock::exclusive(&self.lock_path(), "the state lock").map(Some)
        } else {
            // A reader without a lock file (nothing was ever written, a read-only folder)
            // reads without it: writers replace the file atomically, so it is never torn.
            Ok(Lock::shared(&self.lock_path(), "the state lock").unwrap_or(None))
        }
    }

    /// Where the fingerprint of the last file a writer left is kept.
    #[must_use]
    pub fn verified_path(&self) -> PathBuf {
        sibling(&self.path, ".verified")
    }

    /// When the state file is the very file the last writer left: whether that writer
    /// recorded it as one the one-ticket paths may change without reading it (see
    /// [`Opened`]).
    fn verified(&self) -> Option<bool> {
        let recorded = fs::read_to_string(self.verified_path()).ok()?;
        let mut lines = recorded.lines();
        let recorded_fp = lines.next()?;
        (fingerprint(&self.path)? == recorded_fp).then(|| lines.next() == Some(ONE_TICKET_LAYOUT))
    }

    /// Records the state file as one a writer left, and whether it is in the one-ticket
    /// layout. Best effort and not synced: a lost or stale record only sends the next fast
    /// write the whole way.
    fn mark_verified(&self, one_ticket_layout: bool) {
        let path = self.verified_path();
        match fingerprint(&self.path) {
            Some(mut fp) => {
                if one_ticket_layout {
                    fp.push('\n');
                    fp.push_str(ONE_TICKET_LAYOUT);
                }
                let _ = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&path)
                    .and_then(|mut f| f.write_all(fp.as_bytes()));
            }
            None => {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// The generation of the state file alone as it is now, read from its last bytes, and
    /// its size; `None` when there is no file or it does not end the way a writer ends it.
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub fn generation(&self) -> Result<Option<(u64, u64)>> {
        Ok(self.look()?.flatten().map(|v| (v.generation, v.len)))
    }

    /// Which version of the state is there now, to tell it from another: `None` when there
    /// is no state file, `Some(None)` when its version cannot be told (it does not end the
    /// way a writer ends it). A stat of the journal, an open, a stat and one read of the
    /// file's last bytes, as a server asks this of every request.
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub fn look(&self) -> Result<Option<Option<Version>>> {
        use std::os::unix::fs::MetadataExt as _;
        // The journal first, as every reader (see the `journal` module).
        let journal = match fs::metadata(self.journal().path()) {
            Ok(m) => Some((m.ino(), m.len(), m.ctime(), m.ctime_nsec())),
            Err(_) => None,
        };
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the state file {}", self.path.display()))
            }
        };
        Ok(Some(self.base_of(&file)?.map(|(_, len, generation)| {
            Version {
                generation,
                len,
                journal,
            }
        })))
    }

    /// The state's bytes, the journal's changes put in their places: what the state file
    /// would hold had every change been written whole. `None` when there is no state file.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>> {
        self.read_parts()?.map(|p| self.merged(p)).transpose()
    }

    /// The state file's bytes and the journal continuing it; `None` when there is no state
    /// file (a journal without one is passed over). The journal is opened first: see the
    /// `journal` module.
    fn read_parts(&self) -> Result<Option<Parts>> {
        let journal = self.journal();
        let opened = journal.open()?;
        let Some(base) = self.read_base()? else {
            return Ok(None);
        };
        let read = match opened {
            Some(file) => journal.read(file)?,
            None => None,
        };
        let journal = match read {
            Some(read) => {
                let generation = tail_generation(&base).map(|(g, _)| g);
                match read.fit(&journal, generation, base.len() as u64)? {
                    Fit::Continues => Some(read),
                    Fit::PassedOver => None,
                }
            }
            None => None,
        };
        Ok(Some(Parts { base, journal }))
    }

    /// The state file with the journal's changes in it.
    fn merged(&self, parts: Parts) -> Result<Vec<u8>> {
        let Some(journal) = parts.journal.filter(|j| !j.is_empty()) else {
            return Ok(parts.base);
        };
        let latest = journal.latest();
        if let Some(bytes) = splice(&parts.base, &latest, journal.generation()) {
            return Ok(bytes);
        }
        // A file laid out by hand (its tail as a writer leaves it): decoded, changed, encoded.
        let mut state = self.decode(&parts.base)?;
        for raw in latest.values() {
            let t: Ticket = serde_json::from_slice(raw).map_err(|e| {
                anyhow::anyhow!(
                    "the state journal {} holds a ticket that does not read: {e}",
                    self.journal().path().display()
                )
            })?;
            state.tickets.insert(t.id.clone(), t);
        }
        state.generation = journal.generation();
        encode(&state, parts.base.len())
    }

    /// The state file's own bytes; `None` when it does not exist.
    fn read_base(&self) -> Result<Option<Vec<u8>>> {
        match fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e)
                .with_context(|| format!("cannot read the state file {}", self.path.display())),
        }
    }

    /// The state file opened for a one-ticket path (see [`Opened`]); `None` when it is not
    /// such a file (or there is none), and the change goes the whole way.
    fn open_fast(&self) -> Result<Option<Opened>> {
        let cannot = || format!("cannot read the state file {}", self.path.display());
        let journal = self.journal();
        let opened_journal = journal.open()?;
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(cannot),
        };
        if self.verified() != Some(true) {
            return Ok(None);
        }
        let len = file.metadata().with_context(cannot)?.len();
        let start = HEADER_LEN as u64;
        // What follows the tickets, found from the end: in the last 64 KiB, or the last MiB.
        let mut after = None;
        for span in [64 * 1024, 1 << 20] {
            let from = len.saturating_sub(span);
            let bytes =
                located::read_at(&file, from, usize::try_from(len - from)?).with_context(cannot)?;
            if let Some(at) = memchr::memmem::rfind(&bytes, b"\n},\n\"dismissed\":") {
                after = Some((from + at as u64, bytes[at + 1..].to_vec()));
                break;
            }
            if from == 0 {
                break;
            }
        }
        let Some((end, tail)) = after.filter(|(end, _)| *end > start) else {
            return Ok(None);
        };
        let Some((base_generation, _)) = tail_generation(&tail) else {
            return Ok(None);
        };
        let read = match opened_journal {
            Some(f) => journal.read(f)?,
            None => None,
        };
        let journal = match read {
            Some(read) => match read.fit(&journal, Some(base_generation), len)? {
                Fit::Continues => Some(read),
                Fit::PassedOver => None,
            },
            None => None,
        };
        if journal.as_ref().is_some_and(journal::Read::holds_done) {
            return Ok(None);
        }
        Ok(Some(Opened {
            file,
            len,
            lines: (start, end),
            tail,
            base_generation,
            journal,
        }))
    }

    /// Records one ticket's new bytes as the next generation: appended to the journal while
    /// the file is large enough to keep one and the journal small enough, else written into
    /// the whole file (which then holds the journal's changes too, so the journal goes).
    fn put_one(&self, opened: &Opened, id: &str, raw: &[u8]) -> Result<()> {
        let generation = opened.generation() + 1;
        let journal = self.journal();
        let journal_len = opened.journal.as_ref().map_or(0, journal::Read::len);
        if opened.len > self.journal_above
            && journal_len + raw.len() as u64 <= fold_limit(opened.len)
        {
            let base = (opened.base_generation, opened.len);
            return journal.append(opened.journal.as_ref(), base, generation, id, raw);
        }
        let base = located::read_at(&opened.file, 0, usize::try_from(opened.len)?)
            .with_context(|| format!("cannot read the state file {}", self.path.display()))?;
        let mut changed = opened
            .journal
            .as_ref()
            .map(journal::Read::latest)
            .unwrap_or_default();
        changed.insert(id, raw);
        let bytes = splice(&base, &changed, generation)
            .context("the state file is not laid out as its writer recorded")?;
        self.write_unlocked(&bytes, true)?;
        journal.remove();
        Ok(())
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
        create_private_dir(dir)?;
        if had_old {
            // The previous good state stays reachable as .bak: a hard link costs no copy, and the
            // old inode survives the rename below.
            let bak = self.backup_path();
            let _ = fs::remove_file(&bak);
            if fs::hard_link(&self.path, &bak).is_err() {
                let _ = fs::copy(&self.path, &bak);
            }
        }
        let prefix = self.temp_prefix();
        remove_stale_temp_files(dir, &prefix);
        // tempfile makes it 0600 whatever the umask: the state holds ticket text.
        let mut tmp = tempfile::Builder::new()
            .prefix(&prefix)
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
        // Every file written is in the layout `encode` writes.
        self.mark_verified(is_current(bytes) && bytes.get(HEADER_LEN) == Some(&b'"'));
        Ok(())
    }

    /// The start of this state file's temp files' names: `.<file name>.`, so two stores in
    /// one folder never take each other's for stale.
    fn temp_prefix(&self) -> String {
        format!(
            ".{}.",
            self.path.file_name().unwrap_or_default().to_string_lossy()
        )
    }
}

/// Creates a folder of plane-orch's data (and any missing parent) readable by its owner only,
/// whatever the umask: it holds ticket text from strangers and session details.
///
/// # Errors
/// The folder cannot be created.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))
}

/// The identity of the file at `path` as one line: device, inode, size, mtime, ctime.
fn fingerprint(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(format!(
        "{} {} {} {}.{} {}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// The tickets in list order, each moved once: a ticket is large, and a sort of the tickets
/// themselves moves each many times.
fn in_list_order(tickets: Vec<Ticket>) -> Vec<Ticket> {
    // The keys side by side: comparing them there is what the sort does 130,000 times at
    // 10,000 tickets, and reaching into each ticket for them cost most of it.
    // Status and time as one number (nanoseconds from the epoch cover 1677 to 2262: a
    // ticket's times are in that span), then the id.
    let mut order: Vec<(u128, &str, usize)> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let at = t.queued_at.timestamp_nanos_opt().unwrap_or(i64::MIN);
            #[allow(clippy::cast_sign_loss)] // shifted to order the negative ones first
            let at = (at as u64) ^ (1 << 63);
            (
                ((t.status.rank() as u128) << 64) | u128::from(at),
                t.id.as_str(),
                i,
            )
        })
        .collect();
    order.sort_unstable();
    // Where each ticket goes; then each swap puts one ticket in its place, so every ticket
    // moves about once and no second array of them is made.
    let mut place = vec![0; order.len()];
    for (to, &(.., from)) in order.iter().enumerate() {
        place[from] = to;
    }
    drop(order);
    let mut tickets = tickets;
    for i in 0..tickets.len() {
        while place[i] != i {
            let j = place[i];
            tickets.swap(i, j);
            place.swap(i, j);
        }
    }
    tickets
}

/// Whether the file is of the version this binary writes: the fast paths keep a file's
/// header, so an older file goes the whole way once and is rewritten in today's layout.
/// A file still holding a done ticket (its archiving failed on a full disk) goes the whole
/// way too, so the next write of any kind archives it. `"status":"done"` can only be a
/// ticket's status (see [`quick_status`]), so one search of the file tells.
fn is_current(bytes: &[u8]) -> bool {
    bytes.starts_with(format!("{{\"version\":{VERSION},\n").as_bytes())
        && memchr::memmem::find(bytes, b"\"status\":\"done\"").is_none()
}

/// Whether the `"archived":{...}` line holds `id` (only its project's runs are looked at).
/// A line that does not read says yes: the id is then refused rather than taken twice.
fn holds_archived(line: &[u8], id: &TicketId) -> bool {
    let Some(body) = line.strip_prefix(b"\"archived\":") else {
        return true;
    };
    let body = body.strip_suffix(b",").unwrap_or(body);
    if body.starts_with(b"[") {
        // A list of ids, as an earlier plane-orch wrote it.
        return memchr::memmem::find(body, format!("\"{id}\"").as_bytes()).is_some();
    }
    let Ok(runs) = serde_json::from_slice::<BTreeMap<&str, &str>>(body) else {
        return true;
    };
    let (project, suffix) = id.as_str().split_once('-').unwrap_or((id.as_str(), ""));
    runs.get(project)
        .is_some_and(|items| archived_ids::holds(items, suffix))
}

/// The `"archived":` line of the part of a file after its tickets, as [`encode`] lays it.
fn archived_line(rest: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\n\"archived\":";
    let at = memchr::memmem::find(rest, KEY)?;
    let line = &rest[at + 1..];
    Some(&line[..memchr::memchr(b'\n', line).unwrap_or(line.len())])
}

/// The last line of the layout [`encode`] writes, and where its `"generation"` key starts.
const GENERATION_KEY: &[u8] = b"\"generation\":";

/// The generation on the last line of `bytes` and the offset of the `,\n` before it; `None`
/// when the file does not end that way. That byte run can only be a key of the outermost
/// object: inside a JSON string every `"` is escaped.
fn tail_generation(bytes: &[u8]) -> Option<(u64, usize)> {
    let body = bytes.strip_suffix(b"\n}\n")?;
    let key = memchr::memmem::rfind(body, GENERATION_KEY)?;
    let digits = &body[key + GENERATION_KEY.len()..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let at = key.checked_sub(2).filter(|&at| &body[at..key] == b",\n")?;
    Some((std::str::from_utf8(digits).ok()?.parse().ok()?, at))
}

/// Ends `bytes` (cut where [`tail_generation`] says) with the generation line.
fn put_generation(bytes: &mut Vec<u8>, generation: u64) {
    bytes.extend_from_slice(b",\n");
    bytes.extend_from_slice(GENERATION_KEY);
    bytes.extend_from_slice(generation.to_string().as_bytes());
    bytes.extend_from_slice(b"\n}\n");
}

/// The file `base` (of the layout [`encode`] writes, with at least one ticket) with the
/// tickets of `changed` in their places, new ids in id order, and `generation`: byte for
/// byte what encoding the changed state would give. `None` for any other layout.
fn splice(base: &[u8], changed: &BTreeMap<&str, &[u8]>, generation: u64) -> Option<Vec<u8>> {
    let lines = ticket_lines(base)?;
    let (_, at) = tail_generation(base)?;
    let offset = |part: &[u8]| part.as_ptr() as usize - base.as_ptr() as usize;
    let (first_id, first) = *lines.first()?;
    let (_, last) = *lines.last()?;
    // `"<id>":` takes two quotes, the id and a colon before the ticket.
    let start = offset(first) - first_id.len() - 3;
    let end = offset(last) + last.len();
    let grown: usize = changed
        .iter()
        .map(|(id, raw)| id.len() + raw.len() + 6)
        .sum();
    let mut out = Vec::with_capacity(base.len() + grown + 64);
    out.extend_from_slice(&base[..start]);
    let put = |out: &mut Vec<u8>, id: &str, raw: &[u8]| {
        if out.len() > start {
            out.extend_from_slice(b",\n");
        }
        out.push(b'"');
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(raw);
    };
    let mut new = changed.iter().peekable();
    for &(id, raw) in &lines {
        while let Some((&nid, &nraw)) = new.next_if(|(nid, _)| **nid < id) {
            put(&mut out, nid, nraw);
        }
        match new.next_if(|(nid, _)| **nid == id) {
            Some((_, &nraw)) => put(&mut out, id, nraw),
            None => put(&mut out, id, raw),
        }
    }
    for (&nid, &nraw) in new {
        put(&mut out, nid, nraw);
    }
    out.extend_from_slice(&base[end..at]);
    put_generation(&mut out, generation);
    Some(out)
}

/// A writer killed between creating its temp file and renaming it leaves the file behind.
/// Under the exclusive lock no other writer of this state file can have one in flight, so any
/// of its temp files found is stale. Other state files' temp files are not ours to judge.
fn remove_stale_temp_files(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(".tmp") {
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
        put(&mut out, &archived_ids::encode(&state.archived))?;
    }
    if !state.archive_totals.is_empty() {
        out.extend_from_slice(b",\n\"archive_totals\":");
        put(&mut out, &state.archive_totals)?;
    }
    put_generation(&mut out, state.generation);
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
    if !dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
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
        assert_eq!(text.lines().count(), 9, "{text}");
        assert!(text.ends_with(",\n\"generation\":0\n}\n"), "{text}");
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
        t.description_text = crate::ticket::Text::kept("\"status\":\"done\"".into());
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
        // The done one went to the archive as it became done.
        assert_eq!(store.load_where(|_| true).unwrap().len(), 1);
        assert_eq!(store.load_listed(|_| true).unwrap().len(), 2);
    }

    /// Every ticket `scan_raw` hands on, by id.
    fn scanned(store: &Store) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        store
            .scan_raw(false, |t| {
                match t {
                    Some((id, _, raw)) => out.insert(id.to_string(), raw.to_vec()),
                    None => {
                        out.clear();
                        None
                    }
                };
                Ok(())
            })
            .unwrap()
            .unwrap();
        out
    }

    #[test]
    fn with_a_journal_every_reader_sees_what_whole_writes_would_have_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json")).journal_above_kib(0);
        // Never journals: the reference.
        let whole = Store::new(dir.path().join("w.json")).journal_above_kib(u64::MAX / 2048);
        let first: Vec<Ticket> = ["A-05", "A-10", "A-15"].map(ticket).into();
        for s in [&store, &whole] {
            for t in &first {
                s.update(|state| {
                    state.tickets.insert(t.id.clone(), t.clone());
                    Ok(())
                })
                .unwrap();
            }
        }
        let (mut journaled, mut folds) = (0, 0);
        for step in 0..300_usize {
            // New ids land before, between and after the others; known ones change.
            let id = TicketId::parse(&format!("A-{:02}", (step * 7) % 23)).unwrap();
            let new = ticket(id.as_str());
            for s in [&store, &whole] {
                if s.find(&id).unwrap().is_some() {
                    s.update_ticket(&id, |t| {
                        t.title = format!("step {step} {}", "x".repeat(step % 700));
                        Ok(())
                    })
                    .unwrap();
                } else {
                    s.insert_new(&new, |_| anyhow::anyhow!("known")).unwrap();
                }
            }
            let had = store.journal().path().exists();
            journaled += usize::from(had);
            folds += usize::from(!had && step > 0);
            let expected = fs::read(whole.path()).unwrap();
            assert!(
                store.read_bytes().unwrap().unwrap() == expected,
                "step {step}: the state read is not what a whole write left"
            );
            assert_eq!(store.find(&id).unwrap(), whole.find(&id).unwrap());
            if step % 25 == 0 {
                assert_eq!(scanned(&store), scanned(&whole), "step {step}");
                assert_eq!(
                    store.load_where(|_| true).unwrap(),
                    whole.load_where(|_| true).unwrap()
                );
            }
        }
        assert!(
            journaled > 200 && folds > 0,
            "{journaled} journaled, {folds} folds"
        );
        // An id already known is refused from the journal as from the file.
        let known = TicketId::parse("A-05").unwrap();
        assert!(store
            .insert_new(&ticket(known.as_str()), |_| anyhow::anyhow!("known"))
            .is_err());
        // A whole write takes the journal in and removes it.
        store
            .update(|s| {
                s.get_mut(&known)?.title = "whole".into();
                Ok(())
            })
            .unwrap();
        whole
            .update(|s| {
                s.get_mut(&known)?.title = "whole".into();
                Ok(())
            })
            .unwrap();
        assert!(!store.journal().path().exists());
        assert!(fs::read(store.path()).unwrap() == fs::read(whole.path()).unwrap());
    }

    #[test]
    fn a_journal_the_file_has_moved_past_is_passed_over_and_an_edit_by_hand_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json")).journal_above_kib(0);
        add(&store, "A-1");
        add(&store, "A-2");
        let a1 = TicketId::parse("A-1").unwrap();
        store
            .update_ticket(&a1, |t| {
                t.title = "journaled".into();
                Ok(())
            })
            .unwrap();
        assert!(store.journal().path().exists());
        let journal = fs::read(store.journal().path()).unwrap();
        // A fold killed after its rename, before it removed the journal: the old journal
        // is back beside a file that holds its changes and more.
        store
            .update(|s| {
                s.get_mut(&a1)?.title = "folded".into();
                Ok(())
            })
            .unwrap();
        fs::write(store.journal().path(), &journal).unwrap();
        assert_eq!(store.load().unwrap().tickets[&a1].title, "folded");
        assert_eq!(store.find(&a1).unwrap().unwrap().title, "folded");
        // The next change begins a journal of its own.
        store
            .update_ticket(&a1, |t| {
                t.title = "again".into();
                Ok(())
            })
            .unwrap();
        assert_eq!(store.load().unwrap().tickets[&a1].title, "again");
        // The file edited by hand (its size changed) while a change waits in the journal.
        let bytes = fs::read(store.path()).unwrap();
        let edited = String::from_utf8(bytes)
            .unwrap()
            .replace("\"title\":\"t\"", "\"title\":\"by hand\"");
        fs::write(store.path(), edited).unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("changed by hand"), "{err}");
        let err = store
            .update_ticket(&a1, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("changed by hand"), "{err}");
        assert!(store.journal().path().exists(), "the journal is kept");
    }

    #[test]
    fn tickets_are_put_in_list_order_in_place() {
        let statuses = [
            Status::Done,
            Status::Pending,
            Status::Active,
            Status::Completed,
        ];
        let tickets: Vec<Ticket> = (0..500_usize)
            .map(|i| {
                let mut t = ticket(&format!("A-{}", (i * 7919) % 1000));
                t.status = statuses[(i * 31) % 4];
                t.queued_at += chrono::TimeDelta::seconds(((i * 13) % 17) as i64);
                t
            })
            .collect();
        let mut expected = tickets.clone();
        expected.sort_by(Ticket::list_order);
        assert!(in_list_order(tickets) == expected);
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
        // The ticket's line and the generation's.
        assert_eq!(lines_changed, 2);
        assert_eq!(state.generation, 4);

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
    fn done_tickets_move_to_the_archive_and_list_shows_the_recent_ones() {
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
        assert_eq!(ids, ["A-3"]);
        assert!(state.knows(&TicketId::parse("A-1").unwrap()));
        assert!(state.knows(&TicketId::parse("A-2").unwrap()));
        assert_eq!(store.load_archive().unwrap().len(), 2);
        // list --status done: the archived ones of the last 30 days.
        let listed = store.load_listed(|s| s == Status::Done).unwrap();
        let ids: Vec<_> = listed.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["A-2"]);
        // show: any of them, whatever its age.
        for id in ["a-1", "A-2"] {
            let found = store.find_archived(&TicketId::parse(id).unwrap()).unwrap();
            assert_eq!(found.unwrap().id.as_str(), id.to_uppercase());
        }
        let err = store
            .update(|s| s.get_mut(&TicketId::parse("A-1").unwrap()).map(|_| ()))
            .unwrap_err();
        assert!(
            err.to_string().contains("A-1 is done (in the archive)"),
            "{err}"
        );
    }

    #[test]
    fn the_archive_index_is_made_again_when_missing_stale_or_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        let done = |ids: &[&str]| {
            store
                .update(|s| {
                    for id in ids {
                        let mut t = ticket(id);
                        t.transition(Status::Active, now(), None).unwrap();
                        t.transition(Status::Completed, now(), None).unwrap();
                        t.transition(Status::Done, now(), None).unwrap();
                        s.tickets.insert(t.id.clone(), t);
                    }
                    Ok(())
                })
                .unwrap();
        };
        done(&["A-1", "A-2"]);
        done(&["A-3"]);
        let index = store.archive().index_path();
        let find = |id: &str| {
            store
                .find_archived(&TicketId::parse(id).unwrap())
                .unwrap()
                .map(|t| t.id.to_string())
        };
        let all = || ["A-1", "A-2", "A-3"].map(&find);
        let expect = ["A-1", "A-2", "A-3"].map(|id| Some(id.to_string()));
        assert_eq!(all(), expect);
        assert_eq!(std::fs::read_to_string(&index).unwrap().lines().count(), 4);
        // Deleted.
        std::fs::remove_file(&index).unwrap();
        assert_eq!(all(), expect);
        // Stale: it covers only the first line of the archive.
        let text = std::fs::read_to_string(&index).unwrap();
        let first_two: Vec<&str> = text.lines().take(2).collect();
        std::fs::write(&index, format!("{}\n", first_two.join("\n"))).unwrap();
        assert_eq!(all(), expect);
        // Wrong: every offset points one byte off.
        let text = std::fs::read_to_string(&index).unwrap();
        let mut lines = text.lines();
        let mut wrong = format!("{}\n", lines.next().unwrap());
        for l in lines {
            let p: Vec<&str> = l.split(' ').collect();
            let off: u64 = p[1].parse().unwrap();
            wrong.push_str(&format!("{} {} {} {}\n", p[0], off + 1, p[2], p[3]));
        }
        std::fs::write(&index, wrong).unwrap();
        assert_eq!(all(), expect);
        // Torn, and of another file.
        std::fs::write(&index, "plane-orch archive index 1 1 2\nA-1 0").unwrap();
        assert_eq!(all(), expect);
        assert_eq!(find("A-9"), None);
        // Its sorted copy deleted, torn, of another version, pointing one byte off, or only
        // a first line.
        let sorted = store.archive().sorted_path();
        assert!(sorted.exists());
        std::fs::remove_file(&sorted).unwrap();
        assert_eq!(all(), expect);
        let good = std::fs::read_to_string(&sorted).unwrap();
        let torn = &good[..good.len() - 5];
        let other = good.replacen(" 1 ", " 7 ", 1);
        let off: String = good
            .lines()
            .enumerate()
            .map(|(n, l)| {
                let p: Vec<&str> = l.split(' ').collect();
                if n == 0 {
                    format!("{l}\n")
                } else {
                    let o: u64 = p[1].parse().unwrap();
                    format!("{} {} {} {}\n", p[0], o + 1, p[2], p[3])
                }
            })
            .collect();
        for bad in [torn, &other, &off, "plane-orch archive sorted 1"] {
            std::fs::write(&sorted, bad).unwrap();
            assert_eq!(all(), expect, "{bad}");
            assert_eq!(find("A-9"), None);
        }
    }

    #[test]
    fn a_new_ticket_goes_in_its_place_as_a_whole_update_would_put_it() {
        let dir = tempfile::tempdir().unwrap();
        let fast = Store::new(dir.path().join("fast.json"));
        let whole = Store::new(dir.path().join("whole.json"));
        add(&fast, "B-2");
        add(&fast, "B-4");
        let refuse = |t: Option<&Ticket>| {
            anyhow::anyhow!(
                "refused {}",
                t.map_or("archived".into(), |t| t.id.to_string())
            )
        };
        // Same bytes but the tickets' times: the whole file is rewritten from one of them.
        std::fs::copy(fast.path(), whole.path()).unwrap();
        for id in ["B-3", "A-1", "C-9"] {
            let t = ticket(id);
            fast.insert_new(&t, refuse).unwrap();
            whole
                .update(|s| {
                    s.tickets.insert(t.id.clone(), t.clone());
                    Ok(())
                })
                .unwrap();
            assert!(
                std::fs::read(fast.path()).unwrap() == std::fs::read(whole.path()).unwrap(),
                "after {id}"
            );
        }
        let err = fast.insert_new(&ticket("B-3"), refuse).unwrap_err();
        assert_eq!(err.to_string(), "refused B-3");
        fast.update(|s| {
            let t = s.get_mut(&TicketId::parse("B-3").unwrap())?;
            t.transition(Status::Active, now(), None)?;
            t.transition(Status::Completed, now(), None)?;
            t.transition(Status::Done, now(), None)
        })
        .unwrap();
        let err = fast.insert_new(&ticket("B-3"), refuse).unwrap_err();
        assert_eq!(err.to_string(), "refused archived");
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
