//! Changes to one ticket at a time, appended beside a large state file so that a step on one
//! ticket does not rewrite (and sync) every other ticket.
//!
//! The journal, `<state>.journal`, starts with a header naming the version of the state file
//! it continues (its generation and size); each later line is one ticket as a change left it,
//! with the generation that change gave the state. The state is the file with the journal's
//! tickets put in their places (added in id order when new) and the last entry's generation:
//! byte for byte what writing the whole file would have written. When the journal outgrows
//! its limit, the next change writes the whole file again and removes the journal (a fold).
//!
//! Why it cannot lose or invent a change:
//! - an entry is written and synced before its command reports success; a cut-off last line
//!   (a writer killed while appending) is no entry, and the next writer cuts it off first;
//! - a fold renames the new state file over the old one before it removes the journal: a
//!   crash in between leaves a journal naming a generation the file is past, and such a
//!   journal is passed over (its changes are in the file);
//! - a reader opens the journal before the state file: if a fold comes between, the file it
//!   then reads is the fold's, which the journal no longer fits, so it is passed over;
//! - a journal whose generation is the file's but whose size is not (the file was edited by
//!   hand while changes waited here) fits neither way and is refused, like a damaged file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The journal file of one state file.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Header {
    journal: u32,
    generation: u64,
    size: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    generation: u64,
    #[serde(borrow)]
    id: &'a str,
    #[serde(borrow)]
    ticket: &'a RawValue,
}

/// A journal as read: the version of the state file it continues and its entries.
#[derive(Debug)]
pub struct Read {
    bytes: Vec<u8>,
    /// The generation and size of the state file the journal continues.
    pub base: (u64, u64),
    /// Each entry's id and ticket, as byte ranges of `bytes`, oldest first.
    entries: Vec<(Range<usize>, Range<usize>)>,
    /// Where the last whole entry ends: anything after it is a torn append.
    pub good_len: u64,
}

/// What was appended to a journal since a reader last read it.
#[derive(Debug)]
pub struct Appended {
    /// Each ticket as its change left it, oldest first.
    pub tickets: Vec<(String, Vec<u8>)>,
    /// Where the last whole entry ends.
    pub end: u64,
    /// The generation of the next entry.
    pub next: u64,
}

/// How a journal stands to the state file beside it.
#[derive(Debug, PartialEq, Eq)]
pub enum Fit {
    /// It continues this very file.
    Continues,
    /// It belongs to another version of the file (one a fold or a restore replaced):
    /// its changes are not this file's.
    PassedOver,
}

impl Journal {
    #[must_use]
    pub fn new(path: PathBuf) -> Journal {
        Journal { path }
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the journal for reading; `None` when there is none. Open it before the state
    /// file (see the module's doc).
    ///
    /// # Errors
    /// It exists but cannot be opened.
    pub fn open(&self) -> Result<Option<File>> {
        match File::open(&self.path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| self.cannot("read")),
        }
    }

    fn cannot(&self, what: &str) -> String {
        format!("cannot {what} the state journal {}", self.path.display())
    }

