//! Which sessions run, and whether the session backend answers, kept fresh by a thread of
//! its own. Requests read the last answer and never wait for tmux or the session service:
//! a backend that hangs makes the answer old (and says so in /health), never the request slow.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::Config;

/// How often the background thread asks the backend.
pub const REFRESH: Duration = Duration::from_secs(2);

/// The last answer of the backend.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The names of the sessions running; `None` when the backend could not be asked.
    pub live: Option<Arc<HashSet<String>>>,
    /// Whether the backend answered its health check; `None` before the first check.
    pub available: Option<bool>,
    /// Why the backend could not be asked, when it could not.
    pub error: Option<String>,
    /// When the last check finished.
    pub checked_at: Option<Instant>,
}

impl Snapshot {
    /// Seconds since the last check finished.
    #[must_use]
    pub fn age(&self) -> Option<Duration> {
        self.checked_at.map(|at| at.elapsed())
    }
}

/// The shared last answer. The lock is only held to copy or replace it, never across a call.
#[derive(Debug, Default)]
pub struct Liveness {
    last: Mutex<Snapshot>,
}

impl Liveness {
    /// The last answer, at once.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks the backend now (each call has its own deadline) and keeps the answer.
    pub fn refresh(&self, config: &Config) -> Snapshot {
        let probe = crate::session::probe(config);
        let live = match &probe {
            Ok(_) => crate::session::live_sessions(config),
            Err(_) => Err(anyhow::anyhow!("the session backend is not available")),
        };
        let error = match (&probe, &live) {
            (Err(e), _) | (Ok(_), Err(e)) => {
                log::debug!("session liveness unknown: {e:#}");
                Some(format!("{e:#}"))
            }
            _ => None,
        };
        let snapshot = Snapshot {
            live: live.ok().map(Arc::new),
            available: Some(probe.is_ok()),
            error,
            checked_at: Some(Instant::now()),
        };
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = snapshot.clone();
        snapshot
    }
}
