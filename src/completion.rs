//! Completion files: `completion.dir/<pattern with the ticket id>` holding a
//! summary. A poll tick reads each one for an active ticket, completes the ticket and deletes
//! the file. Anything doubtful is refused and left in place for a person to look at.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config::CompletionConfig;
use crate::ticket::TicketId;

/// The most bytes a completion file may have.
pub const MAX_BYTES: u64 = 64 * 1024;

/// A file in the completion folder whose name fits the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: TicketId,
    pub path: PathBuf,
}

/// Where the completion file for `id` goes.
#[must_use]
pub fn path_for(cfg: &CompletionConfig, id: &TicketId) -> PathBuf {
    cfg.dir
        .join(cfg.pattern.replace("{ticket_id}", id.as_str()))
}

/// The files in the completion folder whose names fit the pattern, sorted. A missing folder
/// holds none; a name that fits but carries an invalid id is logged and skipped.
///
/// # Errors
/// The folder exists but cannot be read.
pub fn find(cfg: &CompletionConfig) -> Result<Vec<Found>> {
    let (prefix, suffix) = cfg
        .pattern
        .split_once("{ticket_id}")
        .unwrap_or((cfg.pattern.as_str(), ""));
    let entries = match fs::read_dir(&cfg.dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot read the completion folder {}", cfg.dir.display())
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        else {
            continue;
        };
        match TicketId::parse(middle) {
            Ok(id) => out.push(Found {
                id,
                path: entry.path(),
            }),
            Err(_) => log::warn!(
                "completion file {} does not name a valid ticket id: left alone",
                entry.path().display()
            ),
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The summary in a completion file, once it has passed the checks: a regular file (not a
/// link), owned by the user running plane-orch, at most 64 KiB, UTF-8.
///
/// # Errors
/// Says which check failed.
pub fn read(path: &Path) -> Result<String> {
    let meta =
        fs::symlink_metadata(path).with_context(|| format!("cannot inspect {}", path.display()))?;
    if meta.file_type().is_symlink() {
        bail!("{} is a symbolic link, not a file", path.display());
    }
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let uid = rustix::process::getuid().as_raw();
    if meta.uid() != uid {
        bail!(
            "{} belongs to user id {}, not to the user running plane-orch ({uid})",
            path.display(),
            meta.uid()
        );
    }
    if meta.len() > MAX_BYTES {
        bail!(
            "{} has {} bytes; a completion file may have at most {MAX_BYTES}",
            path.display(),
            meta.len()
        );
    }
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // The name could have been swapped between the checks and the open: the opened file must
    // be the one checked.
    let opened = file
        .metadata()
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    if opened.ino() != meta.ino() || opened.dev() != meta.dev() {
        bail!("{} changed while it was being read", path.display());
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_BYTES {
        bail!(
            "{} grew past {MAX_BYTES} bytes while it was being read",
            path.display()
        );
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> CompletionConfig {
        CompletionConfig {
            dir: dir.to_path_buf(),
            pattern: "completion-{ticket_id}.txt".into(),
        }
    }

    #[test]
    fn files_fitting_the_pattern_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        fs::write(dir.path().join("completion-CSLOG-1.txt"), "done").unwrap();
        fs::write(dir.path().join("completion-../x.txt.txt"), "x").unwrap_or(());
        fs::write(dir.path().join("other.txt"), "x").unwrap();
        fs::write(dir.path().join("completion-a b.txt"), "x").unwrap();
        let found = find(&c).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id.as_str(), "CSLOG-1");
        assert_eq!(
            path_for(&c, &found[0].id),
            dir.path().join("completion-CSLOG-1.txt")
        );
        assert!(find(&cfg(&dir.path().join("missing"))).unwrap().is_empty());
    }

    #[test]
    fn doubtful_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        fs::write(&good, "fixed it ✓").unwrap();
        assert_eq!(read(&good).unwrap(), "fixed it ✓");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert!(format!("{}", read(&link).unwrap_err()).contains("symbolic link"));
        let big = dir.path().join("big");
        fs::write(&big, vec![b'a'; 64 * 1024 + 1]).unwrap();
        assert!(format!("{}", read(&big).unwrap_err()).contains("at most"));
        let exact = dir.path().join("exact");
        fs::write(&exact, vec![b'a'; 64 * 1024]).unwrap();
        assert!(read(&exact).is_ok());
        let bin = dir.path().join("bin");
        fs::write(&bin, b"ok \xff\xfe").unwrap();
        assert!(format!("{}", read(&bin).unwrap_err()).contains("UTF-8"));
        assert!(read(dir.path()).is_err());
    }
}
