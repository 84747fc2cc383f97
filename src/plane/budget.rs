//! One rate budget for every plane-orch process that uses a key.
//!
//! Plane counts requests per API key in a sliding window (60 a minute by default) and answers
//! 429 past it. cron's poll, `serve`, the HTTP API and each person's commands all use the same
//! key, so they share one ledger: a small file beside the state file, changed only under an
//! exclusive lock, holding the times of the requests sent in the last window. A request is
//! sent at once while the ledger has room; only when it is full does a process wait, for the
//! oldest entry to leave the window, and it says so.
//!
//! An entry is written when a request leaves and moved to when its answer came: Plane counted
//! the request somewhere in between, so the entry leaves the window no earlier than Plane's
//! does. A 429 (someone else used the key, or Plane's limit is lower) blocks every process
//! until its `Retry-After`; a lower `X-RateLimit-Remaining` than the ledger expects fills the
//! ledger up to what Plane says.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::PlaneConfig;

/// Overrides the length of the window, in milliseconds (Plane's is a minute).
pub const WINDOW_ENV: &str = "PLANE_ORCH_RATE_WINDOW_MS";
const MINUTE: Duration = Duration::from_secs(60);
/// Entries that stand for requests Plane counted but this ledger did not see.
const OUTSIDE: &str = "plane";

/// The ledger as stored.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ledger {
    /// The requests in the window, oldest first.
    #[serde(default)]
    sent: Vec<Entry>,
    /// Epoch milliseconds before which nothing is sent: Plane answered 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked_until: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// Epoch milliseconds: when the request left, then when its answer came.
    at: u64,
    /// Which request (process and counter), so its answer moves the right entry.
    id: String,
}

/// A place in the budget, taken before a request is sent.
#[derive(Debug)]
pub struct Slot {
    id: String,
}

/// The budget is spent and the wait would pass the caller's deadline.
#[derive(Debug, Clone, Copy)]
pub struct Spent {
    /// How long until a request could go.
    pub wait: Duration,
}

/// How the budget stands, for `/health` and `doctor`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub limit_per_minute: u32,
    /// Requests in the last window, by every process sharing the ledger.
    pub used: usize,
    /// Seconds until the next request may go (0: it may go now).
    pub wait_secs: f64,
    /// Whether this process is waiting for the budget now.
    pub waiting: bool,
}

/// The shared budget of one key.
#[derive(Debug, Clone)]
pub struct Budget {
    path: PathBuf,
    limit: usize,
    window: Duration,
    /// Whether requests are written down; `false` only reads the ledger (`doctor`, which
    /// must leave no file behind, still waits for a spent budget).
    record: bool,
    /// Whether writing may create the ledger; `false` writes only into an existing one (a
    /// dry run, which creates no file but still spends the key's budget).
    create: bool,
}

