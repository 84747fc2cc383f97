//! One updating line on stderr for long work (a poll reading many projects and pages), shown
//! only to a person at a terminal: from cron, systemd or a pipe it does nothing, so logs and
//! mails stay clean.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// A progress line. Drop (or [`Progress::finish`]) clears it.
///
/// ```no_run
/// let progress = plane_orch::progress::Progress::new();
/// progress.step("project CSLOG: page 2");
/// progress.finish();
/// ```
#[derive(Debug)]
pub struct Progress {
    /// The terminal's width, when stderr is one and `-q` was not given; `None` draws nothing.
    width: Option<usize>,
    drawn: Mutex<bool>,
}

impl Progress {
    /// A progress line on stderr when stderr is a terminal; a no-op otherwise.
    #[must_use]
    pub fn new() -> Progress {
        let stderr = std::io::stderr();
        let width = stderr.is_terminal().then(|| {
            terminal_size::terminal_size_of(&stderr).map_or(80, |(w, _)| usize::from(w.0))
        });
        Progress {
            width,
            drawn: Mutex::new(false),
        }
    }

    /// A progress line that never draws (for `-q`, `--json` and tests).
    #[must_use]
    pub fn hidden() -> Progress {
        Progress {
            width: None,
            drawn: Mutex::new(false),
        }
    }

    /// Whether anything will be drawn.
    #[must_use]
    pub fn is_visible(&self) -> bool {
        self.width.is_some()
    }

    /// Replaces the line with `msg`, cut to the terminal's width.
    pub fn step(&self, msg: &str) {
        let Some(width) = self.width else { return };
        let text: String = msg
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(width.saturating_sub(1))
            .collect();
        let mut err = std::io::stderr().lock();
        // \r back to the start, ESC[2K clears the old line.
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
        if let Ok(mut drawn) = self.drawn.lock() {
            *drawn = true;
        }
    }

    /// Clears the line, leaving the terminal as it was.
    pub fn finish(&self) {
        let Ok(mut drawn) = self.drawn.lock() else {
            return;
        };
        if *drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            *drawn = false;
        }
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_progress_draws_nothing_and_finishes_quietly() {
        let p = Progress::hidden();
        assert!(!p.is_visible());
        p.step("page 1");
        assert!(!*p.drawn.lock().unwrap());
        p.finish();
    }
}
