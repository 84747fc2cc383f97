//! Sessions: a workdir (a git worktree on its own branch), the files Claude Code is
//! given (`/complete` and the hooks), and a supervised tmux session running the worker.
//! This module knows tmux, git and tmux-session-service; it knows nothing of Plane.

pub mod claude;
pub mod service;
pub mod tmux;
pub mod worktree;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::{Backend, Config};
use crate::error::Error;
use crate::ticket::{SessionInfo, Ticket, TicketId};

/// What a new session runs: the worker for one ticket, in one folder.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// The session's name (`<tmux_prefix><ID>`).
    pub name: String,
    pub ticket: TicketId,
    pub workdir: PathBuf,
    /// The agent's conversation id (`--session-id`, or `--resume` on a restart).
    pub agent_session: String,
    /// Set on `restart`: the worker resumes the conversation instead of starting one.
    pub restart: bool,
}

/// The session name of a ticket: `<tmux_prefix><ID>`, safe for tmux and tmux-session-service.
#[must_use]
pub fn session_name(config: &Config, id: &TicketId) -> String {
    format!("{}{}", config.sessions.tmux_prefix, id)
}

/// The absolute path of the running plane-orch, given to sessions and hooks.
///
/// # Errors
/// The OS cannot say where the binary is.
pub fn current_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the path of plane-orch itself")?;
    Ok(exe.canonicalize().unwrap_or(exe))
}

/// The environment a session's worker gets, in order.
///
/// # Errors
/// The path of plane-orch itself is unknown.
pub fn session_env(config: &Config, spec: &SessionSpec) -> Result<Vec<(String, String)>> {
    let mut env = vec![
        ("PLANE_ORCH_TICKET".to_string(), spec.ticket.to_string()),
        (
            "PLANE_ORCH_CONFIG".to_string(),
            config.path.display().to_string(),
        ),
        (
            "PLANE_ORCH_BIN".to_string(),
            current_exe()?.display().to_string(),
        ),
        (
            "PLANE_ORCH_AGENT_SESSION".to_string(),
            spec.agent_session.clone(),
        ),
        (
            "PLANE_ORCH_CLAUDE_DIR".to_string(),
            config.automation.claude_dir.display().to_string(),
        ),
    ];
    if spec.restart {
        env.push(("PLANE_ORCH_RESTART".to_string(), "1".to_string()));
    }
    Ok(env)
}

/// Checks that the worker can be run, so a bad path is reported before a session flashes by.
///
/// # Errors
/// `Error::Session` naming the path and the key to fix.
pub fn check_worker(worker: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(worker).map_err(|e| {
        Error::Session(format!(
            "the worker {} cannot be used ({e}): set automation.worker to the path of claude-ticket-worker",
            worker.display()
        ))
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(Error::Session(format!(
            "the worker {} is not an executable file: `chmod +x` it or fix automation.worker",
            worker.display()
        ))
        .into());
    }
    Ok(())
}

/// Starts a session running the worker for `spec.ticket` with the configured backend.
///
/// # Errors
/// `Error::Session` saying why the session could not start.
pub fn start(config: &Config, spec: &SessionSpec) -> Result<()> {
    check_worker(&config.automation.worker)?;
    match config.sessions.backend {
        Backend::Tmux => tmux::start(config, spec),
        Backend::Service => service::start(config, spec),
    }
}

/// The names of the sessions running now.
///
/// # Errors
/// `Error::Session` when the backend cannot be asked (tmux missing, the service down).
pub fn live_sessions(config: &Config) -> Result<HashSet<String>> {
    match config.sessions.backend {
        Backend::Tmux => tmux::live_sessions(),
        Backend::Service => service::live_sessions(config),
    }
}

/// Whether the backend can run sessions now: tmux's version, or the service's health.
///
/// # Errors
/// `Error::Session` saying why not.
pub fn probe(config: &Config) -> Result<String> {
    match config.sessions.backend {
        Backend::Tmux => tmux::probe(),
        Backend::Service => service::probe(config),
    }
}

/// Whether the session named `name` runs now.
///
/// # Errors
/// As [`live_sessions`].
pub fn is_alive(config: &Config, name: &str) -> Result<bool> {
    Ok(live_sessions(config)?.contains(name))
}

/// Ends a ticket's session; a session that is already gone is not an error.
///
/// # Errors
/// `Error::Session` when the backend refuses or cannot be reached.
pub fn kill(config: &Config, session: &SessionInfo) -> Result<()> {
    if session.backend == Backend::Service.as_str() {
        service::kill(config, &session.name)
    } else {
        tmux::kill(&session.name)
    }
}

/// Replaces this process with a tmux client attached to the session (or switches the
/// current client when already inside tmux). Both backends run the user's tmux.
///
/// # Errors
/// tmux cannot be run.
pub fn attach(name: &str) -> Result<()> {
    tmux::attach(name)
}

/// Which sessions run now, asked once for a whole answer (`list`, the API), so each ticket's
/// `alive` costs no further call.
#[derive(Debug, Default)]
pub struct Liveness(Option<HashSet<String>>);

impl Liveness {
    /// Asks the backend only when one of `tickets` has a session; when the backend cannot be
    /// asked, every `alive` stays unknown (null) rather than failing the answer.
    pub fn check<'a>(config: &Config, tickets: impl IntoIterator<Item = &'a Ticket>) -> Liveness {
        if !tickets.into_iter().any(|t| t.session.is_some()) {
            return Liveness(None);
        }
        match live_sessions(config) {
            Ok(names) => Liveness(Some(names)),
            Err(e) => {
                log::debug!("session liveness unknown: {e:#}");
                Liveness(None)
            }
        }
    }

    /// Whether the ticket's session runs: `None` when it has none or it was not known.
    #[must_use]
    pub fn of(&self, ticket: &Ticket) -> Option<bool> {
        let names = self.0.as_ref()?;
        ticket.session.as_ref().map(|s| names.contains(&s.name))
    }
}

/// Interrupts the agent in a ticket's session (Escape to its pane). Both backends run the
/// user's tmux, as [`attach`] relies on too.
///
/// # Errors
/// `Error::Session` when tmux cannot reach the session.
pub fn interrupt(_config: &Config, name: &str) -> Result<()> {
    tmux::interrupt(name)
}

/// The last `lines` lines of the session's pane as plain text (escape codes and control
/// characters removed); `None` when the session is gone or the backend cannot show its pane.
///
/// # Errors
/// `Error::Session` when tmux cannot be run.
pub fn capture_screen(config: &Config, name: &str, lines: usize) -> Result<Option<String>> {
    let _ = config.sessions.backend;
    Ok(
        tmux::capture_screen(name, lines)?
            .map(|text| crate::activity::inert(&text, true, 8 * 1024)),
    )
}
