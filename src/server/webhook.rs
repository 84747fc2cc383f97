//! Plane's webhooks, taken as a nudge: a signed `issue` event makes the poller fetch that one
//! work item now instead of at the next tick. Polling stays the source of truth, as Plane
//! retries a delivery only on connection errors and gives each retry a new delivery id:
//! nothing here may be needed for a ticket to be queued, only for it to be queued sooner.
//!
//! Plane signs the exact bytes it sends: `X-Plane-Signature` is the lowercase hex
//! HMAC-SHA256 of the raw body, keyed with the webhook's secret. The handler checks it in
//! constant time, drops replays of a body seen in the last hour, ignores what plane-orch
//! need not act on, and hands the rest to the poller; it never calls Plane itself, so Plane
//! gets its answer at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::PlaneConfig;

use super::routes::{Reply, Request};

/// A body seen within this long is a replay.
const REPLAY_WINDOW: Duration = Duration::from_secs(3600);
/// The most bodies remembered for replays; past it the oldest is forgotten.
const REPLAY_MAX: usize = 10_000;
/// The header Plane puts the signature in.
pub const SIGNATURE_HEADER: &str = "X-Plane-Signature";

/// One work item a webhook says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nudge {
    pub project: String,
    pub item: String,
    /// Who changed it (`activity.actor.id`), when Plane says.
    pub actor: Option<String>,
}

/// The webhook endpoint's state: the secret, the bodies seen, and the way to the poller.
pub struct Webhooks {
    secret: String,
    env: String,
    pub path: String,
    seen: Mutex<HashMap<[u8; 32], Instant>>,
    refusal_logged: AtomicBool,
    nudges: Mutex<mpsc::Sender<Nudge>>,
    /// The key's own user id (`users/me`), once known: its events are plane-orch's own.
    pub me: OnceLock<String>,
    received: AtomicU64,
    accepted: AtomicU64,
    ignored: AtomicU64,
    refused: AtomicU64,
    last_accepted: Mutex<Option<DateTime<Utc>>>,
}

/// Whether `signature` (hex) is the HMAC-SHA256 of `body` under `secret`; constant-time.
#[must_use]
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The signature Plane would send for `body`: lowercase hex HMAC-SHA256.
#[must_use]
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// What a delivery asks of plane-orch.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// A work item changed: fetch it.
    Item(Nudge),
    /// Nothing to do, and why.
    Ignore(String),
}

/// Reads a delivery: Plane's own webhooks (`{"event": "issue", "action", "data":
/// {"id", "project", ...}, "activity": {"actor": {"id"}}}`) and Plane Cloud's newer ones
/// (`{"version": "v2", "event": "workitem.updated", "entity_type": "issue", "entity_id",
/// "data": {"project_id", ...}}`).
fn event(body: &Value, header_event: Option<&str>) -> Event {
    let name = body["event"]
        .as_str()
        .or(header_event)
        .unwrap_or_default()
        .to_string();
    let is_item = name == "issue"
        || (body["entity_type"] == "issue"
            && name.starts_with("workitem.")
            && !name.starts_with("workitem.comment"));
    if !is_item {
        return Event::Ignore(format!("{name:?} events do not change what is queued"));
    }
    let data = &body["data"];
    let item = data["id"]
        .as_str()
        .or_else(|| body["entity_id"].as_str())
        .map(str::to_string);
    let project = data["project"]
        .as_str()
        .or_else(|| data["project_id"].as_str())
        .or_else(|| data["project"]["id"].as_str())
        .map(str::to_string);
    match (project, item) {
        (Some(project), Some(item)) => Event::Item(Nudge {
            project,
            item,
            actor: body["activity"]["actor"]["id"].as_str().map(str::to_string),
        }),
        _ => Event::Ignore("the event names no work item and project".into()),
    }
}

impl Webhooks {
    /// The endpoint for `cfg`, when its secret is set; nudges go to `nudges`.
    #[must_use]
    pub fn new(cfg: &PlaneConfig, nudges: mpsc::Sender<Nudge>) -> Option<Webhooks> {
        let secret = cfg.webhook_secret()?;
        Some(Webhooks {
            secret,
            env: cfg.webhook_secret_env.clone(),
            path: cfg.webhook_path.clone(),
            seen: Mutex::new(HashMap::new()),
            refusal_logged: AtomicBool::new(false),
            nudges: Mutex::new(nudges),
            me: OnceLock::new(),
            received: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_accepted: Mutex::new(None),
        })
    }

    /// Whether the decoded path segments are the webhook path.
    #[must_use]
    pub fn is_path(path: &str, segments: &[String]) -> bool {
        let mut want = path.trim_matches('/').split('/');
        let mut got = segments.iter();
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }

    /// Counts for `/health`.
    #[must_use]
    pub fn status(&self) -> Value {
        let last = *self
            .last_accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        json!({
            "enabled": true,
            "path": self.path,
            "received": self.received.load(Ordering::Relaxed),
            "accepted": self.accepted.load(Ordering::Relaxed),
            "ignored": self.ignored.load(Ordering::Relaxed),
            "refused": self.refused.load(Ordering::Relaxed),
            "last_accepted_at": last,
        })
    }