/// When this process is waiting for the budget, until when (for `/health`).
static WAITING: Mutex<Option<Instant>> = Mutex::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Budget {
    /// The budget of `plane.rate_limit_per_minute` requests a window, kept in `plane.rate_file`.
    #[must_use]
    pub fn new(cfg: &PlaneConfig) -> Budget {
        let window = std::env::var(WINDOW_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&v| v > 0)
            .map_or(MINUTE, Duration::from_millis);
        Budget {
            path: cfg.rate_file.clone(),
            limit: usize::try_from(cfg.rate_limit_per_minute.max(1)).unwrap_or(60),
            window,
            record: true,
            create: true,
        }
    }

    /// The same budget, read but never written.
    #[must_use]
    pub fn read_only(mut self) -> Budget {
        self.record = false;
        self
    }

    /// The same budget, written only when its ledger exists already.
    #[must_use]
    pub fn never_creating(mut self) -> Budget {
        self.create = false;
        self
    }

    /// The ledger's file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes a place for one request: at once while the budget has room, else after waiting
    /// for it (said on stderr). When the wait would end after `deadline`, nothing is taken and
    /// the wait is returned instead. A ledger that cannot be used (an unwritable folder) never
    /// stops a request: Plane's own limit still holds, and 429s are still waited out.
    ///
    /// # Errors
    /// [`Spent`] when the budget frees up only after `deadline`.
    pub fn take(&self, deadline: Option<Instant>) -> Result<Slot, Spent> {
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let mut announced = false;
        loop {
            let wait = self.with_ledger(self.record, |ledger, now| {
                let wait = self.wait_in(ledger, now);
                if wait.is_zero() {
                    ledger.sent.push(Entry {
                        at: now,
                        id: id.clone(),
                    });
                }
                wait
            });
            let wait = match wait {
                Ok(w) => w,
                Err(e) => {
                    log::debug!(
                        "the rate budget in {} cannot be used ({e}): sending without it",
                        self.path.display()
                    );
                    Duration::ZERO
                }
            };
            if wait.is_zero() {
                if announced {
                    set_waiting(None);
                }
                return Ok(Slot { id });
            }
            if deadline.is_some_and(|d| Instant::now() + wait > d) {
                if announced {
                    set_waiting(None);
                }
                return Err(Spent { wait });
            }
            if !announced {
                log::warn!(
                    "Plane's rate budget is spent ({} requests in {} s for this key, shared by \
                     every plane-orch using {}): waiting {:.1} s before the next request",
                    self.limit,
                    self.window.as_secs_f64(),
                    self.path.display(),
                    wait.as_secs_f64()
                );
                announced = true;
            }
            set_waiting(Some(Instant::now() + wait));
            std::thread::sleep(wait);
        }
    }

    /// Records the answer to the request of `slot`: its entry moves to now; Plane's
    /// `X-RateLimit-Remaining` fills the ledger up when Plane counted more than it holds; a
    /// 429's `Retry-After` blocks every process until then.
    pub fn settle(&self, slot: Slot, remaining: Option<u64>, retry_after: Option<Duration>) {
        if !self.record {
            return;
        }
        let result = self.with_ledger(true, |ledger, now| {
            match ledger.sent.iter_mut().find(|e| e.id == slot.id) {
                Some(e) => e.at = now,
                None => ledger.sent.push(Entry {
                    at: now,
                    id: slot.id.clone(),
                }),
            }
            if let Some(left) = remaining.and_then(|r| usize::try_from(r).ok()) {
                let room = self.limit.saturating_sub(ledger.sent.len());
                for _ in left..room {
                    ledger.sent.push(Entry {
                        at: now,
                        id: OUTSIDE.into(),
                    });
                }
            }
            if let Some(after) = retry_after {
                let until = now.saturating_add(ms(after));
                ledger.blocked_until = Some(ledger.blocked_until.unwrap_or(0).max(until));
            }
        });
        if let Err(e) = result {
            log::debug!(
                "cannot record a request in the rate budget {}: {e}",
                self.path.display()
            );
        }
    }

    /// [`Budget::usage`] when `read`; else the limit with nothing used, reading no file.
    #[must_use]
    pub fn usage_if(&self, read: bool) -> Usage {
        if read {
            return self.usage();
        }
        Usage {
            limit_per_minute: u32::try_from(self.limit).unwrap_or(u32::MAX),
            used: 0,
            wait_secs: 0.0,
            waiting: false,
        }
    }

    /// How the budget stands now. Reading takes the lock too, so it sees whole ledgers.
    #[must_use]
    pub fn usage(&self) -> Usage {
        let (used, wait) = self
            .with_ledger(false, |ledger, now| {
                (ledger.sent.len(), self.wait_in(ledger, now))
            })
            .unwrap_or((0, Duration::ZERO));
        let waiting = WAITING
            .lock()
            .map(|w| w.is_some_and(|until| until > Instant::now()))
            .unwrap_or(false);
        Usage {
            limit_per_minute: u32::try_from(self.limit).unwrap_or(u32::MAX),
            used,
            wait_secs: (wait.as_secs_f64() * 10.0).round() / 10.0,
            waiting,
        }
    }

    /// How long until a request may go, with the entries out of the window dropped.
    fn wait_in(&self, ledger: &mut Ledger, now: u64) -> Duration {
        let window = ms(self.window);
        ledger.sent.retain(|e| e.at.saturating_add(window) > now);
        ledger.sent.sort_by_key(|e| e.at);
        if let Some(until) = ledger.blocked_until {
            if until > now {
                return Duration::from_millis(until - now);
            }
            ledger.blocked_until = None;
        }
        if ledger.sent.len() < self.limit {
            return Duration::ZERO;
        }
        // The entry whose leaving makes room.
        let freeing = &ledger.sent[ledger.sent.len() - self.limit];
        Duration::from_millis(freeing.at.saturating_add(window).saturating_sub(now) + 1)
    }

    /// Runs `f` on the ledger under the exclusive lock and, with `write`, writes it back.
    /// Reading only never creates the file.
    fn with_ledger<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut Ledger, u64) -> T,
    ) -> std::io::Result<T> {
        let create = write && self.create;
        if create {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let opened = OpenOptions::new()
            .read(true)
            .write(write)
            .create(create)
            .truncate(false)
            .open(&self.path);
        let mut file = match opened {
            Ok(f) => f,
            Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(f(&mut Ledger::default(), epoch_ms()));
            }
            Err(e) => return Err(e),
        };
        fs2::FileExt::lock_exclusive(&file)?;
        let result = (|| {
            let mut ledger = read(&mut file);
            let out = f(&mut ledger, epoch_ms());
            if write {
                let bytes = serde_json::to_vec(&ledger).map_err(std::io::Error::other)?;
                file.seek(SeekFrom::Start(0))?;
                file.set_len(0)?;
                file.write_all(&bytes)?;
            }
            Ok(out)
        })();
        let _ = fs2::FileExt::unlock(&file);
        result
    }
}

