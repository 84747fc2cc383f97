//! The parsed state, kept between requests: a dashboard polls every few seconds and the state
//! file rarely changes, so GETs parse it again only when the file itself changed.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};

use crate::store::{State, Store};

/// What identifies one version of the state file. The store replaces the file by renaming a
/// new one over it, so any write changes the inode; size and mtime catch an edit in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_nanos: i128,
}

fn fingerprint(path: &Path) -> Result<Option<Fingerprint>> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(Fingerprint {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_nanos: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read the state file {}", path.display())),
    }
}

/// The last parsed state and the file version it came from (`None`: there was no file).
#[derive(Debug, Default)]
pub struct StateCache {
    slot: Mutex<Option<(Option<Fingerprint>, Arc<State>)>>,
    loads: AtomicU64,
}

impl StateCache {
    /// The current state: the cached one while the file is unchanged, else read again
    /// (under the store's shared lock).
    ///
    /// # Errors
    /// The file cannot be read or does not parse; nothing is cached then.
    pub fn get(&self, store: &Store) -> Result<Arc<State>> {
        // Taken before reading: if the file changes in between, the newer state is cached
        // under the older fingerprint and the next call reads it again. Never the reverse.
        let fp = fingerprint(store.path())?;
        if let Some((known, state)) = &*self.slot.lock().unwrap_or_else(PoisonError::into_inner) {
            if *known == fp {
                return Ok(Arc::clone(state));
            }
        }
        let state = Arc::new(store.load()?);
        self.loads.fetch_add(1, Ordering::Relaxed);
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some((fp, Arc::clone(&state)));
        Ok(state)
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
    use crate::ticket::{now, NewTicket, Ticket, TicketId, TriggerType};

    fn add(store: &Store, id: &str) {
        store
            .update(|s| {
                let t = Ticket::new(
                    NewTicket {
                        id: TicketId::parse(id).unwrap(),
                        title: "t".into(),
                        description_html: "<p></p>".into(),
                        description_text: String::new(),
                        url: None,
                        trigger_type: TriggerType::Manual,
                    },
                    now(),
                );
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