    fn refuse(&self, why: &str) -> Reply {
        self.refused.fetch_add(1, Ordering::Relaxed);
        // Logged once: a wrong secret would otherwise fill the log with one line per event.
        if self.refusal_logged.swap(true, Ordering::Relaxed) {
            log::debug!("refused a webhook delivery: {why}");
        } else {
            log::warn!(
                "refused a webhook delivery to {}: {why}; put the secret Plane showed for this \
                 webhook in {} (later refusals are logged only with -v)",
                self.path,
                self.env
            );
        }
        Reply::error(401, "unauthorized", why)
    }

    fn ignore(&self, why: &str) -> Reply {
        self.ignored.fetch_add(1, Ordering::Relaxed);
        log::debug!("webhook ignored: {why}");
        Reply::json(200, json!({"status": "ignored", "reason": why}))
    }

    /// Whether `body` was seen within the replay window; remembers it.
    fn replayed(&self, body: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, at| now.duration_since(*at) < REPLAY_WINDOW);
        if seen.contains_key(&digest) {
            return true;
        }
        if seen.len() >= REPLAY_MAX {
            if let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                seen.remove(&oldest);
            }
        }
        seen.insert(digest, now);
        false
    }

    /// Answers one delivery, at once.
    pub fn handle(&self, cfg: &PlaneConfig, req: &Request<'_>) -> Reply {
        self.received.fetch_add(1, Ordering::Relaxed);
        let Some(signature) = req.header(SIGNATURE_HEADER) else {
            return self.refuse(&format!("the delivery has no {SIGNATURE_HEADER} header"));
        };
        if !verify(self.secret.as_bytes(), req.body, signature) {
            return self.refuse(&format!(
                "the {SIGNATURE_HEADER} does not match the body under the secret in {}",
                self.env
            ));
        }
        if self.replayed(req.body) {
            return self.ignore("a replay: this body was received within the last hour");
        }
        let body: Value = match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(e) => return Reply::error(400, "invalid", &format!("the body is not JSON: {e}")),
        };
        let nudge = match event(&body, req.header("X-Plane-Event")) {
            Event::Ignore(why) => return self.ignore(&why),
            Event::Item(n) => n,
        };
        if !cfg.project_ids.contains(&nudge.project) {
            return self.ignore(&format!("project {} is not watched", nudge.project));
        }
        if nudge.actor.is_some() && nudge.actor.as_ref() == self.me.get() {
            return self.ignore("the change was made with plane-orch's own key");
        }
        let sent = self
            .nudges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(nudge.clone());
        if sent.is_err() {
            return self.ignore("the poller has stopped");
        }
        self.accepted.fetch_add(1, Ordering::Relaxed);
        *self
            .last_accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(crate::ticket::now());
        log::info!(
            "webhook: work item {} of project {} changed; fetching it now",
            nudge.item,
            nudge.project
        );
        Reply::json(
            200,
            json!({"status": "accepted", "work_item": nudge.item, "project": nudge.project}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256_of_the_raw_body() {
        // RFC 4231 test case 2.
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
        assert!(verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig.to_uppercase()
        ));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &sig));
        assert!(!verify(b"jefe", b"what do ya want for nothing?", &sig));
        assert!(!verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig[..62]
        ));
        assert!(!verify(b"Jefe", b"what do ya want for nothing?", "zz"));
    }

    #[test]
    fn issue_events_of_both_shapes_name_their_item() {
        let v1 = json!({"event": "issue", "action": "updated",
            "data": {"id": "i1", "project": "p1"}, "activity": {"actor": {"id": "u1"}}});
        assert_eq!(
            event(&v1, None),
            Event::Item(Nudge {
                project: "p1".into(),
                item: "i1".into(),
                actor: Some("u1".into())
            })
        );
        let v2 = json!({"version": "v2", "event": "workitem.updated", "entity_type": "issue",
            "entity_id": "i2", "data": {"project_id": "p2"}});
        assert_eq!(
            event(&v2, None),
            Event::Item(Nudge {
                project: "p2".into(),
                item: "i2".into(),
                actor: None
            })
        );
        let comment = json!({"event": "issue_comment", "data": {"id": "c", "project": "p"}});
        assert!(matches!(event(&comment, None), Event::Ignore(_)));
        assert!(matches!(
            event(&json!({"event": "issue", "data": {}}), None),
            Event::Ignore(_)
        ));
    }

    #[test]
    fn the_webhook_path_is_matched_on_decoded_segments() {
        let segs = |s: &[&str]| s.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        assert!(Webhooks::is_path(
            "/webhooks/plane",
            &segs(&["webhooks", "plane"])
        ));
        assert!(!Webhooks::is_path("/webhooks/plane", &segs(&["webhooks"])));
        assert!(!Webhooks::is_path(
            "/webhooks/plane",
            &segs(&["webhooks", "plane", "x"])
        ));
    }
}
