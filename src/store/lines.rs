//! A file's lines handed out of one buffer the file is read into, so a reader of a large
//! state file copies each line only where a read cut it in two.

use std::fs::File;
use std::io::{self, Read as _};

/// Reads ahead this much at a time; a longer line grows the buffer.
const CHUNK: usize = 256 * 1024;

pub struct Lines {
    file: File,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl Lines {
    pub fn new(file: File) -> Lines {
        Lines {
            file,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The next line without its `\n`, and whether a `\n` ended it (the last line of a file
    /// may have none); `None` at the end.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn next_line(&mut self) -> io::Result<Option<(&[u8], bool)>> {
        let mut searched = self.start;
        loop {
            if let Some(n) = memchr::memchr(b'\n', &self.buf[searched..self.end]) {
                let line = self.start..searched + n;
                self.start = searched + n + 1;
                return Ok(Some((&self.buf[line], true)));
            }
            searched = self.end;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let line = self.start..self.end;
                self.start = self.end;
                return Ok(Some((&self.buf[line], false)));
            }
            // The part line to the front; room for more behind it.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                searched -= self.start;
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek as _, Write as _};

    #[test]
    fn lines_of_every_length_come_back_whole_across_reads() {
        let mut file = tempfile::tempfile().unwrap();
        let lines: Vec<String> = (0..200)
            .map(|i| "x".repeat((i * 7919) % 20_000 + if i == 77 { 600_000 } else { 0 }))
            .collect();
        let text = lines.join("\n") + "\nlast without newline";
        file.write_all(text.as_bytes()).unwrap();
        file.rewind().unwrap();
        let mut read = Lines::new(file);
        for want in &lines {
            let (line, ended) = read.next_line().unwrap().unwrap();
            assert!(ended && line == want.as_bytes(), "{} bytes", want.len());
        }
        let (line, ended) = read.next_line().unwrap().unwrap();
        assert_eq!((line, ended), (&b"last without newline"[..], false));
        assert!(read.next_line().unwrap().is_none());
    }
}
