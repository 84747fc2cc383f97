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
//!
//! The index is in the order tickets were archived, so finding one id in it means reading
//! it through. A sorted copy (`<state>.archive.sorted`: the latest entry of each id, in id
//! order, after a first line naming the archive and the index it was made from and how much
//! of that index it holds) is searched by halves instead, a few small reads, with the
//! index's lines added since it was made read as they are. It is made again when those
//! lines pass a sixteenth of the index (at least 64 KiB), and whenever the index is; a copy
//! that names another archive or index is not used.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::store::located;
use crate::ticket::{Ticket, TicketId};

const HEADER: &str = "plane-orch archive index 1";
const SORTED_HEADER: &str = "plane-orch archive sorted 1";
/// The sorted copy is made again when the index has grown by more than this many bytes
/// (or a sixteenth of the index, if more) since it was made.
const UNSORTED_TAIL: u64 = 64 * 1024;

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

    /// The index's sorted copy beside it.
    #[must_use]
    pub fn sorted_path(&self) -> PathBuf {
        self.path.with_extension("sorted")
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
        let last = &trimmed[memchr::memrchr(b'\n', trimmed).map_or(0, |n| n + 1)..];
        match entry_at(last) {
            Some(e) if e.offset + e.len + 1 == meta.len() => {}
            _ => return Ok(None),
        }
        let sorted = Sorted::open(&self.sorted_path(), &meta, &index, index_len);
        // Lines added to the index after the sorted copy was made are newer than it, so they
        // are searched first; with no usable copy, that is the whole index.
        let unsorted_from = sorted.as_ref().map_or(body_start, |s| s.index_len);
        let line = match last_line_of(&index, unsorted_from, index_len, id)? {
            Some(line) => Some(line),
            None => match &sorted {
                Some(s) => s.find(id)?,
                None => None,
            },
        };
        if Sorted::outgrown(sorted.as_ref(), index_len) {
            // A reader that had to read through the index makes the copy for the next.
            self.sort_index(&meta);
        }
        let Some(line) = line else {
            return Ok(Some(None));
        };
        Ok(entry_at(&line).and_then(|e| read_entry(file, &e)).map(Some))
    }

    /// Makes the sorted copy of the index anew from the index as it is (atomically; best
    /// effort: without it, lookups read the index through). `meta` is the archive's.
    fn sort_index(&self, meta: &fs::Metadata) {
        let path = self.index_path();
        let Ok(index_file) = File::open(&path) else {
            return;
        };
        let Ok(index_meta) = index_file.metadata() else {
            return;
        };
        let Ok(bytes) = located::read_at(
            &index_file,
            0,
            usize::try_from(index_meta.len()).unwrap_or(0),
        ) else {
            return;
        };
        let header = format!("{}\n", header_of(meta));
        let Some(body) = bytes.strip_prefix(header.as_bytes()) else {
            return;
        };
        // Whole lines only: an append being written is left for the next copy.
        let body = &body[..memchr::memrchr(b'\n', body).map_or(0, |n| n + 1)];
        let mut lines: Vec<&[u8]> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        // The latest entry of an id wins: a stable sort keeps them in index order, and the
        // last of each run of one id is kept.
        lines.sort_by(|a, b| sorted_key(a).cmp(&sorted_key(b)));
        let mut out = format!(
            "{SORTED_HEADER} {} {} {} {}\n",
            meta.dev(),
            meta.ino(),
            index_meta.ino(),
            header.len() + body.len()
        )
        .into_bytes();
        out.reserve(body.len());
        for (n, line) in lines.iter().enumerate() {
            if lines
                .get(n + 1)
                .is_some_and(|next| sorted_key(next) == sorted_key(line))
            {
                continue;
            }
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        if let Err(e) = crate::store::write_atomically(&self.sorted_path(), &out) {
            log::debug!("cannot write {}: {e}", self.sorted_path().display());
        }
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
            return;
        }
        self.sort_index(meta);
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
        if index.covered == before && append_to_index(&path, &entries_text(entries)) {
            self.sort_if_behind(&meta);
        }
    }

    /// Makes the sorted copy again when the index has outgrown it.
    fn sort_if_behind(&self, meta: &fs::Metadata) {
        let Ok(index) = File::open(self.index_path()) else {
            return;
        };
        let Ok(index_len) = index.metadata().map(|m| m.len()) else {
            return;
        };
        let sorted = Sorted::open(&self.sorted_path(), meta, &index, index_len);
        if Sorted::outgrown(sorted.as_ref(), index_len) {
            self.sort_index(meta);
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

/// Appends `lines` to the index at `path`; whether they were written.
fn append_to_index(path: &Path, lines: &str) -> bool {
    // One write of whole lines: a reader never sees half of one, and a torn end makes the
    // index fail to parse, so it is made again.
    let done = OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(lines.as_bytes()));
    if let Err(e) = &done {
        log::debug!("cannot extend {}: {e}", path.display());
    }
    done.is_ok()
}

/// An index line's id: the bytes before its first space.
fn sorted_key(line: &[u8]) -> Option<&[u8]> {
    memchr::memchr(b' ', line).map(|n| &line[..n])
}

/// An index line read as an entry.
fn entry_at(line: &[u8]) -> Option<Entry> {
    std::str::from_utf8(line).ok().and_then(parse_entry)
}

/// The last index line for `id` among the lines in `from..to` of `index` (`from` a line's
/// start), read from the end a piece at a time, each piece reaching a needle's length into
/// the one after it (read before): a recently done ticket, the one most often shown, is
/// found in the first piece read.
fn last_line_of(index: &File, from: u64, to: u64, id: &TicketId) -> Result<Option<Vec<u8>>> {
    // The line starting `<id> `: one after a newline (the one ending the line before).
    let needle = format!("\n{id} ").into_bytes();
    let finder = memchr::memmem::Finder::new(&needle);
    let mut found = None;
    let lowest = from.saturating_sub(1);
    // A piece of 256 KiB at most: the lines left out of the sorted copy are often far fewer.
    let mut buf = vec![0; usize::try_from((to - lowest).min(256 * 1024))?];
    let mut hi = to;
    while hi > lowest && found.is_none() {
        let start = hi.saturating_sub(buf.len() as u64).max(lowest);
        let end = (hi + needle.len() as u64 - 1).min(to);
        let want = usize::try_from(end - start)?;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        index
            .read_exact_at(&mut buf[..want], start)
            .context("cannot read the archive's index")?;
        let piece = &buf[..want];
        let mut at = 0;
        while let Some(n) = finder.find(&piece[at..]) {
            found = Some(start + (at + n + 1) as u64);
            at += n + 1;
        }
        hi = start;
    }
    let Some(line_start) = found else {
        return Ok(None);
    };
    let mut line = located::read_at(
        index,
        line_start,
        usize::try_from((to - line_start).min(512))?,
    )
    .context("cannot read the archive's index")?;
    line.truncate(memchr::memchr(b'\n', &line).unwrap_or(line.len()));
    Ok(Some(line))
}

/// The index's sorted copy, when it describes this archive and this index.
struct Sorted {
    file: File,
    /// Where its first entry line starts, and its length.
    body_start: u64,
    len: u64,
    /// How much of the index it holds: the lines after are newer.
    index_len: u64,
}

impl Sorted {
    /// The copy at `path` when its first line names the archive with `meta`, the `index`
    /// file open now, and a length of it no longer than `index_len`.
    fn open(path: &Path, meta: &fs::Metadata, index: &File, index_len: u64) -> Option<Sorted> {
        let file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        let head = located::read_at(&file, 0, 160).ok()?;
        let line_end = memchr::memchr(b'\n', &head)?;
        let line = std::str::from_utf8(&head[..line_end]).ok()?;
        let rest = line.strip_prefix(SORTED_HEADER)?.strip_prefix(' ')?;
        let fields: Vec<u64> = rest
            .split(' ')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        let index_ino = index.metadata().ok()?.ino();
        let [dev, ino, of_index, covers] = fields[..] else {
            return None;
        };
        (dev == meta.dev() && ino == meta.ino() && of_index == index_ino && covers <= index_len)
            .then_some(Sorted {
                file,
                body_start: line_end as u64 + 1,
                len,
                index_len: covers,
            })
    }

    /// Whether the copy should be made again: there is none, or more index lines wait
    /// outside it than [`UNSORTED_TAIL`] or a sixteenth of the index.
    fn outgrown(sorted: Option<&Sorted>, index_len: u64) -> bool {
        sorted.is_none_or(|s| index_len - s.index_len > UNSORTED_TAIL.max(index_len / 16))
    }

    /// The line of `id`, if the copy has one.
    fn find(&self, id: &TicketId) -> Result<Option<Vec<u8>>> {
        if self.len <= self.body_start {
            return Ok(None);
        }
        let found = located::find_line(
            &self.file,
            self.body_start,
            self.len - 1,
            id.as_str().as_bytes(),
            sorted_key,
        )
        .context("cannot read the archive's sorted index")?;
        Ok(found.map(|(_, line)| line))
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

    #[test]
    fn the_sorted_index_finds_every_id_its_latest_copy_and_none_that_is_not_there() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::new(dir.path().join("a.archive.jsonl"));
        let ticket = |i: usize, title: &str| {
            let id = TicketId::parse(&format!("A-{i}")).unwrap();
            let mut t = Ticket::new(NewTicket::manual(id, "t"), now());
            t.title = title.into();
            t
        };
        // Archived out of id order, in appends of many sizes: the copy is made at the
        // first, again as the index outgrows it, and some appends wait outside it.
        let order: Vec<usize> = (0..9_000).map(|i| (i * 7_919) % 9_000).collect();
        let mut at = 0;
        for size in [3_000, 1, 700, 2, 2_500, 1, 1, 2_795] {
            let chunk: Vec<Ticket> = order[at..at + size]
                .iter()
                .map(|&i| ticket(i, "t"))
                .collect();
            archive.append(&chunk.iter().collect::<Vec<_>>()).unwrap();
            at += size;
        }
        assert_eq!(at, 9_000);
        let file = archive.open().unwrap().unwrap();
        let meta = file.metadata().unwrap();
        let index = File::open(archive.index_path()).unwrap();
        let index_len = index.metadata().unwrap().len();
        let sorted = Sorted::open(&archive.sorted_path(), &meta, &index, index_len)
            .expect("a sorted copy of this index");
        assert!(sorted.index_len > index_len / 2);
        // A ticket archived again after the copy was made: the later copy is found.
        archive.append(&[&ticket(4_321, "second")]).unwrap();
        // And one archived twice before the copy is made again.
        archive.append(&[&ticket(17, "again")]).unwrap();
        archive.sort_index(&meta);
        let look = |id: &str| {
            archive
                .find_quickly(&file, &TicketId::parse(id).unwrap())
                .unwrap()
                .expect("the index covers the archive")
                .map(|t| t.title)
        };
        for i in (0..9_000).step_by(97).chain([0, 8_999]) {
            let want = match i {
                4_321 => "second",
                17 => "again",
                _ => "t",
            };
            assert_eq!(look(&format!("A-{i}")).as_deref(), Some(want), "A-{i}");
        }
        assert_eq!(look("A-4321").as_deref(), Some("second"));
        assert_eq!(look("A-17").as_deref(), Some("again"));
        for missing in ["A-9000", "A-00", "B-1", "A-1000000"] {
            assert_eq!(look(missing), None, "{missing}");
        }
        // A copy of another index (this one made again) is not used, and is made anew.
        fs::remove_file(archive.index_path()).unwrap();
        assert_eq!(
            archive
                .find(&TicketId::parse("A-4321").unwrap())
                .unwrap()
                .unwrap()
                .title,
            "second"
        );
        let index = File::open(archive.index_path()).unwrap();
        let index_len = index.metadata().unwrap().len();
        let sorted = Sorted::open(&archive.sorted_path(), &meta, &index, index_len)
            .expect("a copy of the new index");
        assert_eq!(sorted.index_len, index_len);
        assert_eq!(look("A-17").as_deref(), Some("again"));
    }
}
