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
mod health;
mod http;
mod listener;
mod liveness;
mod metrics;
mod routes;
mod sendfile;
mod ui;
mod webhook;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};

use crate::app::App;
use crate::error::Error;
use crate::plane::client::Patience;
use crate::plane::Client;
use crate::workflow::{self, PollOptions, ProjectFailure, ProjectViews};

pub use cache::{StateCache, StateView};
pub use http::{split_url, HostPolicy, MAX_BODY, MAX_HEAD};
pub use liveness::{Liveness, Snapshot};
pub use metrics::Metrics;
pub use routes::{route, Body, Reply, Request};
pub use webhook::{sign as sign_webhook, Nudge, Webhooks};

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

/// How long the poller gathers more nudges after the first, so a burst of deliveries for
/// one change (Plane sends one per changed field) is fetched once.
const NUDGE_GATHER: Duration = Duration::from_millis(50);

/// The outcome of the last background poll tick.
#[derive(Debug, Clone)]
pub struct PollStatus {
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub error: Option<String>,
    /// The watched projects that tick could not read.
    pub failed_projects: Vec<ProjectFailure>,
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
    /// Plane's webhooks, when `plane.webhook_secret_env` holds a secret.
    pub webhooks: Option<Webhooks>,
    last_poll: Mutex<Option<PollStatus>>,
    /// The last /health answer.
    health: health::Memo,
    /// The large kept answers that are sent from files.
    files: Arc<sendfile::Files>,
    /// Each listed ticket's answer as last made (see `routes::Fragments`).
    pub fragments: routes::Fragments,
    workers: Arc<tokio::sync::Semaphore>,
    plane_slots: Arc<tokio::sync::Semaphore>,
}

impl Ctx {
    /// A context for a server on loopback.
    #[must_use]
    pub fn new(app: App, token: Option<String>) -> Ctx {
        let hosts = HostPolicy::for_bind(app.config.api.bind, &app.config.api.allowed_hosts);
        let files = Arc::new(sendfile::Files::new(app.config.api.sendfile));
        Ctx {
            app,
            token,
            metrics: Metrics::default(),
            cache: StateCache::default(),
            liveness: Liveness::default(),
            hosts,
            webhooks: None,
            last_poll: Mutex::new(None),
            health: health::Memo::default(),
            files,
            fragments: routes::Fragments::default(),
            workers: Arc::new(tokio::sync::Semaphore::new(WORKERS)),
            plane_slots: Arc::new(tokio::sync::Semaphore::new(PLANE_WORKERS)),
        }
    }

