//! `serve`: the HTTP API for dashboards and scripts, on hyper (HTTP/1 only).
//!
//! A small tokio runtime accepts connections and parses requests; hyper limits the request
//! head (`http::MAX_HEAD`, 431), drops a connection that sends no complete head within
//! `HEAD_TIMEOUT` (idle keep-alive ones too), and refuses malformed framing with the
//! connection closed. The edge (`http`) checks framing, Host, CORS, the token and the body,
//! then runs the route on tokio's blocking pool, at most `WORKERS` at once (`PLANE_WORKERS`
//! for requests that may reach Plane); /health and /metrics answer from memory on the network
//! thread. The routes (`routes`) are plain functions of a request, framework-agnostic and
//! tested directly; `cache` keeps the parsed state between requests; `liveness` keeps the
//! session backend's last answer, refreshed by a thread of its own; `metrics` counts;
//! `listener` accepts and sheds connections.

mod cache;
mod http;
mod listener;
mod liveness;
mod metrics;
mod routes;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};

use crate::app::App;
use crate::error::Error;
use crate::workflow::{self, PollOptions};

pub use cache::{StateCache, StateView};
pub use http::{split_url, HostPolicy, MAX_BODY, MAX_HEAD};
pub use liveness::{Liveness, Snapshot};
pub use metrics::Metrics;
pub use routes::{route, Body, Reply, Request};

/// Routes running at once on the blocking pool.
const WORKERS: usize = 8;
/// Of those, how many may be waiting on Plane: a Plane that does not answer takes at most half.
const PLANE_WORKERS: usize = WORKERS / 2;
/// How often the background threads look up to see whether the server is stopping.
const TICK: Duration = Duration::from_millis(100);
/// How long a stopping server waits for the requests in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long serve waits at start for the first answer of the session backend.
const FIRST_CHECK: Duration = Duration::from_secs(1);

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
pub type LiveSessions = Arc<std::collections::HashSet<String>>;

/// What every request handler shares. (No `Debug`: it holds the API token.)
pub struct Ctx {
    pub app: App,
    /// The API token from `api.token_env`; `None`: no token needed.
    pub token: Option<String>,
    pub metrics: Metrics,
    pub cache: StateCache,
    /// The session backend's last answer.
    pub liveness: Liveness,
    /// Which `Host` values are answered.
    pub hosts: HostPolicy,
    last_poll: Mutex<Option<PollStatus>>,
    workers: Arc<tokio::sync::Semaphore>,
    plane_slots: Arc<tokio::sync::Semaphore>,
}

impl Ctx {
    /// A context for a server on loopback.
    #[must_use]
    pub fn new(app: App, token: Option<String>) -> Ctx {
        let hosts = HostPolicy::for_bind(app.config.api.bind, &app.config.api.allowed_hosts);
        Ctx {
            app,
            token,
            metrics: Metrics::default(),
            cache: StateCache::default(),
            liveness: Liveness::default(),
            hosts,
            last_poll: Mutex::new(None),
            workers: Arc::new(tokio::sync::Semaphore::new(WORKERS)),
            plane_slots: Arc::new(tokio::sync::Semaphore::new(PLANE_WORKERS)),
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

    /// The names of the sessions running, for `session.alive`; `None` when unknown. The
    /// backend's last answer, never waited for; `fresh` asks it now (after approve, where a
    /// session just started: that request is on a worker and calls the backend anyway).
    #[must_use]
    pub fn live_sessions(&self, fresh: bool) -> Option<LiveSessions> {
        if fresh {
            self.liveness.refresh(&self.app.config).live
        } else {
            self.liveness.snapshot().live
        }
    }
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
/// A non-loopback address without a token (invalid, exit 2); the address cannot be bound;
/// the listener stopped accepting connections (so a supervisor restarts the server).
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
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {addr}"))?;
    let max_connections = listener::connection_limit(app.config.api.max_connections);

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal asks for a clean stop; a second one, while stopping, exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .context("cannot install the signal handlers")?;
    }

    let mut ctx = Ctx::new(app, token);
    ctx.hosts = HostPolicy::for_bind(local, &ctx.app.config.api.allowed_hosts);
    let ctx = Arc::new(ctx);
    let checker = {
        let (ctx, stop) = (Arc::clone(&ctx), Arc::clone(&stop));
        let (first, checked) = std::sync::mpsc::channel();
        let handle = thread::Builder::new()
            .name("plane-orch-sessions".into())
            .spawn(move || check_sessions(&ctx, &stop, &first))
            .context("cannot start the session check thread")?;
        // Lists show `alive` from the first request on, unless the backend is slow to answer.
        let _ = checked.recv_timeout(FIRST_CHECK);
        handle
    };
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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(WORKERS * 2)
        .thread_name("plane-orch-http")
        .enable_all()
        .build()
        .context("cannot start the server's threads")?;
    {
        let mut out = io::stdout().lock();
        // A closed stdout (the supervisor does not read it) is no reason not to serve.
        let _ = writeln!(out, "listening on http://{local}").and_then(|()| out.flush());
    }
    log::info!(
        "serving the API on http://{local} ({} token, {WORKERS} workers, at most \
         {max_connections} connections{})",
        if ctx.token.is_some() {
            "with a"
        } else {
            "without a"
        },
        if opts.poll { ", polling" } else { "" }
    );
    let result = runtime.block_on(listener::run(
        listener,
        Arc::clone(&ctx),
        Arc::clone(&stop),
        max_connections,
        DRAIN_LIMIT,
    ));
    stop.store(true, Ordering::SeqCst);
    runtime.shutdown_timeout(Duration::from_secs(1));
    for t in poller.into_iter().chain(sender) {
        let _ = t.join();
    }
    // Not joined: a check stuck on a hung backend ends with the process, at its deadline.
    drop(checker);
    match &result {
        Ok(()) => log::info!("stopped"),
        Err(e) => log::error!("{e:#}"),
    }
    result
}

/// Keeps the session backend's answer fresh until the server stops.
fn check_sessions(ctx: &Ctx, stop: &AtomicBool, first: &std::sync::mpsc::Sender<()>) {
    ctx.liveness.refresh(&ctx.app.config);
    let _ = first.send(());
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        while started.elapsed() < liveness::REFRESH && !stop.load(Ordering::SeqCst) {
            thread::sleep(TICK);
        }
        if !stop.load(Ordering::SeqCst) {
            ctx.liveness.refresh(&ctx.app.config);
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
