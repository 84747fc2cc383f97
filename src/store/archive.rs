//! The archive of done tickets: an append-only file of one JSON ticket a line
//! (`<state>.archive.jsonl`), and an index beside it (`<state>.archive.idx`) that says where
//! each ticket's line starts, so one archived ticket is read without reading the others.
//!
//! The archive is the truth; the index is a cache of it. Each index line is
//! `<id> <offset> <length> <done at, ms since the epoch or ->`, after a first line naming the
//! archive file it describes (device and inode). The index is extended from the archive's
//! tail when the archive has grown past what it covers, and made again from the whole archive
//! when it is missing, names another file, covers more than the archive holds, does not parse,
//! or points at a line that is not the ticket it names. A lost or torn index only costs one
//! scan of the archive.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::ticket::{Ticket, TicketId};

const HEADER: &str = "plane-orch archive index 1";

/// The archive of one state file.
#[derive(Debug, Clone)]
pub struct Archive {
    path: PathBuf,
}

/// Where one archived ticket's line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: TicketId,
    pub offset: u64,
    pub len: u64,
    pub done_at: Option<DateTime<Utc>>,
}

/// The index as read: its entries and the archive length they cover.
#[derive(Debug, Default)]
struct Index {
    entries: Vec<Entry>,
    covered: u64,
}

impl Archive {
    #[must_use]
    pub fn new(path: PathBuf) -> Archive {
        Archive { path }
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The index file beside the archive.
    #[must_use]
    pub fn index_path(&self) -> PathBuf {
        self.path.with_extension("idx")
    }

    /// Appends `tickets` (synced). An append that fails (a full disk) is cut back off, so the
    /// archive is as it was; `Ok(None)` then, and the caller keeps the tickets. Returns the
    /// archive's length before the append when it was made. The index learns the new lines at
    /// once (best effort: a failure there only costs a scan later).
    ///
    /// # Errors
    /// A ticket cannot be encoded, or the archive cannot be opened.
    pub fn append(&self, tickets: &[&Ticket]) -> Result<Option<u64>> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .with_context(|| format!("cannot open the archive {}", self.path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot read the archive {}", self.path.display()))?
            .len();
        let mut lines = Vec::new();
        // A line torn by an earlier failure that could not be cut off: start on a new line,
        // so the records after it stay readable.
        if len > 0 && !ends_with_newline(&file, len) {
            lines.push(b'\n');
        }
        let mut entries = Vec::with_capacity(tickets.len());
        for t in tickets {
            let offset = len + lines.len() as u64;
            serde_json::to_writer(&mut lines, t)
                .context("cannot encode a ticket for the archive")?;
            entries.push(Entry {
                id: t.id.clone(),
                offset,
                len: len + lines.len() as u64 - offset,
                done_at: t.done_at,
            });
            lines.push(b'\n');
        }
        if let Err(e) = file.write_all(&lines).and_then(|()| file.sync_all()) {
            let _ = file.set_len(len);
            let _ = file.sync_all();
            log::warn!(
                "cannot append to the archive {}: {e}; its done tickets stay in the state file",
                self.path.display()
            );
            return Ok(None);
        }
        self.index_appended(&file, len, &entries);
        Ok(Some(len))
    }

    /// Cuts the archive back to `len` bytes (undoing an append whose state write failed).
    pub fn truncate(&self, len: u64) {
        let cut = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.set_len(len).and_then(|()| f.sync_all()));
        if let Err(e) = cut {
            log::warn!("cannot cut back the archive {}: {e}", self.path.display());
        }
    }

    /// Every archived ticket, oldest first. A line that does not decode (the torn end of an
    /// append cut short, bytes that are not UTF-8) is skipped with a warning naming the file
    /// and line; the records around it are read.
    ///
    /// # Errors
    /// The archive exists but cannot be read.
    pub fn load(&self) -> Result<Vec<Ticket>> {
        let Some(bytes) = self.read()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if line.trim_ascii().is_empty() {
                continue;
            }
            match serde_json::from_slice::<Ticket>(line) {
                Ok(t) => out.push(t),
                Err(e) => log::warn!("{}:{}: skipped: {e}", self.path.display(), n + 1),
            }
        }
        Ok(out)
    }

