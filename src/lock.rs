//! The one lock of the program: an advisory `flock` on a small file, used for the state file,
//! the poll, each ticket's operation lease and the start of sessions.
//!
//! The OS drops a `flock` when its holder dies, so a crash never leaves a lock held. The
//! holder writes who it is (pid, host, command, since when) into the file, so whoever finds
//! the lock taken can say by whom: a try that must not wait becomes a conflict naming the
//! holder, a wait is logged naming it.
//!
//! A lock file may be removed by its holder ([`Lock::remove`]) once it is no longer needed
//! (a ticket that is done or gone). Whoever takes a lock checks afterwards that the path still
//! names the file it locked, and starts over if not, so a removed file is never a second lock.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt as _, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use fs2::FileExt;
use serde::{Deserialize, Serialize};

/// Who holds a lock (or runs an operation): written into the lock file, shown in conflicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// The program and its subcommand, e.g. `plane-orch serve`.
    pub command: String,
    pub since: DateTime<Utc>,
    /// What the holder is doing, in words ("being updated in Plane"), when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doing: Option<String>,
}

impl Holder {
    /// This process, now.
    #[must_use]
    pub fn me() -> Holder {
        Holder {
            pid: std::process::id(),
            host: hostname(),
            command: command_name(),
            since: crate::ticket::now(),
            doing: None,
        }
    }

    /// "pid 4711 (plane-orch serve) since 12:03:05", with the host when it is not this one.
    #[must_use]
    pub fn describe(&self) -> String {
        let host = if self.host == hostname() {
            String::new()
        } else {
            format!(" on {}", self.host)
        };
        format!(
            "pid {}{host} ({}) since {}",
            self.pid,
            self.command,
            self.since.format("%H:%M:%S UTC")
        )
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The program's name and its subcommand, without any other argument (which may hold text).
fn command_name() -> String {
    let mut args = std::env::args();
    let prog = args
        .next()
        .map(|p| {
            Path::new(&p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "plane-orch".into());
    let mut skip = false;
    let sub = args.find(|a| {
        let value_of_option = std::mem::replace(&mut skip, a == "--config" || a == "-c");
        !value_of_option && !a.starts_with('-')
    });
    match sub {
        Some(sub)
            if sub.len() <= 20 && sub.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') =>
        {
            format!("{prog} {sub}")
        }
        _ => prog,
    }
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
    exclusive: bool,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // An empty file tells the next one to look that its holder is still writing its line,
        // never that a holder gone long ago still holds it.
        if self.exclusive {
            let _ = self.file.set_len(0);
        }
        let _ = FileExt::unlock(&self.file);
    }
}

/// How to take a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exclusive,
    Shared,
}

impl Lock {
    /// Takes the exclusive lock, waiting for it if it is held (the wait is logged, naming the
    /// holder). `what` names the lock in messages ("the state lock").
    ///
    /// # Errors
    /// The file cannot be created, opened or locked.
    pub fn exclusive(path: &Path, what: &str) -> Result<Lock> {
        match Lock::take(path, Mode::Exclusive, false, what, None)? {
            Some(lock) => Ok(lock),
            None => unreachable!("a waiting take always returns the lock"),
        }
    }

    /// Takes the exclusive lock if it is free; `Ok(None)` when another process holds it.
    ///
    /// # Errors
    /// The file cannot be created, opened or locked.
    pub fn try_exclusive(path: &Path, what: &str) -> Result<Option<Lock>> {
        Lock::take(path, Mode::Exclusive, true, what, None)
    }

    /// [`Lock::try_exclusive`], the holder line saying what it is `doing` ("being approved").
    ///
    /// # Errors
    /// As [`Lock::try_exclusive`].
    pub fn try_exclusive_doing(path: &Path, what: &str, doing: &str) -> Result<Option<Lock>> {
        Lock::take(path, Mode::Exclusive, true, what, Some(doing))
    }

    /// A shared lock, waited for; `Ok(None)` when the file does not exist (readers never
    /// create it: reading leaves nothing behind).
    ///
    /// # Errors
    /// The file cannot be opened or locked.
    pub fn shared(path: &Path, what: &str) -> Result<Option<Lock>> {
        Lock::take(path, Mode::Shared, false, what, None)
    }

    /// A shared lock if it can be had at once: `Ok(None)` when a writer holds it now;
    /// `Ok(Some(None))` when the file does not exist (read without it, as [`Lock::shared`]).
    ///
    /// # Errors
    /// The file cannot be opened or locked.
    pub fn try_shared(path: &Path, what: &str) -> Result<Option<Option<Lock>>> {
        match Lock::take(path, Mode::Shared, true, what, None)? {
            Some(lock) => Ok(Some(Some(lock))),
            None if path.exists() => Ok(None),
            None => Ok(Some(None)),
        }
    }

    /// Whoever holds (or last held) the lock at `path`, as it wrote itself down.
    #[must_use]
    pub fn holder(path: &Path) -> Option<Holder> {
        let text = fs::read_to_string(path).ok()?;
        serde_json::from_str(text.lines().next()?).ok()
    }

    /// Whether some process holds the lock at `path` now (a missing file is free).
    #[must_use]
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).open(path) else {
            return false;
        };
        match FileExt::try_lock_shared(&file) {
            Ok(()) => {
                let _ = FileExt::unlock(&file);
                false
            }
            Err(_) => true,
        }
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the lock file while holding it (it is no longer needed), then releases it.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }

