//! Notifications: a person is told when a ticket needs them, exactly once per event.
//!
//! The source of every notification is the ticket's own audit trail (`events` in the state
//! file), which is written in the same atomic step as the change it records: a ticket that
//! became `completed` carries its `completed` event from the moment the change exists. The
//! sender ([`pump`], run by every poll tick and by `serve`) reads the trail past a per-ticket
//! cursor, turns new events into [`Notification`]s in the outbox (a small file beside the state
//! file), and delivers each to every sink that wants it with bounded retries. Cursors and
//! queue are saved before anything is sent, and each delivery is marked as soon as it lands,
//! so a crash at any point sends every event after restart, and an event a sink accepted is
//! not sent to it again (a crash in the instant between a sink's answer and the mark can
//! repeat one delivery: receivers can drop a repeated `event_id`).
//!
//! Nothing here runs on a command's own path: `approve`, `complete` or a hook only write the
//! state as always; delivery never blocks the workflow.

pub mod config;
mod outbox;
mod sink;

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
pub use config::{NotifyConfig, Sink, Target};
pub use outbox::{Outbox, SinkHealth};

/// What a notification is about. `Test` is only ever sent by `notify test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// New pending tickets (one message for all those a poll found).
    Queued,
    /// A session waits for the person: a question or a permission prompt.
    Waiting,
    /// A session never got past its start.
    Stuck,
    /// A working session stopped making progress.
    Stalled,
    /// A session ran longer than allowed.
    OverTime,
    /// A session reached 80 % or 100 % of its budget.
    Budget,
    /// A summary is ready for review.
    Completed,
    /// Plane refused the update.
    UpdateFailed,
    /// A session ended without a summary.
    SessionLost,
    /// The summary is in Plane.
    Done,
    Test,
}

impl EventKind {
    /// The events a sink can ask for (`Test` is always delivered to the sink tested).
    pub const ALL: [EventKind; 10] = [
        EventKind::Queued,
        EventKind::Waiting,
        EventKind::Stuck,
        EventKind::Stalled,
        EventKind::OverTime,
        EventKind::Budget,
        EventKind::Completed,
        EventKind::UpdateFailed,
        EventKind::SessionLost,
        EventKind::Done,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Waiting => "waiting",
            EventKind::Stuck => "stuck",
            EventKind::Stalled => "stalled",
            EventKind::OverTime => "over_time",
            EventKind::Budget => "budget",
            EventKind::Completed => "completed",
            EventKind::UpdateFailed => "update_failed",
            EventKind::SessionLost => "session_lost",
            EventKind::Done => "done",
            EventKind::Test => "test",
        }
    }

    #[must_use]
    pub fn parse(name: &str) -> Option<EventKind> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What a message says about one ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketFacts {
    pub id: String,
    pub title: String,
    pub status: String,
    /// What the session is doing, when known (`waiting: Allow Bash(npm test)?`).
    #[serde(default)]
    pub activity: Option<String>,
    /// What the ticket's sessions have cost, when known.
    #[serde(default)]
    pub cost: Option<serde_json::Value>,
    /// The start of the summary (at most 300 characters).
    #[serde(default)]
    pub summary: Option<String>,
    /// The dashboard's link for it, else its Plane URL.
    #[serde(default)]
    pub link: Option<String>,
    /// Its Plane URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// One message, as queued in the outbox and sent to each sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per event: the same event delivered twice carries the same id.
    pub event_id: String,
    pub event: EventKind,
    pub time: DateTime<Utc>,
    /// A one-line headline (`CSLOG-12 is waiting for you`).
    pub title: String,
    /// A few lines of detail.
    pub message: String,
    pub link: Option<String>,
    pub tickets: Vec<TicketFacts>,
}

/// What one run of the sender did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PumpReport {
    /// Another sender held the outbox: this one did nothing.
    pub skipped: bool,
    pub queued: usize,
    pub delivered: usize,
    pub failed: usize,
    pub given_up: usize,
}

/// The outbox file of a store: beside the state file, named after it.
#[must_use]
pub fn outbox_path(app: &App) -> PathBuf {
    let state = app.store.path();
    let stem = state
        .file_stem()
        .map_or_else(|| "pending-tickets".into(), |s| s.to_string_lossy());
    state.with_file_name(format!("{stem}.outbox.json"))
}

/// Turns new audit events into notifications and delivers what is due. Without sinks it does
/// nothing at all (no file is made). When another process is sending, it returns at once.
///
/// # Errors
/// The state or the outbox cannot be read or written. A sink that fails is not an error: it
/// is retried later and reported by [`health`].
pub fn pump(app: &App) -> Result<PumpReport> {
    let cfg = &app.config.notify;
    if !cfg.enabled() {
        return Ok(PumpReport::default());
    }
    let path = outbox_path(app);
    let Some(mut held) = outbox::Held::try_open(&path)? else {
        return Ok(PumpReport {
            skipped: true,
            ..PumpReport::default()
        });
    };
    let now = crate::ticket::now();
    let state = app.store.load()?;
    // A ticket leaves the state file for the archive in the write that makes it done: the
    // last events of those the outbox was following are read from there.
    let mut archived = Vec::new();
    for id in held.outbox.followed() {
        if !state.tickets.contains_key(id) && state.archived.contains(id) {
            archived.extend(app.store.find_archived(id)?);
        }
    }
    let tickets: Vec<&crate::ticket::Ticket> =
        state.tickets.values().chain(archived.iter()).collect();
    let queued = held.outbox.take_events(&tickets, cfg, now);
    held.outbox.prune(cfg);
    held.save()?;
    let mut report = PumpReport {
        queued,
        ..PumpReport::default()
    };
    held.deliver(cfg, &mut report)?;
    Ok(report)
}

