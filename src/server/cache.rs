//! The parsed state, kept between requests: a dashboard polls every few seconds and the state
//! file rarely changes, so GETs parse it again only when the file itself changed.
//!
//! Only the open tickets (all but done) are kept decoded: they are what dashboards ask for,
//! and done tickets, most of a long-lived queue, would otherwise hold most of the server's
//! memory. Done tickets are counted and read from the file when asked for.
//!
//! A write to one ticket costs a read about one ticket's worth of work: the file is read a
//! line at a time (never held whole), each ticket's bytes hashed, and only tickets whose bytes
//! changed are decoded.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use chrono::{DateTime, Utc};

use crate::store::{Scanned, Since, Store};
use crate::ticket::{Status, Ticket, TicketId};

/// What identifies one version of the state file: the generation every write increments,
/// read from the file's last line, and its size (an edit by hand that keeps the generation
/// almost always changes the size). `None` inside: the file has no generation line (laid out
/// by hand), so nothing can be told without reading it, and it is read every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(Option<crate::store::Version>);

fn fingerprint(store: &Store) -> Result<Option<Fingerprint>> {
    Ok(store.look()?.map(Fingerprint))
}

/// The last parsed state, the file version it came from (`None`: there was no file) and
/// its generation (a number that changes whenever the cached state does).
///
/// A new version of the file is read a ticket at a time, and only the tickets whose bytes
/// changed are decoded: the others are shared with the previous version. The new version is
/// built aside and published by swapping one pointer, so requests keep reading the previous
/// one while it is built; only those that need the new one wait for it.
#[derive(Debug, Default)]
pub struct StateCache {
    /// The version last read. Held only to copy or replace the pointer.
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held while the file is read: concurrent requests for a new version wait for one read
    /// instead of each reading the file at once.
    loading: Mutex<()>,
    loads: AtomicU64,
    decodes: AtomicU64,
    /// Reads of the journal alone (see [`Store::scan_since`]).
    journal_reads: AtomicU64,
    /// Hashes each ticket's bytes; keyed at random, so no ticket text can be made to look
    /// unchanged after a change.
    hasher: RandomState,
    answers: Mutex<(u64, Answers)>,
    /// When the cached copy was last known to match the file, in nanoseconds since `epoch()`.
    verified_nanos: AtomicU64,
}

/// The open tickets (all but done) of one version of the state file.
#[derive(Debug, Default)]
pub struct OpenTickets {
    pub tickets: BTreeMap<TicketId, Arc<Ticket>>,
    /// The tickets with an operation under way, found on first use.
    with_op: OnceLock<Vec<Arc<Ticket>>>,
}

impl OpenTickets {
    /// The tickets with an operation recorded (`op`), found once per version: /health asks
    /// for them on every request, and most versions have none.
    #[must_use]
    pub fn with_op(&self) -> &[Arc<Ticket>] {
        self.with_op.get_or_init(|| {
            self.tickets
                .values()
                .filter(|t| t.op.is_some())
                .cloned()
                .collect()
        })
    }
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
struct Snapshot {
    fingerprint: Option<Fingerprint>,
    /// The open tickets; done ones are left out (see the module's comment).
    open: Arc<OpenTickets>,
    generation: u64,
    summary: Summary,
    /// Every ticket of the file, done ones too, as the next read compares them.
    known: HashMap<Box<str>, Known>,
    /// What the read said of the archive, and where it got to.
    scanned: Scanned,
}

/// One ticket as last read: what its bytes hashed to, and what was decoded from them. One
/// is kept for every ticket of the file, so it is kept small (32 bytes).
#[derive(Debug, Clone)]
struct Known {
    hash: u64,
    /// Its session's length in seconds, when it has both ends; NaN when it has not.
    session_secs: f64,
    /// The ticket itself, when it is open.
    ticket: Option<Arc<Ticket>>,
    /// Its bytes' length (a ticket line is far below 4 GiB).
    len: u32,
    status: Status,
}

const _: () = assert!(std::mem::size_of::<Known>() == 32);

impl Known {
    fn session(&self) -> Option<f64> {
        (!self.session_secs.is_nan()).then_some(self.session_secs)
    }

    /// Whether `raw`, of `status` and hashing to `hash`, is the ticket as it was read.
    fn is(&self, hash: u64, raw: &[u8], status: Status) -> bool {
        self.hash == hash && self.len as usize == raw.len() && self.status == status
    }
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