    /// The same context taking Plane's webhooks.
    #[must_use]
    pub fn with_webhooks(mut self, webhooks: Option<Webhooks>) -> Ctx {
        self.webhooks = webhooks;
        self
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

    let (nudge_tx, nudge_rx) = mpsc::channel();
    let webhooks = Webhooks::new(&app.config.plane, nudge_tx);
    // Someone waits for each answer: a request that must reach Plane makes one attempt
    // within a short deadline (the background poller keeps its retries).
    let patience = Patience::interactive(&app.config.plane);
    let mut ctx = Ctx::new(app.with_plane_patience(patience), token).with_webhooks(webhooks);
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
    // Webhooks need the poller even without --poll: it fetches the items they name.
    let poller = if opts.poll || ctx.webhooks.is_some() {
        let (ctx, stop, full) = (Arc::clone(&ctx), Arc::clone(&stop), opts.poll);
        Some(
            thread::Builder::new()
                .name("plane-orch-poll".into())
                .spawn(move || poll_loop(&ctx, &stop, full, &nudge_rx))
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
         {max_connections} connections{}{})",
        if ctx.token.is_some() {
            "with a"
        } else {
            "without a"
        },
        if opts.poll { ", polling" } else { "" },
        match &ctx.webhooks {
            Some(w) => format!(", Plane webhooks at {}", w.path),
            None => String::new(),
        }
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

/// The background poller: a full tick every `poll.interval_secs` (with `--poll`), and, when
/// a webhook names work items, a tick for just those at once.
fn poll_loop(ctx: &Ctx, stop: &AtomicBool, full: bool, nudges: &mpsc::Receiver<Nudge>) {
    let interval = ctx.app.config.poll.interval;
    // Nobody waits on the poller: its Plane requests keep their retries.
    let app = App {
        plane_patience: None,
        ..ctx.app.clone()
    };
    let mut next_full = Instant::now();
    let mut views = ProjectViews::default();
    let mut waiting: Vec<Nudge> = Vec::new();
    if ctx.webhooks.is_some() {
        learn_own_user(ctx);
    }
    while !stop.load(Ordering::SeqCst) {
        if full && Instant::now() >= next_full {
            let started = Instant::now();
            full_tick(ctx, &app, &mut views);
            next_full = started + interval;
        }
        let until_full = if full {
            next_full.saturating_duration_since(Instant::now())
        } else {
            TICK
        };
        match nudges.recv_timeout(TICK.min(until_full)) {
            Ok(n) => {
                waiting.push(n);
                let gather_until = Instant::now() + NUDGE_GATHER;
                while let Ok(more) =
                    nudges.recv_timeout(gather_until.saturating_duration_since(Instant::now()))
                {
                    waiting.push(more);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) if !full && waiting.is_empty() => return,
            Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(TICK.min(until_full)),
        }
        if !waiting.is_empty() {
            waiting = nudge_tick(ctx, &app, &mut views, std::mem::take(&mut waiting));
        }
    }
}

/// One full poll tick, its outcome kept for `/health`.
fn full_tick(ctx: &Ctx, app: &App, views: &mut ProjectViews) {
    let started = Instant::now();
    let result = workflow::poll_keeping(app, &PollOptions::default(), views);
    let status = match &result {
        Ok(report) => {
            log::info!(
                "poll: {} queued, {} completed, {} sessions lost",
                report.queued,
                report.completed,
                report.sessions_lost
            );
            let failure = report.failure().map(|e| format!("{e:#}"));
            if let Some(e) = &failure {
                log::warn!("poll: {e}");
            }
            PollStatus {
                at: crate::ticket::now(),
                ok: failure.is_none(),
                error: failure,
                failed_projects: report.failed_projects.clone(),
            }
        }
        Err(e) => {
            log::warn!("poll failed: {e:#}");
            PollStatus {
                at: crate::ticket::now(),
                ok: false,
                error: Some(format!("{e:#}")),
                failed_projects: Vec::new(),
            }
        }
    };
    ctx.metrics.poll(started.elapsed(), status.ok);
    ctx.set_last_poll(status);
}

/// Learns the key's own user, so its own changes (echoed back as webhooks) are ignored.
fn learn_own_user(ctx: &Ctx) -> Option<String> {
    let hooks = ctx.webhooks.as_ref()?;
    if let Some(me) = hooks.me.get() {
        return Some(me.clone());
    }
    let me = Client::new(&ctx.app.config.plane)
        .and_then(|c| c.me())
        .map(|v| v["id"].as_str().map(str::to_string));
    match me {
        Ok(Some(id)) => Some(hooks.me.get_or_init(|| id).clone()),
        Ok(None) => None,
        Err(e) => {
            log::warn!(
                "cannot learn the Plane key's own user (its changes would be fetched too): {e:#}"
            );
            None
        }
    }
}

/// Fetches the work items nudges name, once each; returns the nudges to try again (another
/// poll held the lock).
fn nudge_tick(ctx: &Ctx, app: &App, views: &mut ProjectViews, nudges: Vec<Nudge>) -> Vec<Nudge> {
    let me = learn_own_user(ctx);
    let mut items: Vec<(String, String)> = Vec::new();
    for n in &nudges {
        if n.actor.is_some() && n.actor == me {
            log::debug!("webhook for {}: the key's own change, ignored", n.item);
            continue;
        }
        let pair = (n.project.clone(), n.item.clone());
        if !items.contains(&pair) {
            items.push(pair);
        }
    }
    if items.is_empty() {
        return Vec::new();
    }
    let client = match Client::new(&ctx.app.config.plane) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("webhook: cannot poll Plane: {e:#}");
            return Vec::new();
        }
    };
    match workflow::poll_items(app, &client, &items, views) {
        Ok(report) if report.skipped => {
            log::debug!("webhook: another poll is running; fetching after it");
            thread::sleep(TICK);
            nudges
        }
        Ok(_) => Vec::new(),
        Err(e) => {
            log::warn!(
                "webhook: the poll of {} work item(s) failed: {e:#}",
                items.len()
            );
            Vec::new()
        }
    }
}