    /// The archived tickets done at or after `since` (all with `None`), oldest first: only
    /// their lines are read and decoded, found through the index.
    ///
    /// # Errors
    /// The archive cannot be read.
    pub fn load_since(&self, since: Option<DateTime<Utc>>) -> Result<Vec<Ticket>> {
        let Some(since) = since else {
            return self.load();
        };
        let Some(file) = self.open()? else {
            return Ok(Vec::new());
        };
        let index = self.index(&file)?;
        let mut out = Vec::new();
        for e in index.entries.iter().filter(|e| e.done_at >= Some(since)) {
            match read_entry(&file, e) {
                Some(t) => out.push(t),
                // The index does not match the archive after all: read the archive whole.
                None => {
                    let _ = fs::remove_file(self.index_path());
                    let mut all = self.load()?;
                    all.retain(|t| t.done_at >= Some(since));
                    return Ok(all);
                }
            }
        }
        Ok(out)
    }

    /// One archived ticket by id (the latest copy, should it be there twice), read through
    /// the index: about the cost of reading that one ticket.
    ///
    /// # Errors
    /// The archive cannot be read.
    pub fn find(&self, id: &TicketId) -> Result<Option<Ticket>> {
        let Some(file) = self.open()? else {
            return Ok(None);
        };
        if let Some(found) = self.find_quickly(&file, id)? {
            return Ok(found);
        }
        // A miss in an index that covers the whole archive is a miss: it was made from this
        // very file (same inode, every byte scanned), so no full read is needed to say so.
        let index = self.index(&file)?;
        let Some(entry) = index.entries.iter().rev().find(|e| &e.id == id) else {
            return Ok(None);
        };
        if let Some(t) = read_entry(&file, entry) {
            return Ok(Some(t));
        }
        // The index points elsewhere (the archive was edited in place): make it again.
        let index = self.rebuild(&file)?;
        Ok(index
            .entries
            .iter()
            .rev()
            .find(|e| &e.id == id)
            .and_then(|e| read_entry(&file, e)))
    }

    /// [`Archive::find`] without parsing the whole index: when the index names this archive
    /// and covers all of it (its last line says so), the id's last line is searched for and
    /// only it is read. `Ok(Some(None))`: not archived. `Ok(None)`: this cannot tell (the
    /// index is missing, behind, or leads elsewhere); the caller goes the long way.
    fn find_quickly(&self, file: &File, id: &TicketId) -> Result<Option<Option<Ticket>>> {
        let meta = self.meta(file)?;
        let Ok(index) = File::open(self.index_path()) else {
            return Ok(None);
        };
        let Ok(index_len) = index.metadata().map(|m| m.len()) else {
            return Ok(None);
        };
        let header = format!("{}\n", header_of(&meta));
        let mut first = vec![0; header.len()];
        if index.read_exact_at(&mut first, 0).is_err() || first != header.as_bytes() {
            return Ok(None);
        }
        let body_start = header.len() as u64;
        if index_len == body_start {
            return Ok((meta.len() == 0).then_some(None));
        }
        // The last line says how much of the archive the index covers: all of it, or this
        // cannot tell.
        let tail_from = index_len.saturating_sub(512).max(body_start);
        let mut tail = vec![0; usize::try_from(index_len - tail_from)?];
        if index.read_exact_at(&mut tail, tail_from).is_err() {
            return Ok(None);
        }
        let Some(trimmed) = tail.strip_suffix(b"\n") else {
            return Ok(None);
        };
        let entry_at = |line: &[u8]| std::str::from_utf8(line).ok().and_then(parse_entry);
        let last = &trimmed[memchr::memrchr(b'\n', trimmed).map_or(0, |n| n + 1)..];
        match entry_at(last) {
            Some(e) if e.offset + e.len + 1 == meta.len() => {}
            _ => return Ok(None),
        }
        // The line starting `<id> `: one after a newline (the header's ends the line before
        // the first). The last copy wins (a crash can archive one twice), so the index is read
        // from its end a piece at a time, each piece reaching a needle's length into the one
        // after it (read before): a recently done ticket, the one most often shown, is found
        // in the first piece read.
        let needle = format!("\n{id} ").into_bytes();
        let finder = memchr::memmem::Finder::new(&needle);
        let mut found = None;
        let mut buf = vec![0; 256 * 1024];
        let lowest = body_start - 1;
        let mut hi = index_len;
        while hi > lowest && found.is_none() {
            let from = hi.saturating_sub(buf.len() as u64).max(lowest);
            let to = (hi + needle.len() as u64 - 1).min(index_len);
            let want = usize::try_from(to - from)?;
            if buf.len() < want {
                buf.resize(want, 0);
            }
            if index.read_exact_at(&mut buf[..want], from).is_err() {
                return Ok(None);
            }
            let piece = &buf[..want];
            let mut at = 0;
            while let Some(n) = finder.find(&piece[at..]) {
                found = Some(from + (at + n + 1) as u64);
                at += n + 1;
            }
            hi = from;
        }
        let Some(start) = found else {
            return Ok(Some(None));
        };
        let mut line = vec![0; usize::try_from((index_len - start).min(512))?];
        if index.read_exact_at(&mut line, start).is_err() {
            return Ok(None);
        }
        let line = &line[..memchr::memchr(b'\n', &line).unwrap_or(line.len())];
        Ok(entry_at(line).and_then(|e| read_entry(file, &e)).map(Some))
    }

