//! Large kept answers sent as a static file server sends files.
//!
//! A list of a thousand tickets is a megabyte, asked for again and again while it does not
//! change. Written from memory, every answer is copied into the kernel's socket buffers: most
//! of the CPU such a request costs. So a kept answer of `MIN` bytes or more is also copied
//! once into a file of its own (nameless, in the temporary folder, or a sealed memory file),
//! and the connection's stream, when hyper hands it a slice of that answer to write, sends it
//! from the file with `sendfile` instead, which hands the kernel the file's pages without
//! copying them. The head of the answer goes just before, marked as having more to follow,
//! so both leave in the same packets. Everything else is written as before; where no such
//! file can be made, every answer is.
//!
//! A slice is recognised by its address lying within a registered answer that is still
//! alive (its bytes cannot move or be freed while any holder keeps them, and the registry
//! checks that one does), so nothing else is ever sent from a file.

use std::fs::File;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Answers this large or larger are sent from a file.
pub const MIN: usize = 256 * 1024;

/// Files kept at most: each is one version of one answer, and older versions go as the
/// state changes.
const KEPT: usize = 8;

/// One registered answer: its bytes (not kept alive by the registry) and their file.
struct Entry {
    bytes: Weak<Vec<u8>>,
    /// The address of the bytes, compared with the slices hyper writes.
    base: usize,
    len: usize,
    file: Arc<File>,
}

