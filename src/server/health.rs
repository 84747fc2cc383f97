//! `/health`, answered on the network thread from memory: the state as last read (read again
//! only when it changed and nobody holds its lock), the session backend as last checked, the
//! last poll, each with its age.
//!
//! A monitor or a load balancer may ask this many times a second, so the answer is cheap:
//! the tickets with an operation under way are found once per version of the state (most
//! versions have none; each request then asks only their leases, which change without the
//! state file changing), and the answer's bytes are kept with what they were made from. A
//! request gathers the facts (ages rounded as shown, the time to the millisecond) and writes
//! them out again only when they differ from the last answer's, so the bytes are always
//! exactly those of its own facts.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::routes::{Body, Reply};
use super::Ctx;
use crate::ticket::Status;

/// Seconds to one decimal, as /health shows ages.
fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// The last answer and the facts it was made from.
#[derive(Debug, Default)]
pub struct Memo {
    last: Mutex<Option<(Health, Arc<Vec<u8>>)>>,
    /// The state file's path and the webhook path as the answer shows them: fixed for the
    /// server's life, made once.
    paths: OnceLock<(Arc<str>, Arc<str>)>,
}

impl Memo {
    fn paths(&self, ctx: &Ctx) -> (Arc<str>, Arc<str>) {
        let (state, webhook) = self.paths.get_or_init(|| {
            (
                Arc::from(ctx.app.store.path().to_string_lossy()),
                Arc::from(ctx.app.config.plane.webhook_path.as_str()),
            )
        });
        (Arc::clone(state), Arc::clone(webhook))
    }
}

/// The answer without the token, when one is set: how it is, and nothing the state says.
#[derive(Serialize)]
struct Bare {
    status: &'static str,
}

