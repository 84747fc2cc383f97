//! `serve`: the HTTP API for dashboards and scripts.
//!
//! tiny_http accepts connections and parses requests on its own threads; a fixed pool of
//! workers takes finished requests from its queue, so a client that connects and says
//! nothing holds no worker. The routes (`routes`) are plain functions of a request; the edge
//! (`http`) does CORS, the token and body limits; `cache` keeps the parsed state between
//! requests; `metrics` counts.

mod cache;
mod http;
mod metrics;
mod routes;

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};

use crate::app::App;
use crate::error::Error;
use crate::workflow::{self, PollOptions};

pub use cache::StateCache;
pub use http::{split_url, MAX_BODY};
pub use metrics::Metrics;
pub use routes::{route, Body, Reply, Request};

/// Workers answering requests.
const WORKERS: usize = 8;
/// How often an idle worker looks up to see whether the server is stopping.
const TICK: Duration = Duration::from_millis(100);
/// How long the session backend's health is trusted before it is checked again.
const PROBE_TTL: Duration = Duration::from_secs(5);
/// How long the list of live sessions is trusted.
const LIVE_TTL: Duration = Duration::from_secs(2);
/// How long a stopping server waits for uploads still arriving.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// How `serve` runs.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Listen here instead of `api.bind`.
    pub bind: Option<SocketAddr>,
    /// Run poll ticks in the background.
    pub poll: bool,
}

/// The outcome of the last background poll tick.
#[derive(Debug, Clone)]
pub struct PollStatus {
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub error: Option<String>,
}

/// The names of the sessions running now.
pub type LiveSessions = Arc<HashSet<String>>;

/// What every request handler shares. (No `Debug`: it holds the API token.)
pub struct Ctx {
    pub app: App,
    /// The API token from `api.token_env`; `None`: no token needed.
    pub token: Option<String>,
    pub metrics: Metrics,
    pub cache: StateCache,
    last_poll: Mutex<Option<PollStatus>>,
    sessions_probe: Mutex<Option<(Instant, bool)>>,
    live: Mutex<Option<(Instant, Option<LiveSessions>)>>,
    /// Requests being finished on their own thread (slow uploads).
    inflight: AtomicUsize,
}

impl Ctx {
    #[must_use]
    pub fn new(app: App, token: Option<String>) -> Ctx {
        Ctx {
            app,
            token,
            metrics: Metrics::default(),
            cache: StateCache::default(),
            last_poll: Mutex::new(None),
            sessions_probe: Mutex::new(None),
            live: Mutex::new(None),
            inflight: AtomicUsize::new(0),
        }
    }

    /// Whether a browser page at `origin` may call the API (`api.cors_origins`).
    #[must_use]
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.app.config.api.cors_origins.iter().any(|o| o == origin)
    }

    /// The last background poll tick, if any ran.
    #[must_use]
    pub fn last_poll(&self) -> Option<PollStatus> {
        self.last_poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_last_poll(&self, status: PollStatus) {
        *self
            .last_poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(status);
    }

    /// Whether the session backend answers; checked at most every few seconds, because a
    /// dashboard asks for /health all the time.
    #[must_use]
    pub fn sessions_available(&self) -> bool {
        let mut probe = self
            .sessions_probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((at, ok)) = *probe {
            if at.elapsed() < PROBE_TTL {
                return ok;
            }
        }
        let ok = probe_sessions(&self.app);
        *probe = Some((Instant::now(), ok));
        ok
    }

    /// The names of the sessions running now, for `session.alive`; `None` when unknown.
    /// Kept for a moment, as every list answer asks; `fresh` asks the backend now (after a
    /// change such as approve, where a session just started).
    #[must_use]
    pub fn live_sessions(&self, fresh: bool) -> Option<LiveSessions> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, names)) = &*live {
            if !fresh && at.elapsed() < LIVE_TTL {
                return names.clone();
            }
        }
        let names = fetch_live_sessions(&self.app).map(Arc::new);
        *live = Some((Instant::now(), names.clone()));
        names
    }
}

/// Asks the session backend which sessions run; when it cannot be asked, `alive` stays null.
fn fetch_live_sessions(app: &App) -> Option<HashSet<String>> {
    crate::session::live_sessions(&app.config)
        .inspect_err(|e| log::debug!("session liveness unknown: {e:#}"))
        .ok()
}

fn probe_sessions(app: &App) -> bool {
    crate::session::probe(&app.config).is_ok()
}

/// The token from `env`, when it is set and not blank.
fn token_from_env(env: &str) -> Option<String> {
    std::env::var(env)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => {
            anyhow!("address {addr} is in use: stop the other server or pass --bind")
        }
        io::ErrorKind::AddrNotAvailable => {
            anyhow!("cannot listen on {addr}: no network interface has that address; pass --bind")
        }
        io::ErrorKind::PermissionDenied => anyhow!(
            "cannot listen on {addr}: permission denied (ports below 1024 need privileges); pass --bind"
        ),
        _ => anyhow!(e).context(format!("cannot listen on {addr}")),
    })
}