    fn take(
        path: &Path,
        mode: Mode,
        only_try: bool,
        what: &str,
        doing: Option<&str>,
    ) -> Result<Option<Lock>> {
        loop {
            let exclusive = mode == Mode::Exclusive;
            if exclusive {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    crate::store::create_private_dir(dir)?;
                }
            }
            let file = match OpenOptions::new()
                .read(true)
                .write(exclusive)
                .create(exclusive)
                .truncate(false)
                .mode(0o600)
                .open(path)
            {
                Ok(f) => f,
                Err(e) if !exclusive && e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(None)
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot open the lock file of {what} {}", path.display())
                    })
                }
            };
            let attempt = if exclusive {
                FileExt::try_lock_exclusive(&file)
            } else {
                FileExt::try_lock_shared(&file)
            };
            if let Err(e) = attempt {
                if e.kind() != fs2::lock_contended_error().kind() {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
                if only_try {
                    return Ok(None);
                }
                match Lock::holder(path) {
                    Some(h) => log::info!("waiting for {what}: held by {}", h.describe()),
                    None => log::info!("waiting for {what} ({})", path.display()),
                }
                let wait = if exclusive {
                    FileExt::lock_exclusive(&file)
                } else {
                    FileExt::lock_shared(&file)
                };
                wait.with_context(|| format!("cannot lock {}", path.display()))?;
            }
            // The holder before us may have removed the file: then ours is a lock on nothing.
            let same = match (file.metadata(), fs::metadata(path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if !same {
                let _ = FileExt::unlock(&file);
                continue;
            }
            let mut lock = Lock {
                file,
                path: path.to_path_buf(),
                exclusive,
            };
            if exclusive {
                lock.write_holder(doing);
            }
            return Ok(Some(lock));
        }
    }

    /// Best effort: the holder line only feeds messages.
    fn write_holder(&mut self, doing: Option<&str>) {
        let mut me = Holder::me();
        me.doing = doing.map(str::to_string);
        let Ok(mut line) = serde_json::to_vec(&me) else {
            return;
        };
        line.push(b'\n');
        // Written over in place, never emptied first: a reader sees this line or the last.
        let _ = self.file.write_all_at(&line, 0);
        let _ = self.file.set_len(line.len() as u64);
    }
}

/// A conflict naming who holds the lock at `path`: "`subject` `doing` by pid 4711
/// (plane-orch serve) since 12:03:05", `doing` as the holder wrote it (else `fallback`).
#[must_use]
pub fn held_by(path: &Path, subject: &str, fallback: &str) -> anyhow::Error {
    // The holder writes its line just after taking the lock: give it a moment.
    let mut holder = Lock::holder(path);
    for _ in 0..50 {
        if holder.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        holder = Lock::holder(path);
    }
    let msg = match holder {
        Some(h) => format!(
            "{subject} is {} by {}",
            h.doing.as_deref().unwrap_or(fallback),
            h.describe()
        ),
        None => format!("{subject} is {fallback} by another plane-orch"),
    };
    crate::error::conflict(format!("{msg}: try again once it has finished"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_lock_file_removed_by_its_holder_is_never_a_second_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/T-1.lock");
        let first = Lock::exclusive(&path, "the lease").unwrap();
        // A second taker opens the file and waits on it; the holder then removes it.
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || Lock::exclusive(&path, "the lease").unwrap())
        };
        std::thread::sleep(Duration::from_millis(200));
        first.remove();
        let second = waiter.join().unwrap();
        // The waiter started over on a fresh file at the path, which it holds now.
        assert!(path.exists());
        assert!(Lock::is_held(&path));
        assert!(Lock::try_exclusive(&path, "the lease").unwrap().is_none());
        second.remove();
        assert!(!path.exists());
        let third = Lock::try_exclusive(&path, "the lease").unwrap();
        assert!(third.is_some());
    }
}