    /// Reads an opened journal. `None`: it holds no header yet (a writer killed while making
    /// it), which is no journal.
    ///
    /// # Errors
    /// It cannot be read, or a line before its last does not read as an entry of it (it was
    /// damaged): nothing may then be written until it is mended or removed.
    pub fn read(&self, mut file: File) -> Result<Option<Read>> {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| self.cannot("read"))?;
        self.parse(bytes)
    }

    fn parse(&self, bytes: Vec<u8>) -> Result<Option<Read>> {
        let Some(header_end) = memchr::memchr(b'\n', &bytes) else {
            return Ok(None);
        };
        let header: Header = serde_json::from_slice(&bytes[..header_end])
            .ok()
            .filter(|h: &Header| h.journal == 1)
            .ok_or_else(|| self.damaged(1, "its first line is not a journal's header"))?;
        let mut entries = Vec::new();
        let mut start = header_end + 1;
        let mut good_len = start;
        let mut expected = header.generation + 1;
        let mut line_no = 1;
        while start < bytes.len() {
            line_no += 1;
            let end = memchr::memchr(b'\n', &bytes[start..]).map(|n| start + n);
            let line = &bytes[start..end.unwrap_or(bytes.len())];
            let entry = serde_json::from_slice::<Entry>(line).ok();
            let Some((entry, end)) = entry.zip(end) else {
                // A cut-off or unreadable last line is an append that never finished.
                if end.is_none_or(|end| end + 1 == bytes.len()) {
                    break;
                }
                return Err(self.damaged(line_no, "the line does not read as a ticket"));
            };
            if entry.generation != expected {
                return Err(self.damaged(
                    line_no,
                    &format!(
                        "it gives generation {}, where {expected} comes next",
                        entry.generation
                    ),
                ));
            }
            let offset = |s: &[u8]| s.as_ptr() as usize - bytes.as_ptr() as usize;
            let id = offset(entry.id.as_bytes());
            let ticket = offset(entry.ticket.get().as_bytes());
            entries.push((
                id..id + entry.id.len(),
                ticket..ticket + entry.ticket.get().len(),
            ));
            expected += 1;
            start = end + 1;
            good_len = start;
        }
        Ok(Some(Read {
            base: (header.generation, header.size),
            entries,
            good_len: good_len as u64,
            bytes,
        }))
    }

    /// The entries appended to an opened journal since `offset` (where a whole entry ended
    /// when it was last read, the next entry's generation being `next`): each ticket's id
    /// and bytes, oldest first, and where the last whole one ends. `None` when what is there
    /// does not read as entries that follow on (the journal was replaced or damaged): then it
    /// is to be read whole.
    ///
    /// # Errors
    /// It cannot be read.
    pub fn read_since(&self, file: &File, offset: u64, next: u64) -> Result<Option<Appended>> {
        use std::os::unix::fs::FileExt as _;
        let len = file.metadata().with_context(|| self.cannot("read"))?.len();
        if len < offset {
            return Ok(None);
        }
        let mut bytes = vec![0; usize::try_from(len - offset)?];
        file.read_exact_at(&mut bytes, offset)
            .with_context(|| self.cannot("read"))?;
        let mut tickets = Vec::new();
        let mut start = 0;
        let mut generation = next;
        while let Some(n) = memchr::memchr(b'\n', &bytes[start..]) {
            let line = &bytes[start..start + n];
            let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
                // A torn last line waits for its writer; anything else is read whole.
                if start + n + 1 == bytes.len() {
                    break;
                }
                return Ok(None);
            };
            if entry.generation != generation {
                return Ok(None);
            }
            tickets.push((entry.id.to_string(), entry.ticket.get().as_bytes().to_vec()));
            generation += 1;
            start += n + 1;
        }
        Ok(Some(Appended {
            tickets,
            end: offset + start as u64,
            next: generation,
        }))
    }

    fn damaged(&self, line: usize, why: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "the state journal {} is damaged at line {line}: {why}; it was left unchanged. \
             It holds changes not yet written into the state file: mend the line by hand, or \
             remove the journal to go back to the state file as it is (losing those changes)",
            self.path.display()
        )
    }

    /// Appends one ticket as `generation`. `read` is the journal as read under the same
    /// exclusive lock when it continues this state file (a torn end it has is cut off
    /// first); without it a new journal is begun for the file of `base` (generation, size),
    /// replacing any other. The entry is synced before this returns.
    ///
    /// # Errors
    /// The journal cannot be written; it is then as it was (a partial line is no entry).
    pub fn append(
        &self,
        read: Option<&Read>,
        base: (u64, u64),
        generation: u64,
        id: &str,
        ticket: &[u8],
    ) -> Result<()> {
        let mut line = Vec::with_capacity(ticket.len() + id.len() + 64);
        line.extend_from_slice(format!("{{\"generation\":{generation},\"id\":").as_bytes());
        serde_json::to_writer(&mut line, id).context("cannot encode the ticket")?;
        line.extend_from_slice(b",\"ticket\":");
        line.extend_from_slice(ticket);
        line.extend_from_slice(b"}\n");
        match read {
            Some(read) => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .with_context(|| self.cannot("write"))?;
                let len = file.metadata().with_context(|| self.cannot("read"))?.len();
                if len != read.good_len {
                    file.set_len(read.good_len)
                        .with_context(|| self.cannot("write"))?;
                }
                use std::io::Seek as _;
                file.seek(io::SeekFrom::Start(read.good_len))
                    .and_then(|_| file.write_all(&line))
                    .and_then(|()| file.sync_data())
                    .with_context(|| self.cannot("write"))
            }
            None => {
                let header = Header {
                    journal: 1,
                    generation: base.0,
                    size: base.1,
                };
                let mut bytes = serde_json::to_vec(&header).context("cannot encode the header")?;
                bytes.push(b'\n');
                bytes.extend_from_slice(&line);
                // A new file whole or not at all: written aside, synced, renamed in place.
                let dir = self
                    .path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or_else(|| Path::new("."));
                let mut tmp = tempfile::Builder::new()
                    .prefix(&format!(
                        ".{}.",
                        self.path.file_name().unwrap_or_default().to_string_lossy()
                    ))
                    .suffix(".tmp")
                    .tempfile_in(dir)
                    .with_context(|| self.cannot("create"))?;
                tmp.write_all(&bytes)
                    .and_then(|()| tmp.as_file().sync_all())
                    .with_context(|| self.cannot("write"))?;
                tmp.persist(&self.path)
                    .map_err(|e| e.error)
                    .with_context(|| self.cannot("create"))?;
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .with_context(|| format!("cannot sync the state folder {}", dir.display()))
            }
        }
    }

    /// Removes the journal once the state file holds its changes. Best effort: one left
    /// behind no longer fits the file and is passed over.
    pub fn remove(&self) {
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("cannot remove {}: {e}", self.path.display()),
        }
    }
}

