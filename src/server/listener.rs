//! Accepting connections: each is served by hyper on the runtime, at most `max` at once.
//! One more is answered 503 and closed at once (shed), so a flood costs the server a write
//! per connection, never a thread or a buffer. An accept error that means "no resources
//! now" (no file descriptors, no memory) waits a moment and goes on; any other one stops
//! the listener, and `serve` then exits non-zero so its supervisor restarts it.

use std::io;
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::{http, Ctx};

/// How long a connection may take to send a complete request head, counted from the end
/// of the previous answer (so it is also how long an idle keep-alive connection is kept).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long writing an answer may stall on a client that does not read it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait after an accept error that says the process is out of something.
const BACKOFF: Duration = Duration::from_millis(50);

/// The answer of a shed connection, written without reading its request.
const SHED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 144\r\n\r\n\
{\"detail\":\"the server has too many connections: try again in a moment\",\
\"error\":{\"code\":\"busy\",\"message\":\"the server has too many connections\"}}\n";

/// Connections that may be open at once: `configured`, within what the file-descriptor limit
/// allows (raised to its hard limit first, as a server with many clients needs).
#[must_use]
pub fn connection_limit(configured: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (limit.current, limit.maximum) {
        if cur < max {
            limit.current = Some(max.min(1 << 20));
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                log::debug!("cannot raise the open-file limit: {e}");
            }
        }
    }
    let fds = getrlimit(Resource::Nofile)
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    // Files, pipes to tmux and git, the state file and its lock need some too.
    let room = fds.saturating_sub(64).max(16);
    if configured > room {
        log::warn!(
            "api.max_connections is {configured} but the open-file limit allows about {room}: \
             using {room} (raise LimitNOFILE= or ulimit -n)"
        );
    }
    configured.min(room)
}

/// Whether an accept error is "try again later" rather than a broken listener.
fn transient(e: &io::Error) -> bool {
    use rustix::io::Errno;
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::OutOfMemory
    ) {
        return true;
    }
    e.raw_os_error().is_some_and(|n| {
        let n = Errno::from_raw_os_error(n);
        [
            Errno::MFILE,
            Errno::NFILE,
            Errno::NOBUFS,
            Errno::NOMEM,
            Errno::PROTO,
            Errno::PERM,
            Errno::NETDOWN,
            Errno::NETUNREACH,
            Errno::HOSTDOWN,
            Errno::HOSTUNREACH,
            Errno::OPNOTSUPP,
            Errno::AGAIN,
        ]
        .contains(&n)
    })
}

/// Counts an open connection until dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves until `stop` is set (then lets the requests in flight finish, within `drain`), or
/// until the listener fails.
///
/// # Errors
/// The listener stopped: an accept error other than running out of resources, or a panic.
pub async fn run(
    listener: StdListener,
    ctx: Arc<Ctx>,
    stop: Arc<AtomicBool>,
    max: usize,
    drain: Duration,
) -> Result<()> {
    listener
        .set_nonblocking(true)
        .context("cannot set up the listening socket")?;
    let listener = TcpListener::from_std(listener).context("cannot set up the listening socket")?;
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let accepting = tokio::spawn(accept(
        listener,
        Arc::clone(&ctx),
        max,
        Arc::clone(&graceful),
    ));
    while !stop.load(Ordering::SeqCst) && !accepting.is_finished() {
        tokio::time::sleep(super::TICK).await;
    }
    if accepting.is_finished() {
        return match accepting.await {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Err(anyhow!("the listener stopped")),
            Err(e) => Err(anyhow!("the listener stopped: {e}")),
        };
    }
    log::info!("stopping: finishing the requests in flight");
    accepting.abort();
    let _ = accepting.await;
    let graceful =
        Arc::try_unwrap(graceful).map_err(|_| anyhow!("the listener is still running"))?;
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        log::warn!(
            "stopping with requests still in flight after {} s",
            drain.as_secs()
        );
    }
    Ok(())
}

async fn accept(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    max: usize,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
) -> Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_header_size(http::MAX_HEAD)
        .max_buf_size(http::MAX_HEAD + 8 * 1024)
        .max_headers(100)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let mut last_warning: Option<Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if transient(&e) => {
                if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                    log::warn!("cannot accept a connection now ({e}); retrying");
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
            Err(e) => {
                return Err(anyhow!(e).context("the listening socket failed"));
            }
        };
        if open.load(Ordering::SeqCst) >= max {
            shed(&stream);
            ctx.metrics.connections_shed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let guard = Open(Arc::clone(&open));
        // An answer's head and body go out in one write; no need to wait for an ACK.
        let _ = stream.set_nodelay(true);
        let stream = super::sendfile::Stream::new(stream, Arc::clone(&ctx.files));
        let mut io = tokio_io_timeout::TimeoutStream::new(stream);
        io.set_write_timeout(Some(WRITE_TIMEOUT));
        let io = TokioIo::new(Box::pin(io));
        let shared = Arc::clone(&ctx);
        let service = hyper::service::service_fn(move |rq| http::handle(Arc::clone(&shared), rq));
        let conn = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            let _open = guard;
            if let Err(e) = conn.await {
                log::debug!("connection ended: {e}");
            }
        });
    }
}

/// Answers 503 without reading the request, and closes.
fn shed(stream: &TcpStream) {
    let _ = stream.try_write(SHED);
    // Dropped by the caller: closed.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shed_answer_has_the_length_it_says() {
        let text = std::str::from_utf8(SHED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{}",
            body.len()
        );
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }

    #[test]
    fn running_out_of_descriptors_is_transient_and_a_bad_socket_is_not() {
        assert!(transient(&io::Error::from_raw_os_error(24))); // EMFILE
        assert!(transient(&io::Error::from_raw_os_error(12))); // ENOMEM
        assert!(!transient(&io::Error::from_raw_os_error(9))); // EBADF
        assert!(!transient(&io::Error::from_raw_os_error(22))); // EINVAL
    }
}
