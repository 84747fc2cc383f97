//! The parsed state, kept between requests: a dashboard polls every few seconds and the state
//! file rarely changes, so GETs parse it again only when the file itself changed.
//!
//! Only the open tickets (all but done) are kept decoded: they are what dashboards ask for,
//! and done tickets, most of a long-lived queue, would otherwise hold most of the server's
//! memory. Done tickets are counted and read from the file when asked for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Result;

use chrono::{DateTime, Utc};

use crate::store::{State, Store, VERSION};
use crate::ticket::Status;

/// What identifies one version of the state file: the generation every write increments,
/// read from the file's last line, and its size (an edit by hand that keeps the generation
/// almost always changes the size). `None` inside: the file has no generation line (laid out
/// by hand), so nothing can be told without reading it, and it is read every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(Option<(u64, u64)>);

fn fingerprint(store: &Store) -> Result<Option<Fingerprint>> {
    if !store.path().exists() {
        return Ok(None);
    }
    Ok(Some(Fingerprint(store.generation()?)))
}

/// The last parsed state, the file version it came from (`None`: there was no file) and
/// its generation (a number that changes whenever the cached state does).
#[derive(Debug, Default)]
pub struct StateCache {
    slot: Mutex<Option<Cached>>,
    /// Held while the file is read: concurrent first requests wait for one parse instead of
    /// each parsing the file (and each holding a copy of it) at once.
    loading: Mutex<()>,
    loads: AtomicU64,
    answers: Mutex<(u64, Answers)>,
    /// When the cached copy was last known to match the file, in nanoseconds since `epoch()`.
    verified_nanos: AtomicU64,
}

/// What /health and /metrics know of the state without waiting for it.
#[derive(Debug, Clone)]
pub struct StateView {
    /// The counts, or why the file cannot be read.
    pub summary: std::result::Result<Summary, String>,
    /// How long ago the counts were known to match the file (zero: now).
    pub age: Duration,
    /// Why the counts may be old, when they may.
    pub stale: Option<String>,
}

/// A fixed instant to count from, so an instant fits an atomic.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// One parsed version of the state file.
#[derive(Debug)]
struct Cached {
    fingerprint: Option<Fingerprint>,
    /// The open tickets; done ones are left out (see the module's comment).
    state: Arc<State>,
    generation: u64,
    summary: Summary,
}

/// What /health and /metrics need of every ticket, done ones included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Tickets per status, in `Status::ALL` order.
    pub counts: [usize; 4],
    /// Seconds from approval to completion, summed over the tickets that have both.
    pub session_seconds: f64,
    pub sessions: usize,
}

impl Summary {
    /// Tickets with `status`.
    #[must_use]
    pub fn count(&self, status: Status) -> usize {
        self.counts[status.rank()]
    }

    fn add(&mut self, status: Status, times: &Times) {
        self.counts[status.rank()] += 1;
        if let (Some(a), Some(c)) = (times.approved_at, times.completed_at) {
            #[allow(clippy::cast_precision_loss)] // milliseconds of a session fit an f64
            let secs = (c - a).num_milliseconds().max(0) as f64 / 1000.0;
            self.session_seconds += secs;
            self.sessions += 1;
        }
    }
}

/// The two fields of a done ticket the summary needs, decoded without the rest.
#[derive(Debug, Default, serde::Deserialize)]
struct Times {
    #[serde(default)]
    approved_at: Option<DateTime<Utc>>,
    #[serde(default)]
    completed_at: Option<DateTime<Utc>>,
}

/// Serialized answers by key.
type Answers = HashMap<String, Arc<Vec<u8>>>;

impl StateCache {
    /// The open tickets (done ones are left out): the cached ones while the file is unchanged,
    /// else read again (under the store's shared lock).
    ///
    /// # Errors
    /// The file cannot be read or does not parse; nothing is cached then.
    pub fn get(&self, store: &Store) -> Result<Arc<State>> {
        Ok(self.get_with_generation(store)?.0)
    }

    /// The current state and its generation.
    ///
    /// # Errors
    /// As [`StateCache::get`].
    pub fn get_with_generation(&self, store: &Store) -> Result<(Arc<State>, u64)> {
        self.current(store, |c| (Arc::clone(&c.state), c.generation))
    }