/// The registry of answers that have a file.
#[derive(Default)]
pub struct Files {
    entries: Mutex<Vec<Entry>>,
    /// How many entries there are, read without the lock: most answers are small.
    count: AtomicUsize,
    /// Memory files cannot be made here: nothing is registered.
    unavailable: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A file holding `bytes`, never written again: a nameless file in the temporary folder
/// (where the kernel reads its pages fastest), else a sealed memory file.
fn answer_file(bytes: &[u8]) -> io::Result<File> {
    use rustix::fs::{fcntl_add_seals, memfd_create, MemfdFlags, Mode, OFlags, SealFlags};
    let nameless = rustix::fs::open(
        std::env::temp_dir(),
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    if let Ok(fd) = nameless {
        let mut file = File::from(fd);
        if file.write_all(bytes).is_ok() {
            return Ok(file);
        }
    }
    let fd = memfd_create(
        "plane-orch-answer",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    fcntl_add_seals(
        &file,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )?;
    Ok(file)
}

impl Files {
    /// A registry; with `enabled` false (`api.sendfile: false`) it registers nothing, so
    /// every answer is written from memory.
    #[must_use]
    pub fn new(enabled: bool) -> Files {
        let files = Files::default();
        files.unavailable.store(!enabled, Ordering::Relaxed);
        files
    }

    /// Gives `bytes` a file, once, when they are large enough to be worth it. Called where
    /// blocking is allowed (a worker): the file is written outside the registry's lock, so
    /// the connections looking for their slices never wait for it.
    pub fn register(&self, bytes: &Arc<Vec<u8>>) {
        if bytes.len() < MIN || self.unavailable.load(Ordering::Relaxed) {
            return;
        }
        let base = bytes.as_ptr() as usize;
        let known = |entries: &Vec<Entry>| {
            entries.iter().any(|e| {
                e.base == base && e.bytes.upgrade().is_some_and(|b| Arc::ptr_eq(&b, bytes))
            })
        };
        {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries.retain(|e| e.bytes.strong_count() > 0);
            self.count.store(entries.len(), Ordering::Relaxed);
            if known(&entries) {
                return;
            }
        }
        let made = answer_file(bytes);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if known(&entries) {
            return;
        }
        match made {
            Ok(file) => {
                if entries.len() >= KEPT {
                    entries.remove(0);
                }
                entries.push(Entry {
                    bytes: Arc::downgrade(bytes),
                    base,
                    len: bytes.len(),
                    file: Arc::new(file),
                });
            }
            Err(e) => {
                log::info!("large answers are written from memory: no file for them ({e})");
                self.unavailable.store(true, Ordering::Relaxed);
            }
        }
        self.count.store(entries.len(), Ordering::Relaxed);
    }

    /// The file and offset holding `buf`, when it lies within a registered answer whose
    /// bytes are still alive.
    fn find(&self, buf: &[u8]) -> Option<(Arc<File>, u64)> {
        if buf.len() < MIN / 4 || self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let start = buf.as_ptr() as usize;
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().find_map(|e| {
            let inside = start >= e.base && start + buf.len() <= e.base + e.len;
            // Alive and at the same address: these very bytes, not a reuse of freed memory.
            let alive = e
                .bytes
                .upgrade()
                .is_some_and(|b| b.as_ptr() as usize == e.base);
            (inside && alive).then(|| (Arc::clone(&e.file), (start - e.base) as u64))
        })
    }
}

/// A connection's stream: reads and writes as the socket does, except slices of registered
/// answers, sent from their files.
pub struct Stream {
    inner: TcpStream,
    files: Arc<Files>,
}

impl Stream {
    #[must_use]
    pub fn new(inner: TcpStream, files: Arc<Files>) -> Stream {
        Stream { inner, files }
    }

    fn poll_sendfile(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            let sent = self.inner.try_io(Interest::WRITABLE, || {
                let mut at = offset;
                rustix::fs::sendfile(&self.inner, file, Some(&mut at), len).map_err(io::Error::from)
            });
            match sent {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl Stream {
    /// Writes `bufs` (an answer's head) saying more follows, so the kernel sends them in
    /// the same packets as the file that comes next rather than in one of their own.
    fn poll_write_more(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        use rustix::net::{sendmsg, SendAncillaryBuffer, SendFlags};
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            let sent = self.inner.try_io(Interest::WRITABLE, || {
                sendmsg(
                    &self.inner,
                    bufs,
                    &mut SendAncillaryBuffer::default(),
                    SendFlags::MORE | SendFlags::NOSIGNAL,
                )
                .map_err(io::Error::from)
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some((file, offset)) = self.files.find(buf) {
            return self.poll_sendfile(cx, &file, offset, buf.len());
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // The slices before the first one in a file go as one write; that one goes next.
        let from_file = bufs.iter().position(|b| self.files.find(b).is_some());
        match from_file {
            Some(0) => {
                let buf: &[u8] = &bufs[0];
                match self.files.find(buf) {
                    Some((file, offset)) => self.poll_sendfile(cx, &file, offset, buf.len()),
                    None => Pin::new(&mut self.inner).poll_write_vectored(cx, &bufs[..1]),
                }
            }
            Some(n) => self.poll_write_more(cx, &bufs[..n]),
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn pattern(len: usize, seed: u8) -> Arc<Vec<u8>> {
        Arc::new(
            (0..len)
                .map(|i| (i % 251) as u8 ^ seed)
                .collect::<Vec<u8>>(),
        )
    }

    #[test]
    fn only_the_registered_bytes_while_alive_are_found() {
        let files = Files::default();
        let big = pattern(MIN + 10, 1);
        files.register(&big);
        assert!(files.find(&big[..]).is_some());
        let (_, at) = files.find(&big[100..]).unwrap();
        assert_eq!(at, 100);
        // The same bytes elsewhere are not these bytes.
        let twin = Arc::new(big.to_vec());
        assert!(files.find(&twin[..]).is_none());
        // A small answer gets no file.
        let small = pattern(1000, 2);
        files.register(&small);
        assert!(files.find(&small[..]).is_none());
        let base = big.as_ptr() as usize;
        drop(big);
        // Freed: whatever takes its place is not sent from the old file.
        let entries = files.entries.lock().unwrap();
        assert!(entries
            .iter()
            .all(|e| e.base != base || e.bytes.upgrade().is_none()));
    }

    /// A head and a registered body written as hyper writes them (vectored, again from
    /// where the last write stopped), to a reader slow enough to fill the socket.
    #[test]
    fn a_body_sent_from_its_file_arrives_whole_after_its_head() {
        let files = Arc::new(Files::default());
        let body = pattern(3 * 1024 * 1024 + 17, 7);
        files.register(&body);
        assert!(files.find(&body[..]).is_some(), "no file for the body");
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 3145745\r\n\r\n".to_vec();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let want: Vec<u8> = head.iter().chain(body.iter()).copied().collect();
        let reader = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Slowly at first, so the writer meets a full socket.
            for _ in 0..20 {
                std::thread::sleep(std::time::Duration::from_millis(5));
                let n = conn.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            conn.read_to_end(&mut got).unwrap();
            got
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut stream = Stream::new(tcp, Arc::clone(&files));
            let (mut h, mut b) = (&head[..], &body[..]);
            while !h.is_empty() || !b.is_empty() {
                let slices = [io::IoSlice::new(h), io::IoSlice::new(b)];
                let from = usize::from(h.is_empty());
                let mut n = std::future::poll_fn(|cx| {
                    Pin::new(&mut stream).poll_write_vectored(cx, &slices[from..])
                })
                .await
                .unwrap();
                assert!(n > 0);
                let in_head = n.min(h.len());
                h = &h[in_head..];
                n -= in_head;
                b = &b[n..];
            }
            std::future::poll_fn(|cx| Pin::new(&mut stream).poll_shutdown(cx))
                .await
                .unwrap();
        });
        let got = reader.join().unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the bytes differ");
    }
}