/// Runs the API until SIGINT or SIGTERM, then finishes the requests in flight and returns.
///
/// # Errors
/// A non-loopback address without a token (invalid, exit 2); the address cannot be bound.
pub fn serve(app: App, opts: &ServeOptions) -> Result<()> {
    let addr = opts.bind.unwrap_or(app.config.api.bind);
    let token_env = app.config.api.token_env.clone();
    let token = token_from_env(&token_env);
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(Error::Invalid(format!(
            "refusing to listen on {addr} without a token: anyone who can reach it could approve \
             tickets. Set {token_env} to a secret (clients then send \"Authorization: Bearer <it>\"), \
             or bind to 127.0.0.1"
        ))
        .into());
    }
    let listener = bind(addr)?;
    // tiny_http writes an answer's head and body separately; with Nagle's algorithm the body
    // then waits for the client's delayed ACK (40 ms on Linux). Accepted sockets inherit the
    // listener's TCP_NODELAY on Linux.
    if let Err(e) = socket2::SockRef::from(&listener).set_tcp_nodelay(true) {
        log::debug!("cannot set TCP_NODELAY on {addr}: {e}");
    }
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {addr}"))?;
    let server = Arc::new(
        tiny_http::Server::from_listener(listener, None)
            .map_err(|e| anyhow!("cannot serve on {local}: {e}"))?,
    );

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal asks for a clean stop; a second one, while stopping, exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .context("cannot install the signal handlers")?;
    }

    let ctx = Arc::new(Ctx::new(app, token));
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening on http://{local}").context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
    }
    log::info!(
        "serving the API on http://{local} ({} token, {WORKERS} workers{})",
        if ctx.token.is_some() {
            "with a"
        } else {
            "without a"
        },
        if opts.poll { ", polling" } else { "" }
    );

    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let (server, ctx, stop) = (Arc::clone(&server), Arc::clone(&ctx), Arc::clone(&stop));
            thread::Builder::new()
                .name(format!("plane-orch-worker-{i}"))
                .spawn(move || work(&server, &ctx, &stop))
                .context("cannot start the worker threads")
        })
        .collect::<Result<_>>()?;
    let poller = if opts.poll {
        let (ctx, stop) = (Arc::clone(&ctx), Arc::clone(&stop));
        Some(
            thread::Builder::new()
                .name("plane-orch-poll".into())
                .spawn(move || poll_loop(&ctx, &stop))
                .context("cannot start the poll thread")?,
        )
    } else {
        None
    };

    let sender = crate::notify::spawn_sender(&ctx.app, Arc::clone(&stop))?;

    while !stop.load(Ordering::SeqCst) {
        thread::sleep(TICK);
    }
    log::info!("stopping: finishing the requests in flight");
    for w in workers {
        let _ = w.join();
    }
    let waiting_since = Instant::now();
    while ctx.inflight.load(Ordering::SeqCst) > 0 && waiting_since.elapsed() < DRAIN_LIMIT {
        thread::sleep(Duration::from_millis(20));
    }
    for t in poller.into_iter().chain(sender) {
        let _ = t.join();
    }
    log::info!("stopped");
    Ok(())
}

/// Answers one request; a panic in a handler costs that request a 500 (tiny_http answers a
/// dropped request so), not the worker.
fn answer(ctx: &Arc<Ctx>, rq: tiny_http::Request) {
    let what = format!("{} {}", rq.method(), rq.url());
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| http::handle(ctx, rq))).is_err() {
        log::error!("{what}: the handler panicked; answered 500");
    }
}

fn work(server: &tiny_http::Server, ctx: &Arc<Ctx>, stop: &AtomicBool) {
    loop {
        if stop.load(Ordering::SeqCst) {
            // Requests tiny_http had already read are answered before leaving.
            while let Ok(Some(rq)) = server.try_recv() {
                answer(ctx, rq);
            }
            return;
        }
        match server.recv_timeout(TICK) {
            Ok(Some(rq)) => answer(ctx, rq),
            Ok(None) => {}
            Err(e) => {
                log::error!("the server stopped accepting connections: {e}");
                thread::sleep(TICK);
            }
        }
    }
}

fn poll_loop(ctx: &Ctx, stop: &AtomicBool) {
    let interval = ctx.app.config.poll.interval;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let result = workflow::poll(&ctx.app, &PollOptions::default());
        ctx.metrics.poll(started.elapsed(), result.is_ok());
        let status = match &result {
            Ok(report) => {
                log::info!(
                    "poll: {} queued, {} completed, {} sessions lost",
                    report.queued,
                    report.completed,
                    report.sessions_lost
                );
                PollStatus {
                    at: crate::ticket::now(),
                    ok: true,
                    error: None,
                }
            }
            Err(e) => {
                log::warn!("poll failed: {e:#}");
                PollStatus {
                    at: crate::ticket::now(),
                    ok: false,
                    error: Some(format!("{e:#}")),
                }
            }
        };
        ctx.set_last_poll(status);
        while started.elapsed() < interval && !stop.load(Ordering::SeqCst) {
            thread::sleep(TICK.min(interval.saturating_sub(started.elapsed())));
        }
    }
}
