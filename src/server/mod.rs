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
mod webhook;

use std::collections::HashSet;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

pub use cache::StateCache;
pub use http::{split_url, MAX_BODY};
pub use metrics::Metrics;
pub use routes::{route, Body, Reply, Request};
pub use webhook::{sign as sign_webhook, Nudge, Webhooks};

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
pub type LiveSessions = Arc<HashSet<String>>;

/// What every request handler shares. (No `Debug`: it holds the API token.)
pub struct Ctx {
    pub app: App,
    /// The API token from `api.token_env`; `None`: no token needed.
    pub token: Option<String>,
    pub metrics: Metrics,
    pub cache: StateCache,
    /// Plane's webhooks, when `plane.webhook_secret_env` holds a secret.
    pub webhooks: Option<Webhooks>,
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
            webhooks: None,
            last_poll: Mutex::new(None),
            sessions_probe: Mutex::new(None),
            live: Mutex::new(None),
            inflight: AtomicUsize::new(0),
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

    let (nudge_tx, nudge_rx) = mpsc::channel();
    let webhooks = Webhooks::new(&app.config.plane, nudge_tx);
    // Someone waits for each answer: a request that must reach Plane makes one attempt
    // within a short deadline (the background poller keeps its retries).
    let patience = Patience::interactive(&app.config.plane);
    let ctx = Arc::new(Ctx::new(app.with_plane_patience(patience), token).with_webhooks(webhooks));
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening on http://{local}").context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
    }
    log::info!(
        "serving the API on http://{local} ({} token, {WORKERS} workers{}{})",
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

    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let (server, ctx, stop) = (Arc::clone(&server), Arc::clone(&ctx), Arc::clone(&stop));
            thread::Builder::new()
                .name(format!("plane-orch-worker-{i}"))
                .spawn(move || work(&server, &ctx, &stop))
                .context("cannot start the worker threads")
        })
        .collect::<Result<_>>()?;
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