/// The outbox as last saved (for `/health` and `doctor`); `None` without sinks or before the
/// first send.
///
/// # Errors
/// The outbox exists but cannot be read.
pub fn health(app: &App) -> Result<Option<Outbox>> {
    if !app.config.notify.enabled() {
        return Ok(None);
    }
    outbox::Outbox::read(&outbox_path(app))
}

/// What one sink answered to a test message.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub sink: String,
    pub kind: &'static str,
    pub ok: bool,
    pub answer: String,
}

/// Sends a test message to each sink (or the one named), now, outside the outbox.
///
/// # Errors
/// `Error::Invalid` when `only` names no sink, `Error::Config` when there are none.
pub fn test(app: &App, only: Option<&str>) -> Result<Vec<TestResult>> {
    let cfg = &app.config.notify;
    if !cfg.enabled() {
        return Err(crate::error::Error::Config(
            "no notification sinks are configured: add notify.sinks to the config file".into(),
        )
        .into());
    }
    let sinks: Vec<&Sink> = cfg
        .sinks
        .iter()
        .filter(|s| only.is_none_or(|n| s.name == n))
        .collect();
    if sinks.is_empty() {
        let names: Vec<&str> = cfg.sinks.iter().map(|s| s.name.as_str()).collect();
        return Err(crate::error::Error::Invalid(format!(
            "no sink is named {:?}; the sinks are: {}",
            only.unwrap_or_default(),
            names.join(", ")
        ))
        .into());
    }
    let note = Notification {
        event_id: uuid::Uuid::new_v4().to_string(),
        event: EventKind::Test,
        time: crate::ticket::now(),
        title: "plane-orch test message".into(),
        message: "If you can read this, plane-orch can reach you here.".into(),
        link: cfg.link_base.clone(),
        tickets: Vec::new(),
    };
    Ok(sinks
        .into_iter()
        .map(|s| {
            let answer = sink::deliver(s, &note, &cfg.secret_vars);
            TestResult {
                sink: s.name.clone(),
                kind: s.target.kind(),
                ok: answer.is_ok(),
                answer: answer.unwrap_or_else(|e| e),
            }
        })
        .collect())
}

/// What `/health` says of notifications: each sink's record, and how many messages wait.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HealthSummary {
    pub queued: usize,
    pub sinks: Vec<SinkSummary>,
}

/// One sink in `/health` and `doctor`: its name and kind, never its URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkSummary {
    pub name: String,
    pub kind: &'static str,
    pub failing: bool,
    pub delivered: u64,
    pub given_up: u64,
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Each configured sink with what the outbox knows of it.
#[must_use]
pub fn summarize(cfg: &NotifyConfig, outbox: Option<&Outbox>) -> HealthSummary {
    HealthSummary {
        queued: outbox.map_or(0, Outbox::queued),
        sinks: cfg
            .sinks
            .iter()
            .map(|s| {
                let h = outbox
                    .and_then(|o| o.sinks.get(&s.name))
                    .cloned()
                    .unwrap_or_default();
                SinkSummary {
                    name: s.name.clone(),
                    kind: s.target.kind(),
                    failing: h.failing() || h.given_up > 0 && h.last_ok_at < h.last_error_at,
                    delivered: h.delivered,
                    given_up: h.given_up,
                    last_ok_at: h.last_ok_at,
                    last_error: h.last_error,
                    last_error_at: h.last_error_at,
                }
            })
            .collect(),
    }
}

/// The last summary the server's sender made, for `/health` without touching a file.
static LAST_SUMMARY: std::sync::Mutex<Option<HealthSummary>> = std::sync::Mutex::new(None);

/// What `/health` shows: `None` without sinks.
#[must_use]
pub fn last_summary() -> Option<HealthSummary> {
    LAST_SUMMARY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// How often the server's sender looks for new events and due retries.
const SEND_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Starts the server's sender: every couple of seconds, when the state file changed or
/// messages wait, it runs [`pump`]; it stops when `stop` is set. `None` without sinks.
///
/// # Errors
/// The thread cannot be started.
pub fn spawn_sender(
    app: &App,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<Option<std::thread::JoinHandle<()>>> {
    use std::sync::atomic::Ordering;
    if !app.config.notify.enabled() {
        return Ok(None);
    }
    let app = app.clone();
    let handle = std::thread::Builder::new()
        .name("plane-orch-notify".into())
        .spawn(move || {
            let mut seen: Option<(u64, Option<std::time::SystemTime>)> = None;
            let mut waiting = true;
            let mut last_run = std::time::Instant::now() - SEND_EVERY;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if last_run.elapsed() < SEND_EVERY {
                    continue;
                }
                last_run = std::time::Instant::now();
                let now_seen = std::fs::metadata(app.store.path())
                    .ok()
                    .map(|m| (m.len(), m.modified().ok()));
                if now_seen == seen && !waiting {
                    continue;
                }
                match pump(&app) {
                    Ok(r) if r.skipped => {}
                    Ok(_) => seen = now_seen,
                    Err(e) => log::warn!("notifications: {e:#}"),
                }
                let outbox = health(&app).ok().flatten();
                waiting = outbox.as_ref().is_some_and(|o| o.queued() > 0);
                *LAST_SUMMARY
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(summarize(&app.config.notify, outbox.as_ref()));
            }
        })
        .context("cannot start the notification thread")?;
    Ok(Some(handle))
}