// Fields in alphabetical order: the order the answer always had.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Health {
    active_count: usize,
    completed_count: usize,
    done_count: usize,
    interrupted: Vec<Interrupted>,
    notify: Option<crate::notify::HealthSummary>,
    pending_count: usize,
    plane: Plane,
    sessions: Sessions,
    state: State,
    status: &'static str,
    timestamp: DateTime<Utc>,
    tmux_service: bool,
    version: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Interrupted {
    id: String,
    kind: &'static str,
    status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Plane {
    configured: bool,
    failed_projects: Vec<crate::workflow::ProjectFailure>,
    last_poll_at: Option<DateTime<Utc>>,
    last_poll_error: Option<String>,
    last_poll_ok: Option<bool>,
    rate_budget: crate::plane::budget::Usage,
    webhooks: Webhooks,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum Webhooks {
    Off {
        enabled: bool,
        #[serde(serialize_with = "shared_str")]
        path: Arc<str>,
    },
    On(serde_json::Value),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Sessions {
    available: bool,
    backend: &'static str,
    checked_secs_ago: Option<f64>,
    error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct State {
    age_secs: f64,
    error: Option<String>,
    ok: bool,
    #[serde(serialize_with = "shared_str")]
    path: Arc<str>,
    stale: Option<String>,
}

/// A shared text, written as a string.
fn shared_str<S: serde::Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(text)
}

fn json_bytes<T: Serialize>(value: &T, capacity: usize) -> Result<Vec<u8>, Reply> {
    let mut bytes = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut bytes, value) {
        Ok(()) => {
            bytes.push(b'\n');
            Ok(bytes)
        }
        Err(e) => Err(Reply::error(
            500,
            "internal",
            &format!("cannot write the answer: {e}"),
        )),
    }
}

/// The health answer. Without the token (when one is set) it says only `healthy` or
/// `degraded`: paths, Plane's error texts and counts are for those holding the token.
pub(super) fn answer(ctx: &Ctx, authorized: bool) -> Reply {
    // One look at the state file serves the counts and the interrupted operations.
    let (state, open) = if authorized {
        ctx.cache.summary_and_state_now(&ctx.app.store)
    } else {
        (ctx.cache.summary_now(&ctx.app.store), None)
    };
    let summary = state.summary.as_ref().ok().copied();
    let count = |s: Status| summary.map_or(0, |summary| summary.count(s));
    let sessions = ctx.liveness.snapshot();
    let available = sessions.available == Some(true);
    let healthy = summary.is_some() && available;
    let status = if healthy { "healthy" } else { "degraded" };
    if !authorized {
        return match json_bytes(&Bare { status }, 32) {
            Ok(bytes) => Reply::new(200, Body::Raw(Arc::new(bytes))),
            Err(reply) => reply,
        };
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
                        id: t.id.as_str().to_string(),
                        kind: t.op.as_ref().map_or("", |o| o.kind.as_str()),
                        status,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let plane = &ctx.app.config.plane;
    let memo = &ctx.health;
    let (path, webhook_path) = memo.paths(ctx);
    let (at, ok, error, failed_projects) = match last {
        Some(p) => (Some(p.at), Some(p.ok), p.error, p.failed_projects),
        None => (None, None, None, Vec::new()),
    };
    let health = Health {
        active_count: count(Status::Active),
        completed_count: count(Status::Completed),
        done_count: count(Status::Done),
        interrupted,
        notify: crate::notify::last_summary(),
        pending_count: count(Status::Pending),
        plane: Plane {
            configured: plane.is_configured(),
            failed_projects,
            last_poll_at: at,
            last_poll_error: error,
            last_poll_ok: ok,
            // Without Plane there is no ledger to read.
            rate_budget: crate::plane::budget::Budget::new(plane).usage_if(plane.is_configured()),
            webhooks: ctx.webhooks.as_ref().map_or_else(
                || Webhooks::Off {
                    enabled: false,
                    path: webhook_path,
                },
                |w| Webhooks::On(w.status()),
            ),
        },
        sessions: Sessions {
            available,
            backend: ctx.app.config.sessions.backend.as_str(),
            checked_secs_ago: sessions.age().map(secs),
            error: sessions.error,
        },
        state: State {
            age_secs: secs(state.age),
            ok: summary.is_some(),
            error: state.summary.err(),
            path,
            stale: state.stale,
        },
        status,
        timestamp: crate::ticket::now(),
        tmux_service: available,
        version: env!("CARGO_PKG_VERSION"),
    };
    let mut last = memo.last.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((facts, bytes)) = &*last {
        if *facts == health {
            return Reply::new(200, Body::Raw(Arc::clone(bytes)));
        }
    }
    match json_bytes(&health, 1024) {
        Ok(bytes) => {
            let bytes = Arc::new(bytes);
            *last = Some((health, Arc::clone(&bytes)));
            Reply::new(200, Body::Raw(bytes))
        }
        Err(reply) => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use crate::ticket::{now, NewTicket, Ticket, TicketId};

    fn ctx() -> (tempfile::TempDir, Ctx) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::parse("", &dir.path().join("config.yaml")).unwrap();
        (dir, Ctx::new(App::from_config(config), None))
    }

    fn add(ctx: &Ctx, id: &str) {
        ctx.app
            .store
            .update(|s| {
                let t = Ticket::new(NewTicket::manual(TicketId::parse(id).unwrap(), "t"), now());
                s.tickets.insert(t.id.clone(), t);
                Ok(())
            })
            .unwrap();
    }

    fn bytes(reply: &Reply) -> Arc<Vec<u8>> {
        match &reply.body {
            Body::Raw(b) => Arc::clone(b),
            other => panic!("not kept bytes: {other:?}"),
        }
    }

    #[test]
    fn the_same_facts_share_one_answer_and_a_change_is_seen_by_the_next_request() {
        let (_dir, ctx) = ctx();
        add(&ctx, "A-1");
        let first = answer(&ctx, true);
        assert_eq!(first.value()["pending_count"], 1);
        // Within one millisecond (the time's resolution) the facts are the same: one answer.
        let shared = (0..1000).any(|_| {
            let (a, b) = (answer(&ctx, true), answer(&ctx, true));
            Arc::ptr_eq(&bytes(&a), &bytes(&b))
        });
        assert!(shared, "no two answers shared their bytes");
        add(&ctx, "A-2");
        let after = answer(&ctx, true);
        assert_eq!(after.value()["pending_count"], 2, "{:?}", after.value());
        assert_eq!(after.value()["state"]["age_secs"], 0.0);
        // Each answer is what its own facts give, the time included.
        let v = answer(&ctx, true).value();
        let at = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).unwrap();
        assert!(
            (now() - at.with_timezone(&Utc)).num_milliseconds() < 1000,
            "{v}"
        );
    }

    #[test]
    fn without_the_token_only_the_status_is_told() {
        let (_dir, ctx) = ctx();
        add(&ctx, "A-1");
        let v = answer(&ctx, false).value();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        assert!(v["status"].is_string());
    }
}