impl Read {
    /// How the journal stands to a state file of `generation` and `size`.
    ///
    /// # Errors
    /// The file has the generation the journal continues but another size: it was changed
    /// by hand while changes waited in the journal.
    pub fn fit(&self, journal: &Journal, generation: Option<u64>, size: u64) -> Result<Fit> {
        match generation {
            Some(g) if g == self.base.0 && size == self.base.1 => Ok(Fit::Continues),
            Some(g) if g == self.base.0 && !self.entries.is_empty() => Err(anyhow::anyhow!(
                "the state file was changed by hand while {} changes waited in the state \
                 journal {}; nothing was changed. Put the file back as it was, or remove the \
                 journal to keep the file as it is (losing those changes)",
                self.entries.len(),
                journal.path().display()
            )),
            _ => Ok(Fit::PassedOver),
        }
    }

    /// Whether it holds any change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The generation the state has with the journal's changes.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.base.0 + self.entries.len() as u64
    }

    /// The journal's length up to its last whole entry.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.good_len
    }

    /// Each ticket the journal holds, as its last change left it, by id.
    #[must_use]
    pub fn latest(&self) -> BTreeMap<&str, &[u8]> {
        let mut out = BTreeMap::new();
        for (id, ticket) in &self.entries {
            // The ids were read as JSON strings without escapes (ticket ids have none).
            let id = std::str::from_utf8(&self.bytes[id.clone()]).unwrap_or_default();
            out.insert(id, &self.bytes[ticket.clone()]);
        }
        out
    }

    /// One ticket's bytes as the journal's last change to it left them; `None` when the
    /// journal does not hold it.
    #[must_use]
    pub fn ticket(&self, id: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .rev()
            .find(|(key, _)| &self.bytes[key.clone()] == id.as_bytes())
            .map(|(_, ticket)| &self.bytes[ticket.clone()])
    }

    /// Whether any ticket it holds is done (such a file goes the whole way at its next
    /// write, which archives it).
    #[must_use]
    pub fn holds_done(&self) -> bool {
        self.entries.iter().any(|(_, t)| {
            memchr::memmem::find(&self.bytes[t.clone()], b"\"status\":\"done\"").is_some()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path) -> Journal {
        Journal::new(dir.join("s.json.journal"))
    }

    fn read(j: &Journal) -> Option<Read> {
        j.open().unwrap().and_then(|f| j.read(f).unwrap())
    }

    #[test]
    fn entries_are_read_back_and_the_latest_of_an_id_wins() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        j.append(None, (7, 100), 8, "A-1", br#"{"n":1}"#).unwrap();
        let r = read(&j).unwrap();
        j.append(Some(&r), (7, 100), 9, "A-2", br#"{"n":2}"#)
            .unwrap();
        let r = read(&j).unwrap();
        j.append(Some(&r), (7, 100), 10, "A-1", br#"{"n":3}"#)
            .unwrap();
        let r = read(&j).unwrap();
        assert_eq!(r.base, (7, 100));
        assert_eq!(r.generation(), 10);
        let latest = r.latest();
        assert_eq!(latest["A-1"], br#"{"n":3}"#);
        assert_eq!(latest["A-2"], br#"{"n":2}"#);
        assert_eq!(r.ticket("A-1"), Some(&br#"{"n":3}"#[..]));
        assert_eq!(r.ticket("A-2"), Some(&br#"{"n":2}"#[..]));
        assert_eq!(r.ticket("A-3"), None);
        assert_eq!(r.fit(&j, Some(7), 100).unwrap(), Fit::Continues);
        assert_eq!(r.fit(&j, Some(12), 90).unwrap(), Fit::PassedOver);
        assert!(
            r.fit(&j, Some(7), 101).is_err(),
            "an edit by hand is refused"
        );
    }

    #[test]
    fn a_torn_last_line_is_no_entry_and_is_cut_off_by_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        j.append(None, (1, 10), 2, "A-1", br#"{"n":1}"#).unwrap();
        let whole = fs::read(j.path()).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(br#"{"generation":3,"id":"A-2","tick"#);
        fs::write(j.path(), &torn).unwrap();
        let r = read(&j).unwrap();
        assert_eq!(r.generation(), 2);
        assert_eq!(r.len(), whole.len() as u64);
        j.append(Some(&r), (1, 10), 3, "A-3", br#"{"n":3}"#)
            .unwrap();
        let r = read(&j).unwrap();
        assert_eq!(r.generation(), 3);
        assert_eq!(
            r.latest().keys().copied().collect::<Vec<_>>(),
            ["A-1", "A-3"]
        );
        let text = fs::read_to_string(j.path()).unwrap();
        assert!(!text.contains("tick\""), "{text}");
    }

    #[test]
    fn a_damaged_middle_line_or_a_gap_is_refused_and_a_header_only_begun_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        j.append(None, (1, 10), 2, "A-1", br#"{"n":1}"#).unwrap();
        let good = fs::read_to_string(j.path()).unwrap();
        let bad = good.replace(r#""id":"A-1""#, r#""id":"A-1"#);
        fs::write(j.path(), format!("{bad}{}", good.lines().nth(1).unwrap())).unwrap();
        let err = j.read(j.open().unwrap().unwrap()).unwrap_err().to_string();
        assert!(err.contains("damaged at line 2"), "{err}");
        let gap = format!(
            "{good}{}\n",
            good.lines()
                .nth(1)
                .unwrap()
                .replace("\"generation\":2", "\"generation\":4")
        );
        fs::write(j.path(), gap).unwrap();
        let err = j.read(j.open().unwrap().unwrap()).unwrap_err().to_string();
        assert!(err.contains("generation 4, where 3 comes next"), "{err}");
        fs::write(j.path(), br#"{"journal":1,"genera"#).unwrap();
        assert!(read(&j).is_none());
    }
}
