//! One ticket's line found in a large state file without reading the file: the file a writer
//! leaves holds a ticket a line in id order, so a binary search over byte offsets, a few
//! small reads each, finds it. Used only on a file provably the last writer's (see the
//! store's doc): any other is read whole. The archive's sorted index is searched the same
//! way, with its own key.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;

/// What one probe reads: most lines are a few KiB, and a longer one is read on.
const PROBE: usize = 4096;
/// Below this span the search reads the rest in one go.
const SPAN: u64 = 64 * 1024;

/// The bytes at `from..from + len`, fewer at the end of the file.
pub fn read_at(file: &File, from: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], from + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// A line's key: what the lines are sorted by, read from the line's start.
pub type Key = fn(&[u8]) -> Option<&[u8]>;

/// The id of a ticket line's start (`"<id>":{`), as bytes.
fn key(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

/// The first line starting after `pos` (past the next `\n` at or after `pos`) and before
/// `end`: its start and id. `None` when no line starts there.
fn next_key(file: &File, pos: u64, end: u64, key: Key) -> io::Result<Option<(u64, Vec<u8>)>> {
    let mut at = pos;
    // Find the next newline, reading on through a long line.
    let start = loop {
        if at >= end {
            return Ok(None);
        }
        let chunk = read_at(file, at, PROBE)?;
        if chunk.is_empty() {
            return Ok(None);
        }
        if let Some(n) = memchr::memchr(b'\n', &chunk) {
            break at + n as u64 + 1;
        }
        at += chunk.len() as u64;
    };
    if start >= end {
        return Ok(None);
    }
    let head = read_at(file, start, 256)?;
    Ok(key(&head).map(|k| (start, k.to_vec())))
}

/// The raw ticket of `id` in the ticket lines `start..end` of `file` (`start` is the first
/// line's first byte, `end` the `\n` after the last line), with where it starts; `None` when
/// no line has that id. `None` too, as `Err`, when a line does not look as a writer leaves it.
///
/// # Errors
/// The file cannot be read.
pub fn find(file: &File, start: u64, end: u64, id: &str) -> io::Result<Option<(u64, Vec<u8>)>> {
    let Some((at, line)) = find_line(file, start, end, id.as_bytes(), key)? else {
        return Ok(None);
    };
    let raw = &line[id.len() + 3..];
    let raw = raw.strip_suffix(b",").unwrap_or(raw);
    if !(raw.starts_with(b"{") && raw.ends_with(b"}")) {
        return Ok(None);
    }
    Ok(Some((at + id.len() as u64 + 3, raw.to_vec())))
}

/// The line whose `key` is `want` among the lines `start..end` of `file`, sorted by key
/// (`start` is the first line's first byte, `end` the `\n` after the last line): where it
/// starts and its bytes without the newline. `None` when no line has that key.
///
/// # Errors
/// The file cannot be read.
pub fn find_line(
    file: &File,
    start: u64,
    end: u64,
    want: &[u8],
    key: Key,
) -> io::Result<Option<(u64, Vec<u8>)>> {
    // Lines starting in lo..hi hold `want` if any does; `lo` is always a line's start.
    let (mut lo, mut hi) = (start, end);
    while hi - lo > SPAN {
        let mid = lo + (hi - lo) / 2;
        match next_key(file, mid - 1, hi, key)? {
            None => hi = mid,
            Some((at, k)) => match k.as_slice().cmp(want) {
                std::cmp::Ordering::Less => lo = at,
                std::cmp::Ordering::Greater => hi = at,
                std::cmp::Ordering::Equal => {
                    lo = at;
                    hi = at + 1;
                }
            },
        }
    }
    // The rest, and the line reaching past `hi`, read through to its end.
    let mut buf = read_at(file, lo, usize::try_from(hi - lo).unwrap_or(usize::MAX))?;
    let mut at = lo + buf.len() as u64;
    while buf.last() != Some(&b'\n') && at < end + 1 {
        let more = read_at(file, at, PROBE.max(buf.len()))?;
        if more.is_empty() {
            break;
        }
        at += more.len() as u64;
        buf.extend_from_slice(&more);
    }
    let mut line_start = 0;
    while line_start < buf.len() {
        let line_end =
            memchr::memchr(b'\n', &buf[line_start..]).map_or(buf.len(), |n| line_start + n);
        let line = &buf[line_start..line_end];
        if key(line) == Some(want) {
            return Ok(Some((lo + line_start as u64, line.to_vec())));
        }
        if lo + line_start as u64 >= hi {
            break;
        }
        line_start = line_end + 1;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn every_line_is_found_and_no_other_whatever_the_line_lengths() {
        let mut file = tempfile::tempfile().unwrap();
        let mut text = String::from("{\"version\":2,\n\"tickets\":{\n");
        let start = text.len() as u64;
        let ids: Vec<String> = (0..3000).map(|i| format!("A-{i:05}")).collect();
        for (i, id) in ids.iter().enumerate() {
            // Lines from a few bytes to past the probe and the span.
            let pad = "x".repeat((i * 7919) % 9000 + if i % 500 == 0 { 70_000 } else { 0 });
            let comma = if i + 1 < ids.len() { "," } else { "" };
            text.push_str(&format!(
                "\"{id}\":{{\"id\":\"{id}\",\"p\":\"{pad}\"}}{comma}\n"
            ));
        }
        let end = text.len() as u64 - 1;
        text.push_str("},\n\"dismissed\":{},\n\"generation\":3\n}\n");
        file.write_all(text.as_bytes()).unwrap();
        for id in ids.iter().step_by(37).chain([&ids[0], &ids[2999]]) {
            let (offset, raw) = find(&file, start, end, id).unwrap().expect(id);
            assert!(raw.starts_with(format!("{{\"id\":\"{id}\"").as_bytes()));
            assert_eq!(
                &text.as_bytes()[offset as usize..offset as usize + raw.len()],
                &raw[..]
            );
        }
        for missing in ["A-", "A-00000x", "A-03000", "B-1", "0"] {
            assert!(
                find(&file, start, end, missing).unwrap().is_none(),
                "{missing}"
            );
        }
    }
}