/// The ledger in `file`; a damaged one (a crash mid-write) starts over empty, which at worst
/// lets a few requests too many meet Plane's own limit.
fn read(file: &mut File) -> Ledger {
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() || bytes.is_empty() {
        return Ledger::default();
    }
    serde_json::from_slice(&bytes).unwrap_or_default()
}

fn set_waiting(until: Option<Instant>) {
    if let Ok(mut w) = WAITING.lock() {
        *w = until;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(dir: &Path, limit: usize, window_ms: u64) -> Budget {
        Budget {
            path: dir.join("state.json.plane-rate"),
            limit,
            window: Duration::from_millis(window_ms),
            record: true,
            create: true,
        }
    }

    #[test]
    fn requests_go_at_once_until_the_budget_is_spent() {
        let dir = tempfile::tempdir().unwrap();
        let b = budget(dir.path(), 3, 60_000);
        let started = Instant::now();
        for _ in 0..3 {
            let slot = b.take(None).unwrap();
            b.settle(slot, None, None);
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(b.usage().used, 3);
        let spent = b.take(Some(Instant::now() + Duration::from_secs(1)));
        let wait = spent.unwrap_err().wait;
        assert!(wait > Duration::from_secs(58), "{wait:?}");
        // A second handle on the same file sees the same budget.
        let other = budget(dir.path(), 3, 60_000);
        assert!(other.take(Some(Instant::now())).is_err());
    }

    #[test]
    fn a_spent_budget_frees_up_as_the_window_slides() {
        let dir = tempfile::tempdir().unwrap();
        let b = budget(dir.path(), 2, 300);
        // The window slides from the first request: on a loaded machine the first two may
        // themselves take much of it, so the third's wait is measured from the first.
        let first = Instant::now();
        for _ in 0..2 {
            let slot = b.take(None).unwrap();
            b.settle(slot, None, None);
        }
        let started = Instant::now();
        let slot = b.take(None).unwrap();
        b.settle(slot, None, None);
        let since_first = first.elapsed();
        assert!(since_first >= Duration::from_millis(290), "{since_first:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{since_first:?}"
        );
    }

    #[test]
    fn plane_s_remaining_and_retry_after_are_believed() {
        let dir = tempfile::tempdir().unwrap();
        let b = budget(dir.path(), 60, 60_000);
        let slot = b.take(None).unwrap();
        // Plane counted 50 requests this ledger never saw.
        b.settle(slot, Some(9), None);
        assert_eq!(b.usage().used, 51);
        let slot = b.take(None).unwrap();
        b.settle(slot, None, Some(Duration::from_secs(30)));
        let u = b.usage();
        assert!(u.wait_secs > 29.0 && u.wait_secs <= 30.0, "{u:?}");
    }

    #[test]
    fn a_damaged_ledger_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let b = budget(dir.path(), 1, 60_000);
        std::fs::write(b.path(), b"{not json").unwrap();
        let slot = b.take(Some(Instant::now())).unwrap();
        b.settle(slot, None, None);
        assert_eq!(b.usage().used, 1);
    }
}