    fn meta(&self, file: &File) -> Result<fs::Metadata> {
        file.metadata()
            .with_context(|| format!("cannot read the archive {}", self.path.display()))
    }

    fn open(&self) -> Result<Option<File>> {
        match File::open(&self.path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read the archive {}", self.path.display()))
            }
        }
    }

    fn read(&self) -> Result<Option<Vec<u8>>> {
        match fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read the archive {}", self.path.display()))
            }
        }
    }

    /// The index, brought up to date with the archive: extended by the lines appended since
    /// it was written, or made anew when it does not describe this archive.
    fn index(&self, file: &File) -> Result<Index> {
        let meta = self.meta(file)?;
        let header = header_of(&meta);
        let Some(mut index) = fs::read(self.index_path())
            .ok()
            .and_then(|b| parse_index(&b, &header))
        else {
            return self.rebuild(file);
        };
        match index.covered.cmp(&meta.len()) {
            std::cmp::Ordering::Equal => Ok(index),
            std::cmp::Ordering::Greater => self.rebuild(file),
            std::cmp::Ordering::Less => {
                let (tail, covered) = scan(&self.path, file, index.covered, meta.len())?;
                if covered > index.covered {
                    append_to_index(&self.index_path(), &entries_text(&tail));
                }
                index.entries.extend(tail);
                index.covered = covered;
                Ok(index)
            }
        }
    }

    /// Makes the index anew from the whole archive and writes it (atomically).
    fn rebuild(&self, file: &File) -> Result<Index> {
        let meta = self.meta(file)?;
        let (entries, covered) = scan(&self.path, file, 0, meta.len())?;
        self.write_index(&meta, &entries);
        Ok(Index { entries, covered })
    }

    /// Writes the index of the archive with `meta` anew (atomically; best effort).
    fn write_index(&self, meta: &fs::Metadata, entries: &[Entry]) {
        let text = format!("{}\n{}", header_of(meta), entries_text(entries));
        if let Err(e) = crate::store::write_atomically(&self.index_path(), text.as_bytes()) {
            log::debug!("cannot write {}: {e}", self.index_path().display());
        }
    }

    /// Adds the lines of an append to the index when the index covered the archive up to
    /// where the append began; otherwise leaves it for the next reader to bring up to date.
    fn index_appended(&self, file: &File, before: u64, entries: &[Entry]) {
        let Ok(meta) = file.metadata() else { return };
        let path = self.index_path();
        let Some(index) = fs::read(&path)
            .ok()
            .and_then(|b| parse_index(&b, &header_of(&meta)))
        else {
            // A new archive starts with its index; an older one without is indexed by the
            // first reader that needs it.
            if before == 0 {
                self.write_index(&meta, entries);
            }
            return;
        };
        if index.covered == before {
            append_to_index(&path, &entries_text(entries));
        }
    }
}

/// The first line of an index of the archive with `meta`.
fn header_of(meta: &fs::Metadata) -> String {
    format!("{HEADER} {} {}", meta.dev(), meta.ino())
}

/// Index lines for `entries`, each ended by a newline.
fn entries_text(entries: &[Entry]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for e in entries {
        let done = e
            .done_at
            .map_or_else(|| "-".to_string(), |d| d.timestamp_millis().to_string());
        let _ = writeln!(out, "{} {} {} {done}", e.id, e.offset, e.len);
    }
    out
}

fn append_to_index(path: &Path, lines: &str) {
    // One write of whole lines: a reader never sees half of one, and a torn end makes the
    // index fail to parse, so it is made again.
    let done = OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(lines.as_bytes()));
    if let Err(e) = done {
        log::debug!("cannot extend {}: {e}", path.display());
    }
}