    /// Counts and session times of every ticket, made once per version of the file.
    ///
    /// # Errors
    /// As [`StateCache::get`].
    pub fn summary(&self, store: &Store) -> Result<Summary> {
        self.current(store, |c| c.summary)
    }

    /// The summary without ever waiting: read again when the file changed and nobody holds
    /// its lock, else the last one read, with how long ago it was known to be current. For
    /// /health and /metrics, which must answer even while another process holds the lock.
    #[must_use]
    pub fn summary_now(&self, store: &Store) -> StateView {
        match self.current_or_wait(store, |c| c.summary, false) {
            Ok(Some(summary)) => StateView {
                summary: Ok(summary),
                age: Duration::ZERO,
                stale: None,
            },
            Ok(None) => {
                let last = self
                    .slot
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .map(|c| c.summary);
                StateView {
                    summary: last.ok_or_else(|| {
                        "the state file has not been read yet: another process holds its lock"
                            .to_string()
                    }),
                    age: self.since_verified(),
                    stale: Some(
                        "the state file changed and is being read, or another process holds its lock"
                            .into(),
                    ),
                }
            }
            Err(e) => StateView {
                summary: Err(format!("{e:#}")),
                age: Duration::ZERO,
                stale: None,
            },
        }
    }

    /// The open tickets without ever waiting: as [`StateCache::summary_now`], the last ones
    /// read when the file is being read or locked; `None` when nothing was ever read.
    #[must_use]
    pub fn state_now(&self, store: &Store) -> Option<Arc<State>> {
        match self.current_or_wait(store, |c| Arc::clone(&c.state), false) {
            Ok(Some(state)) => Some(state),
            Ok(None) => self
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|c| Arc::clone(&c.state)),
            Err(_) => None,
        }
    }

    fn since_verified(&self) -> Duration {
        let at = Duration::from_nanos(self.verified_nanos.load(Ordering::Relaxed));
        epoch().elapsed().saturating_sub(at)
    }

    fn mark_verified(&self) {
        let nanos = u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.verified_nanos.store(nanos, Ordering::Relaxed);
    }

    /// `pick` applied to the cached version of the file, read again first when it changed.
    fn current<T>(&self, store: &Store, pick: impl Fn(&Cached) -> T) -> Result<T> {
        Ok(self
            .current_or_wait(store, pick, true)?
            .expect("a waiting read always answers"))
    }

    /// [`StateCache::current`]; with `wait` false, `None` instead of waiting for another
    /// request's read or another process's lock.
    fn current_or_wait<T>(
        &self,
        store: &Store,
        pick: impl Fn(&Cached) -> T,
        wait: bool,
    ) -> Result<Option<T>> {
        let cached = |fp: &Option<Fingerprint>| {
            let slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.as_ref()
                .filter(|c| &c.fingerprint == fp && fp.is_none_or(|f| f.0.is_some()))
                .map(&pick)
        };
        // Taken before reading: if the file changes in between, the newer state is cached
        // under the older fingerprint and the next call reads it again. Never the reverse.
        let fp = fingerprint(store)?;
        if let Some(hit) = cached(&fp) {
            self.mark_verified();
            return Ok(Some(hit));
        }
        let _one = if wait {
            self.loading.lock().unwrap_or_else(PoisonError::into_inner)
        } else {
            match self.loading.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
            }
        };
        // Another request may have read this version while we waited.
        let fp = fingerprint(store)?;
        if let Some(hit) = cached(&fp) {
            self.mark_verified();
            return Ok(Some(hit));
        }
        let mut summary = Summary::default();
        let count = |summary: &mut Summary, status, raw: &[u8]| {
            summary.add(status, &serde_json::from_slice(raw).unwrap_or_default());
            Ok(())
        };
        let open = if wait {
            store.load_where_with(
                |s| s != Status::Done,
                |st, raw| count(&mut summary, st, raw),
            )?
        } else {
            match store.try_load_where_with(
                |s| s != Status::Done,
                |st, raw| count(&mut summary, st, raw),
            )? {
                Some(open) => open,
                None => return Ok(None),
            }
        };
        let mut state = State {
            version: VERSION,
            ..State::default()
        };
        for mut t in open {
            // Decoded lists grow by doubling; the cache keeps them for as long as the file.
            t.events.shrink_to_fit();
            t.labels.shrink_to_fit();
            summary.add(
                t.status,
                &Times {
                    approved_at: t.approved_at,
                    completed_at: t.completed_at,
                },
            );
            state.tickets.insert(t.id.clone(), t);
        }
        // Done tickets are in the archive: counted from the state file's list of them.
        let (archived, totals) = store.archived_summary()?;
        summary.counts[Status::Done.rank()] += archived;
        #[allow(clippy::cast_possible_truncation)] // a count of tickets fits a usize
        {
            summary.sessions += totals.sessions as usize;
        }
        summary.session_seconds += totals.session_seconds;
        let generation = self.loads.fetch_add(1, Ordering::Relaxed) + 1;
        let entry = Cached {
            fingerprint: fp,
            state: Arc::new(state),
            generation,
            summary,
        };
        let out = pick(&entry);
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(entry);
        self.mark_verified();
        Ok(Some(out))
    }

    /// A serialized answer made from the state of `generation`, made by `make` the first
    /// time `key` is asked for in that generation. Answers of older generations are dropped.
    ///
    /// # Errors
    /// Whatever `make` returns; nothing is cached then.
    pub fn answer(
        &self,
        generation: u64,
        key: &str,
        make: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Arc<Vec<u8>>> {
        {
            let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
            if answers.0 == generation {
                if let Some(bytes) = answers.1.get(key) {
                    return Ok(Arc::clone(bytes));
                }
            }
        }
        let bytes = Arc::new(make()?);
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.0 != generation {
            // A newer generation wins; an older one (a slow request) is not cached.
            if answers.0 > generation {
                return Ok(bytes);
            }
            *answers = (generation, HashMap::new());
        }
        answers.1.insert(key.to_string(), Arc::clone(&bytes));
        Ok(bytes)
    }

    /// How many times the state file was read and parsed.
    #[must_use]
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{now, NewTicket, Ticket, TicketId};

    fn add(store: &Store, id: &str) {
        store
            .update(|s| {
                let t = Ticket::new(NewTicket::manual(TicketId::parse(id).unwrap(), "t"), now());
                s.tickets.insert(t.id.clone(), t);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn an_unchanged_file_is_parsed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        let cache = StateCache::default();
        assert!(cache.get(&store).unwrap().tickets.is_empty());
        add(&store, "A-1");
        assert_eq!(cache.get(&store).unwrap().tickets.len(), 1);
        let loads = cache.loads();
        for _ in 0..5 {
            assert_eq!(cache.get(&store).unwrap().tickets.len(), 1);
        }
        assert_eq!(cache.loads(), loads);
        add(&store, "A-2");
        assert_eq!(cache.get(&store).unwrap().tickets.len(), 2);
        assert_eq!(cache.loads(), loads + 1);
    }

    #[test]
    fn answers_are_made_once_per_generation_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        let cache = StateCache::default();
        add(&store, "A-1");
        let (_, g1) = cache.get_with_generation(&store).unwrap();
        let made = std::cell::Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            Ok(b"[]".to_vec())
        };
        cache.answer(g1, "list", make).unwrap();
        cache.answer(g1, "list", make).unwrap();
        cache.answer(g1, "other", make).unwrap();
        assert_eq!(made.get(), 2);
        add(&store, "A-2");
        let (_, g2) = cache.get_with_generation(&store).unwrap();
        assert_ne!(g1, g2);
        cache.answer(g2, "list", make).unwrap();
        assert_eq!(made.get(), 3);
        assert!(cache.answer(g1, "list", || anyhow::bail!("x")).is_err());
    }

    #[test]
    fn a_damaged_file_is_an_error_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        let cache = StateCache::default();
        add(&store, "A-1");
        cache.get(&store).unwrap();
        std::fs::write(store.path(), "{oops").unwrap();
        assert!(cache.get(&store).is_err());
        assert!(cache.get(&store).is_err());
    }
}