    fn add(&mut self, known: &Known) {
        self.counts[known.status.rank()] += 1;
        if let Some(secs) = known.session() {
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

impl Times {
    fn session(&self) -> Option<f64> {
        let (a, c) = (self.approved_at?, self.completed_at?);
        #[allow(clippy::cast_precision_loss)] // milliseconds of a session fit an f64
        Some((c - a).num_milliseconds().max(0) as f64 / 1000.0)
    }
}

/// Serialized answers by key, each made once (its lock is held while it is made).
type Answers = HashMap<String, Arc<Mutex<Option<Arc<Vec<u8>>>>>>;

impl StateCache {
    /// The open tickets (done ones are left out): the cached ones while the file is unchanged,
    /// else read again (a ticket at a time, decoding only the tickets that changed).
    ///
    /// # Errors
    /// The file cannot be read or does not parse; nothing is cached then.
    pub fn get(&self, store: &Store) -> Result<Arc<OpenTickets>> {
        Ok(self.get_with_generation(store)?.0)
    }

    /// The current state and its generation.
    ///
    /// # Errors
    /// As [`StateCache::get`].
    pub fn get_with_generation(&self, store: &Store) -> Result<(Arc<OpenTickets>, u64)> {
        self.current(store, |c| (Arc::clone(&c.open), c.generation))
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
            Ok(None) => StateView {
                summary: self.last().map(|c| c.summary).ok_or_else(|| {
                    "the state file has not been read yet: another process holds its lock"
                        .to_string()
                }),
                age: self.since_verified(),
                stale: Some(
                    "the state file changed and is being read, or another process holds its lock"
                        .into(),
                ),
            },
            Err(e) => StateView {
                summary: Err(format!("{e:#}")),
                age: Duration::ZERO,
                stale: None,
            },
        }
    }

    /// [`StateCache::summary_now`] and [`StateCache::state_now`] from one look at the file.
    #[must_use]
    pub fn summary_and_state_now(&self, store: &Store) -> (StateView, Option<Arc<OpenTickets>>) {
        match self.current_or_wait(store, |c| (c.summary, Arc::clone(&c.open)), false) {
            Ok(Some((summary, open))) => (
                StateView {
                    summary: Ok(summary),
                    age: Duration::ZERO,
                    stale: None,
                },
                Some(open),
            ),
            // Not readable now: what the two answer apart (the last version read, or why not).
            _ => (self.summary_now(store), self.state_now(store)),
        }
    }

    /// The open tickets without ever waiting: as [`StateCache::summary_now`], the last ones
    /// read when the file is being read or locked; `None` when nothing was ever read.
    #[must_use]
    pub fn state_now(&self, store: &Store) -> Option<Arc<OpenTickets>> {
        match self.current_or_wait(store, |c| Arc::clone(&c.open), false) {
            Ok(Some(state)) => Some(state),
            Ok(None) => self.last().map(|c| Arc::clone(&c.open)),
            Err(_) => None,
        }
    }

    /// The version last read, whatever the file holds now.
    fn last(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
    fn current<T>(&self, store: &Store, pick: impl Fn(&Snapshot) -> T) -> Result<T> {
        Ok(self
            .current_or_wait(store, pick, true)?
            .expect("a waiting read always answers"))
    }

    /// [`StateCache::current`]; with `wait` false, `None` instead of waiting for another
    /// request's read or another process's lock.
    fn current_or_wait<T>(
        &self,
        store: &Store,
        pick: impl Fn(&Snapshot) -> T,
        wait: bool,
    ) -> Result<Option<T>> {
        let cached = |fp: &Option<Fingerprint>| {
            self.last()
                .filter(|c| &c.fingerprint == fp && fp.is_none_or(|f| f.0.is_some()))
                .map(|c| pick(&c))
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
        let Some(fresh) = self.read(store, self.last().as_deref(), fp, wait)? else {
            return Ok(None);
        };
        let out = pick(&fresh);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(fresh));
        self.mark_verified();
        Ok(Some(out))
    }

    /// The file read again, decoding only the tickets whose bytes differ from `before`'s;
    /// `None` when not waiting and another process holds the lock. A waiting read does not
    /// wait for a writer's lock either: it reads the version the writer replaces, whole, and
    /// the next request reads the writer's once the fingerprint shows it.
    fn read(
        &self,
        store: &Store,
        before: Option<&Snapshot>,
        fingerprint: Option<Fingerprint>,
        wait: bool,
    ) -> Result<Option<Snapshot>> {
        let (started, decoded) = (Instant::now(), self.decodes());
        // Only the journal grew (a change to one ticket): only what it gained is read.
        if let Some((before, mark)) = before.and_then(|b| Some((b, b.scanned.mark?))) {
            let mut known = before.known.clone();
            let since = store.scan_since(&mark, wait, |id, status, raw| {
                let hash = self.hasher.hash_one(raw);
                let same = known.get(id).is_some_and(|k| k.is(hash, raw, status));
                if !same {
                    let entry = self.decode(store, id, status, raw, hash)?;
                    known.insert(Box::from(id), entry);
                }
                Ok(())
            })?;
            match since {
                None => return Ok(None),
                Some(Since::Appended(mark)) => {
                    self.journal_reads.fetch_add(1, Ordering::Relaxed);
                    let scanned = Scanned {
                        mark: Some(mark),
                        ..before.scanned
                    };
                    log::debug!(
                        "read the state journal again in {:.1} ms: {} tickets changed",
                        started.elapsed().as_secs_f64() * 1000.0,
                        self.decodes() - decoded
                    );
                    return Ok(Some(self.snapshot(fingerprint, known, scanned)));
                }
                Some(Since::Whole) => {}
            }
        }
        let mut known = HashMap::with_capacity(before.map_or(0, |b| b.known.len()));
        let scanned = store.scan_raw(wait, |item| {
            let Some((id, status, raw)) = item else {
                // Handed on again from the start.
                known.clear();
                return Ok(());
            };
            let hash = self.hasher.hash_one(raw);
            let entry = match before.and_then(|b| b.known.get(id)) {
                Some(k) if k.is(hash, raw, status) => k.clone(),
                _ => self.decode(store, id, status, raw, hash)?,
            };
            known.insert(Box::from(id), entry);
            Ok(())
        })?;
        let Some(scanned) = scanned else {
            return Ok(None);
        };
        log::debug!(
            "read the state file again in {:.1} ms: {} of {} tickets changed",
            started.elapsed().as_secs_f64() * 1000.0,
            self.decodes() - decoded,
            known.len()
        );
        Ok(Some(self.snapshot(fingerprint, known, scanned)))
    }

    /// A new version from every ticket of the file and what the scan said of the rest.
    fn snapshot(
        &self,
        fingerprint: Option<Fingerprint>,
        known: HashMap<Box<str>, Known>,
        scanned: Scanned,
    ) -> Snapshot {
        let mut summary = Summary::default();
        for entry in known.values() {
            summary.add(entry);
        }
        // Done tickets are in the archive: counted from the state file's list of them.
        summary.counts[Status::Done.rank()] += scanned.archived;
        #[allow(clippy::cast_possible_truncation)] // a count of tickets fits a usize
        {
            summary.sessions += scanned.totals.sessions as usize;
        }
        summary.session_seconds += scanned.totals.session_seconds;
        let tickets = known
            .values()
            .filter_map(|k| k.ticket.as_ref())
            .map(|t| (t.id.clone(), Arc::clone(t)))
            .collect();
        Snapshot {
            fingerprint,
            open: Arc::new(OpenTickets {
                tickets,
                with_op: OnceLock::new(),
            }),
            generation: self.loads.fetch_add(1, Ordering::Relaxed) + 1,
            summary,
            known,
            scanned,
        }
    }

    /// A ticket whose bytes are new: decoded whole when open, only its times when done.
    fn decode(
        &self,
        store: &Store,
        id: &str,
        status: Status,
        raw: &[u8],
        hash: u64,
    ) -> Result<Known> {
        self.decodes.fetch_add(1, Ordering::Relaxed);
        let (session, ticket) = if status == Status::Done {
            // A done ticket's other fields are not shown from here: only what counts it.
            let times: Times = serde_json::from_slice(raw).unwrap_or_default();
            (times.session(), None)
        } else {
            let mut t: Ticket = serde_json::from_slice(raw).with_context(|| {
                format!(
                    "the state file {} is damaged: the ticket {id} does not decode; it was left \
                     unchanged. Fix it by hand, or restore the previous good state from {}",
                    store.path().display(),
                    store.backup_path().display()
                )
            })?;
            // Decoded lists grow by doubling; the cache keeps them for as long as the file.
            t.events.shrink_to_fit();
            t.labels.shrink_to_fit();
            let times = Times {
                approved_at: t.approved_at,
                completed_at: t.completed_at,
            };
            (times.session(), Some(Arc::new(t)))
        };
        Ok(Known {
            hash,
            session_secs: session.unwrap_or(f64::NAN),
            ticket,
            len: u32::try_from(raw.len()).unwrap_or(u32::MAX),
            status,
        })
    }

    /// A serialized answer made from the state of `generation`, made by `make` the first
    /// time `key` is asked for in that generation. Answers of older generations are dropped.
    /// Requests asking at once for an answer not made yet wait for the one that makes it,
    /// rather than each making a copy.
    ///
    /// # Errors
    /// Whatever `make` returns; nothing is cached then (the next request tries again).
    pub fn answer(
        &self,
        generation: u64,
        key: &str,
        make: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Arc<Vec<u8>>> {
        self.answer_shared(generation, key, || make().map(Arc::new))
    }

    /// [`StateCache::answer`] for a maker that keeps the bytes it makes itself too.
    ///
    /// # Errors
    /// Whatever `make` returns.
    pub fn answer_shared(
        &self,
        generation: u64,
        key: &str,
        make: impl FnOnce() -> Result<Arc<Vec<u8>>>,
    ) -> Result<Arc<Vec<u8>>> {
        let slot = {
            let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
            if answers.0 < generation {
                *answers = (generation, HashMap::new());
            }
            if answers.0 > generation {
                // A newer generation wins; an older one (a slow request) is not cached.
                None
            } else {
                Some(Arc::clone(answers.1.entry(key.to_string()).or_default()))
            }
        };
        let Some(slot) = slot else {
            return make();
        };
        let mut made = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bytes) = &*made {
            return Ok(Arc::clone(bytes));
        }
        let bytes = make()?;
        *made = Some(Arc::clone(&bytes));
        Ok(bytes)
    }

    /// The open tickets and their generation when the file is still the version last read;
    /// `None` otherwise. Never reads the file nor waits: a request answered on the network
    /// thread asks this, and goes to a worker when it gets `None`.
    #[must_use]
    pub fn get_if_current(&self, store: &Store) -> Option<(Arc<OpenTickets>, u64)> {
        let fp = fingerprint(store).ok()?;
        let last = self.last()?;
        if last.fingerprint != fp || fp.is_some_and(|f| f.0.is_none()) {
            return None;
        }
        self.mark_verified();
        Some((Arc::clone(&last.open), last.generation))
    }

    /// The answer made for `key` from the state of `generation`, when it was made already;
    /// never makes it, never waits for the request making it.
    #[must_use]
    pub fn answer_if_made(&self, generation: u64, key: &str) -> Option<Arc<Vec<u8>>> {
        let slot = {
            let answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
            if answers.0 != generation {
                return None;
            }
            Arc::clone(answers.1.get(key)?)
        };
        let made = slot.try_lock().ok()?;
        made.clone()
    }

    /// How many times the state file was read and parsed.
    #[must_use]
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// How many tickets were decoded, over every read: a read decodes only what changed.
    #[must_use]
    pub fn decodes(&self) -> u64 {
        self.decodes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{now, NewTicket, Ticket, TicketId};

    /// A store in a folder of its own holding `ids`, and a cache that has read nothing.
    fn fresh(ids: &[&str]) -> (tempfile::TempDir, Store, StateCache) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        for id in ids {
            add(&store, id);
        }
        (dir, store, StateCache::default())
    }

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
        let (_dir, store, cache) = fresh(&[]);
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
        let (_dir, store, cache) = fresh(&["A-1"]);
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
    fn requests_asking_at_once_wait_for_one_answer() {
        let cache = Arc::new(StateCache::default());
        let made = Arc::new(AtomicU64::new(0));
        let askers: Vec<_> = (0..8)
            .map(|_| {
                let (cache, made) = (Arc::clone(&cache), Arc::clone(&made));
                std::thread::spawn(move || {
                    cache
                        .answer(1, "list", || {
                            made.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            Ok(b"[1]".to_vec())
                        })
                        .unwrap()
                })
            })
            .collect();
        for a in askers {
            assert_eq!(a.join().unwrap().as_slice(), b"[1]");
        }
        assert_eq!(made.load(Ordering::SeqCst), 1);
        // A failed making is not kept: the next asker makes it.
        assert!(cache.answer(1, "other", || anyhow::bail!("no")).is_err());
        assert_eq!(
            cache
                .answer(1, "other", || Ok(b"x".to_vec()))
                .unwrap()
                .as_slice(),
            b"x"
        );
    }

    fn retitle(store: &Store, id: &str, title: &str) {
        store
            .update(|s| {
                s.tickets
                    .get_mut(&TicketId::parse(id).unwrap())
                    .unwrap()
                    .title = title.into();
                Ok(())
            })
            .unwrap();
    }

    fn title(cache: &StateCache, store: &Store, id: &str) -> String {
        let open = cache.get(store).unwrap();
        open.tickets[&TicketId::parse(id).unwrap()].title.clone()
    }

    #[test]
    fn a_change_to_one_ticket_is_seen_and_only_it_is_decoded() {
        let (_dir, store, cache) = fresh(&[]);
        store
            .update(|s| {
                for i in 0..50 {
                    let id = TicketId::parse(&format!("A-{i}")).unwrap();
                    let t = Ticket::new(NewTicket::manual(id.clone(), "t"), now());
                    s.tickets.insert(id, t);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(cache.get(&store).unwrap().tickets.len(), 50);
        assert_eq!(cache.decodes(), 50);
        let before = cache.get(&store).unwrap();
        retitle(&store, "A-7", "changed");
        assert_eq!(title(&cache, &store, "A-7"), "changed");
        assert_eq!(
            cache.decodes(),
            51,
            "only the changed ticket is decoded again"
        );
        // The others are the very tickets of the version before.
        let after = cache.get(&store).unwrap();
        let id = TicketId::parse("A-8").unwrap();
        assert!(Arc::ptr_eq(&before.tickets[&id], &after.tickets[&id]));
        assert_eq!(before.tickets[&TicketId::parse("A-7").unwrap()].title, "t");
        // A ticket that becomes done leaves the open ones and is counted as done.
        store
            .update(|s| {
                let t = s.tickets.get_mut(&TicketId::parse("A-9").unwrap()).unwrap();
                t.status = Status::Done;
                Ok(())
            })
            .unwrap();
        let summary = cache.summary(&store).unwrap();
        assert_eq!(summary.count(Status::Pending), 49);
        assert_eq!(summary.count(Status::Done), 1);
        assert_eq!(cache.get(&store).unwrap().tickets.len(), 49);
        // Decoded once more at most: a done ticket leaves the file for the archive.
        assert!(cache.decodes() <= 52, "{}", cache.decodes());
    }

    #[test]
    fn changes_in_the_journal_are_read_from_it_alone_and_match_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json")).journal_above_kib(0);
        let cache = StateCache::default();
        for i in 0..40 {
            add(&store, &format!("A-{i:02}"));
        }
        assert_eq!(cache.get(&store).unwrap().tickets.len(), 40);
        let mut decodes = cache.decodes();
        for step in 0..120 {
            let id = TicketId::parse(&format!("A-{:02}", (step * 7) % 45)).unwrap();
            if store.find(&id).unwrap().is_some() {
                store
                    .update_ticket(&id, |t| {
                        t.title = format!("step {step} {}", "x".repeat(step * 13 % 900));
                        Ok(())
                    })
                    .unwrap();
            } else {
                let t = Ticket::new(NewTicket::manual(id.clone(), "new"), now());
                store.insert_new(&t, |_| anyhow::anyhow!("known")).unwrap();
            }
            let open = cache.get(&store).unwrap();
            let expected = store.load().unwrap();
            assert_eq!(open.tickets.len(), expected.tickets.len(), "step {step}");
            for (id, t) in &expected.tickets {
                assert!(*open.tickets[id] == *t, "step {step}: {id}");
            }
            // One ticket decoded a change, whether read from the journal or a fold.
            assert!(cache.decodes() <= decodes + 1, "step {step}");
            decodes = cache.decodes();
            let summary = cache.summary(&store).unwrap();
            assert_eq!(summary.count(Status::Pending), expected.tickets.len());
        }
        let journal_reads = cache.journal_reads.load(Ordering::Relaxed);
        assert!(
            journal_reads > 80,
            "{journal_reads} of 120 read from the journal alone"
        );
    }

    #[test]
    fn a_removed_ticket_vanishes() {
        let (_dir, store, cache) = fresh(&["A-1", "A-2"]);
        assert_eq!(cache.summary(&store).unwrap().count(Status::Pending), 2);
        store
            .update(|s| {
                s.tickets.remove(&TicketId::parse("A-1").unwrap());
                Ok(())
            })
            .unwrap();
        let open = cache.get(&store).unwrap();
        assert_eq!(
            open.tickets
                .keys()
                .map(TicketId::as_str)
                .collect::<Vec<_>>(),
            ["A-2"]
        );
        assert_eq!(cache.summary(&store).unwrap().count(Status::Pending), 1);
        std::fs::remove_file(store.path()).unwrap();
        assert!(cache.get(&store).unwrap().tickets.is_empty());
    }

    #[test]
    fn a_file_laid_out_by_hand_is_read_whole_and_counted_once() {
        let (_dir, store, cache) = fresh(&["A-1", "A-2"]);
        cache.get(&store).unwrap();
        let state = store.load().unwrap();
        std::fs::write(store.path(), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
        assert_eq!(cache.get(&store).unwrap().tickets.len(), 2);
        assert_eq!(cache.summary(&store).unwrap().count(Status::Pending), 2);
        // An empty line after the first ticket: that ticket, read already, comes again.
        add(&store, "A-3");
        let lines = std::fs::read_to_string(store.path()).unwrap();
        std::fs::write(store.path(), lines.replacen("},\n", "},\n\n", 1)).unwrap();
        assert_eq!(cache.summary(&store).unwrap().count(Status::Pending), 3);
        assert_eq!(cache.get(&store).unwrap().tickets.len(), 3);
    }

    #[test]
    fn a_damaged_ticket_is_an_error_every_time() {
        let (_dir, store, cache) = fresh(&["A-1", "A-2"]);
        cache.get(&store).unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        let damaged = text.replacen("\"title\":\"t\"", "\"title\":7", 1);
        assert_ne!(text, damaged);
        std::fs::write(store.path(), damaged).unwrap();
        for _ in 0..3 {
            let e = cache.get(&store).unwrap_err();
            assert!(format!("{e:#}").contains("damaged"), "{e:#}");
            assert!(cache.summary(&store).is_err());
        }
        std::fs::write(store.path(), text).unwrap();
        assert_eq!(cache.get(&store).unwrap().tickets.len(), 2);
    }

    #[test]
    fn readers_during_reloads_see_the_old_version_or_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("s.json"));
        let cache = Arc::new(StateCache::default());
        for i in 0..20 {
            add(&store, &format!("A-{i}"));
        }
        cache.get(&store).unwrap();
        let writes = 60;
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for n in 1..=writes {
                    // Two tickets changed in one write: a reader sees both or neither.
                    store
                        .update(|s| {
                            for id in ["A-3", "A-11"] {
                                s.tickets
                                    .get_mut(&TicketId::parse(id).unwrap())
                                    .unwrap()
                                    .title = n.to_string();
                            }
                            Ok(())
                        })
                        .unwrap();
                }
            })
        };
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (store, cache) = (store.clone(), Arc::clone(&cache));
                std::thread::spawn(move || {
                    let mut last = 0;
                    loop {
                        let open = cache.get(&store).expect("a reader never fails");
                        assert_eq!(open.tickets.len(), 20);
                        let of =
                            |id: &str| open.tickets[&TicketId::parse(id).unwrap()].title.clone();
                        let (a, b) = (of("A-3"), of("A-11"));
                        assert_eq!(a, b, "a torn version");
                        let n = a.parse::<u32>().unwrap_or(0);
                        assert!(n >= last, "went back from {last} to {n}");
                        last = n;
                        if n == writes {
                            return;
                        }
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        // 20 first, then two a write at most: never the whole file again.
        assert!(
            cache.decodes() <= 20 + 2 * u64::from(writes),
            "{}",
            cache.decodes()
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_every_time() {
        let (_dir, store, cache) = fresh(&["A-1"]);
        cache.get(&store).unwrap();
        std::fs::write(store.path(), "{oops").unwrap();
        assert!(cache.get(&store).is_err());
        assert!(cache.get(&store).is_err());
    }
}