/// The index in `bytes` when it describes the archive named by `header`; `None` when it
/// does not, or any line does not parse.
fn parse_index(bytes: &[u8], header: &str) -> Option<Index> {
    let text = std::str::from_utf8(bytes).ok()?;
    let body = text.strip_prefix(header)?.strip_prefix('\n')?;
    if !body.is_empty() && !body.ends_with('\n') {
        return None;
    }
    let mut index = Index::default();
    for line in body.lines() {
        let entry = parse_entry(line)?;
        if entry.offset < index.covered {
            return None;
        }
        index.covered = entry.offset + entry.len + 1;
        index.entries.push(entry);
    }
    Some(index)
}

/// One index line: `<id> <offset> <length> <done at ms or ->`.
fn parse_entry(line: &str) -> Option<Entry> {
    let mut parts = line.split(' ');
    let id = TicketId::parse(parts.next()?).ok()?;
    let offset: u64 = parts.next()?.parse().ok()?;
    let len: u64 = parts.next()?.parse().ok()?;
    let done_at = match parts.next()? {
        "-" => None,
        ms => Some(DateTime::from_timestamp_millis(ms.parse().ok()?)?),
    };
    parts.next().is_none().then_some(Entry {
        id,
        offset,
        len,
        done_at,
    })
}

/// The entries of the archive's lines from `from` to `to`, and how far they reach (the end
/// of the last whole line). A line that does not decode is skipped with a warning.
fn scan(path: &Path, file: &File, from: u64, to: u64) -> Result<(Vec<Entry>, u64)> {
    #[derive(serde::Deserialize)]
    struct Peek {
        id: TicketId,
        #[serde(default)]
        done_at: Option<DateTime<Utc>>,
    }
    let mut bytes = vec![0; usize::try_from(to.saturating_sub(from)).unwrap_or(0)];
    file.read_exact_at(&mut bytes, from)
        .context("cannot read the archive")?;
    let mut entries = Vec::new();
    let mut start = 0usize;
    let mut covered = from;
    for end in memchr::memchr_iter(b'\n', &bytes) {
        let line = &bytes[start..end];
        let offset = from + start as u64;
        start = end + 1;
        covered = from + start as u64;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<Peek>(line) {
            Ok(p) => entries.push(Entry {
                id: p.id,
                offset,
                len: line.len() as u64,
                done_at: p.done_at,
            }),
            Err(e) => log::warn!("{} at byte {offset}: skipped: {e}", path.display()),
        }
    }
    Ok((entries, covered))
}

/// The ticket at `e`, when the line there is that ticket.
fn read_entry(file: &File, e: &Entry) -> Option<Ticket> {
    let mut line = vec![0; usize::try_from(e.len).ok()?];
    file.read_exact_at(&mut line, e.offset).ok()?;
    serde_json::from_slice::<Ticket>(&line)
        .ok()
        .filter(|t| t.id == e.id)
}

fn ends_with_newline(file: &File, len: u64) -> bool {
    let mut last = [0u8];
    file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{now, NewTicket};

    #[test]
    fn an_id_is_found_through_an_index_read_in_pieces_and_its_last_copy_wins() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::new(dir.path().join("a.archive.jsonl"));
        let tickets: Vec<Ticket> = (0..14_000)
            .map(|i| {
                let id = TicketId::parse(&format!("A-{i}")).unwrap();
                Ticket::new(NewTicket::manual(id, "t"), now())
            })
            .collect();
        for chunk in tickets.chunks(1000) {
            archive.append(&chunk.iter().collect::<Vec<_>>()).unwrap();
        }
        let mut again = tickets[4321].clone();
        again.title = "second".into();
        archive.append(&[&again]).unwrap();
        assert!(fs::metadata(archive.index_path()).unwrap().len() > 256 * 1024);
        let file = archive.open().unwrap().unwrap();
        for (id, title) in [
            ("A-0", "t"),
            ("A-1", "t"),
            ("A-4321", "second"),
            ("A-13999", "t"),
        ] {
            let found = archive
                .find_quickly(&file, &TicketId::parse(id).unwrap())
                .unwrap()
                .expect("the index covers the archive")
                .expect(id);
            assert_eq!((found.id.as_str(), found.title.as_str()), (id, title));
        }
        let missing = archive.find_quickly(&file, &TicketId::parse("A-14000").unwrap());
        assert!(missing.unwrap().expect("the index tells").is_none());
    }
}
