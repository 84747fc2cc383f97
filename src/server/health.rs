//! `/health`, answered on the network thread from memory: the state as last read (read again
//! only when it changed and nobody holds its lock), the session backend as last checked, the
//! last poll, each with its age.
//!
//! A monitor or a dashboard asks this many times a second, so the answer is cheap to make:
//! the tickets with an operation under way are found once per version of the state (most
//! versions have none; each request then only asks their leases, which change without the
//! state file changing), and the answer is serialized straight from borrowed fields, without
//! building a JSON tree first.

use std::time::Duration;

use serde::Serialize;

use super::cache::StateView;
use super::routes::{Body, Reply};
use super::Ctx;
use crate::ticket::Status;

/// Seconds to one decimal, as /health shows ages.
fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// The answer without the token, when one is set: how it is, and nothing the state says.
#[derive(Serialize)]
struct Bare {
    status: &'static str,
}

// Fields in alphabetical order: the order the answer always had.
#[derive(Serialize)]
struct Health<'a> {
    active_count: usize,
    completed_count: usize,
    done_count: usize,
    interrupted: Vec<Interrupted<'a>>,
    notify: Option<crate::notify::HealthSummary>,
    pending_count: usize,
    plane: Plane<'a>,
    sessions: Sessions<'a>,
    state: State<'a>,
    status: &'static str,
    timestamp: chrono::DateTime<chrono::Utc>,
    tmux_service: bool,
    version: &'static str,
}

#[derive(Serialize)]
struct Interrupted<'a> {
    id: &'a str,
    kind: &'a str,
    status: String,
}

#[derive(Serialize)]
struct Plane<'a> {
    configured: bool,
    failed_projects: &'a [crate::workflow::ProjectFailure],
    last_poll_at: Option<chrono::DateTime<chrono::Utc>>,
    last_poll_error: Option<&'a str>,
    last_poll_ok: Option<bool>,
    rate_budget: crate::plane::budget::Usage,
    webhooks: Webhooks<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Webhooks<'a> {
    Off { enabled: bool, path: &'a str },
    On(serde_json::Value),
}

#[derive(Serialize)]
struct Sessions<'a> {
    available: bool,
    backend: &'a str,
    checked_secs_ago: Option<f64>,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct State<'a> {
    age_secs: f64,
    error: Option<&'a str>,
    ok: bool,
    path: std::borrow::Cow<'a, str>,
    stale: Option<&'a str>,
}

fn reply<T: Serialize>(value: &T, capacity: usize) -> Reply {
    let mut bytes = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut bytes, value) {
        Ok(()) => {
            bytes.push(b'\n');
            Reply::new(200, Body::Bytes(bytes.into(), "application/json"))
        }
        Err(e) => Reply::error(500, "internal", &format!("cannot write the answer: {e}")),
    }
}

/// The health answer. Without the token (when one is set) it says only `healthy` or
/// `degraded`: paths, Plane's error texts and counts are for those holding the token.
pub(super) fn answer(ctx: &Ctx, authorized: bool) -> Reply {
    // One look at the state file serves the counts and the interrupted operations.
    let (state, open): (StateView, _) = if authorized {
        ctx.cache.summary_and_state_now(&ctx.app.store)
    } else {
        (ctx.cache.summary_now(&ctx.app.store), None)
    };
    let summary = state.summary.as_ref().ok();
    let count = |s: Status| summary.map_or(0, |summary| summary.count(s));
    let sessions = ctx.liveness.snapshot();
    let available = sessions.available == Some(true);
    let healthy = summary.is_some() && available;
    let status = if healthy { "healthy" } else { "degraded" };
    if !authorized {
        return reply(&Bare { status }, 32);
    }
    let last = ctx.last_poll();
    // Operations left by a process that died, from the last state read (never waiting on
    // the state lock): the next command on each ticket finishes it.
    let interrupted = open
        .as_deref()
        .map(|s| {
            s.with_op()
                .iter()
                .filter_map(|t| {
                    let status = crate::workflow::op::status(&ctx.app, t)?;
                    status.starts_with("interrupted").then(|| Interrupted {
                        id: t.id.as_str(),
                        kind: t.op.as_ref().map_or("", |o| o.kind.as_str()),
                        status,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let plane = &ctx.app.config.plane;
    let health = Health {
        active_count: count(Status::Active),
        completed_count: count(Status::Completed),
        done_count: count(Status::Done),
        interrupted,
        notify: crate::notify::last_summary(),
        pending_count: count(Status::Pending),
        plane: Plane {
            configured: plane.is_configured(),
            failed_projects: last.as_ref().map_or(&[], |p| p.failed_projects.as_slice()),
            last_poll_at: last.as_ref().map(|p| p.at),
            last_poll_error: last.as_ref().and_then(|p| p.error.as_deref()),
            last_poll_ok: last.as_ref().map(|p| p.ok),
            // Without Plane there is no ledger to read.
            rate_budget: crate::plane::budget::Budget::new(plane).usage_if(plane.is_configured()),
            webhooks: ctx.webhooks.as_ref().map_or(
                Webhooks::Off {
                    enabled: false,
                    path: &plane.webhook_path,
                },
                |w| Webhooks::On(w.status()),
            ),
        },
        sessions: Sessions {
            available,
            backend: ctx.app.config.sessions.backend.as_str(),
            checked_secs_ago: sessions.age().map(secs),
            error: sessions.error.as_deref(),
        },
        state: State {
            age_secs: secs(state.age),
            error: state.summary.as_ref().err().map(String::as_str),
            ok: summary.is_some(),
            path: ctx.app.store.path().to_string_lossy(),
            stale: state.stale.as_deref(),
        },
        status,
        timestamp: crate::ticket::now(),
        tmux_service: available,
        version: env!("CARGO_PKG_VERSION"),
    };
    reply(&health, 1024)
}
