//! Sessions: a workdir (a git worktree on its own branch), the files Claude Code is
//! given (`/complete` and the hooks), and a supervised tmux session running the worker.
//! This module knows tmux, git and tmux-session-service; it knows nothing of Plane.

pub mod claude;
pub mod made;
pub mod service;
pub mod tmux;
pub mod worktree;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;

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

/// The path plane-orch was started from, resolved once per process (see [`current_exe`]).
static EXE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Resolves the path of the running binary now, so that a binary replaced later (an upgrade
/// under a running `serve`) is still found at the path it was started from. `run` calls it
/// first thing.
pub fn resolve_exe() {
    EXE.get_or_init(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // Linux names a replaced binary "PATH (deleted)": the path is the part before.
        let shown = exe.display().to_string();
        let exe = shown
            .strip_suffix(" (deleted)")
            .map_or(exe.clone(), PathBuf::from);
        Ok(exe.canonicalize().unwrap_or(exe))
    });
}

/// The absolute path of plane-orch, given to sessions and hooks: the one it was started
/// from, resolved once.
///
/// # Errors
/// The OS cannot say where the binary is, or the file is gone (removed since this process
/// started): a session given that path could not run `/complete`.
pub fn current_exe() -> Result<PathBuf> {
    resolve_exe();
    let exe = match EXE.get() {
        Some(Ok(exe)) => exe.clone(),
        Some(Err(e)) => anyhow::bail!("cannot find the path of plane-orch itself: {e}"),
        None => anyhow::bail!("cannot find the path of plane-orch itself"),
    };
    if !exe.is_file() {
        return Err(Error::Session(format!(
            "plane-orch's own binary {} is gone (removed or replaced since this process started): \
             restart `plane-orch serve` (or run the command again) so sessions and hooks get a \
             binary that exists",
            exe.display()
        ))
        .into());
    }
    Ok(exe)
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
    // The agent reads the Claude config plane-orch wrote the trust entry into, whatever the
    // tmux server's (or the service's) own environment says.
    if let Some(dir) = claude::config_dir() {
        env.push((
            claude::CONFIG_DIR_ENV.to_string(),
            dir.display().to_string(),
        ));
    }
    Ok(env)
}

/// The environment variables that hold plane-orch's secrets (`plane.api_key_env`,
/// `api.token_env`): removed from every session, whose agent acts on a stranger's text.
#[must_use]
pub fn secret_vars(config: &Config) -> Vec<&str> {
    let mut names = vec![config.plane.api_key_env.as_str()];
    if config.api.token_env != config.plane.api_key_env {
        names.push(config.api.token_env.as_str());
    }
    names
}

/// What `env -u` removes from a session: the secrets, and `CLAUDE_CONFIG_DIR` when
/// plane-orch has none (then the agent must read `~/.claude.json`, as plane-orch did).
#[must_use]
pub fn removed_vars(config: &Config) -> Vec<&str> {
    let mut names = secret_vars(config);
    if claude::config_dir().is_none() {
        names.push(claude::CONFIG_DIR_ENV);
    }
    names
}

/// The program and arguments a session runs: `env -u SECRET ... WORKER ID`. `env` removes the
/// secrets even when the tmux server (or the service) was started from a shell holding them,
/// then replaces itself with the worker.
#[must_use]
pub fn session_command(config: &Config, spec: &SessionSpec) -> Vec<String> {
    let mut argv = vec!["env".to_string()];
    for name in removed_vars(config) {
        argv.push("-u".into());
        argv.push(name.to_string());
    }
    argv.push(config.automation.worker.display().to_string());
    argv.push(spec.ticket.to_string());
    argv
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
    // Where the session may leave its completion file: made private before it runs.
    crate::completion::ensure_dir(&config.completion)?;
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

/// Whether the backend that runs `session` can show its screen. tmux can; tmux-session-service
/// has no such call (its sessions may live on a tmux server this process cannot reach).
#[must_use]
pub fn can_capture(session: &SessionInfo) -> bool {
    session.backend != Backend::Service.as_str()
}

/// The last `lines` lines of the session's screen as plain text (no escape codes), or `None`
/// when the session does not run.
///
/// # Errors
/// `Error::Session` when the backend cannot capture (see [`can_capture`]) or tmux fails.
pub fn capture_screen(
    _config: &Config,
    session: &SessionInfo,
    lines: usize,
) -> Result<Option<String>> {
    if !can_capture(session) {
        return Err(Error::Session(format!(
            "the {} backend cannot show the screen of session {}",
            session.backend, session.name
        ))
        .into());
    }
    tmux::capture_screen(&session.name, lines)
}

/// Interrupts the agent in a ticket's session (Escape to its pane). Both backends run the
/// user's tmux, as [`attach`] relies on too.
///
/// # Errors
/// `Error::Session` when tmux cannot reach the session.
pub fn interrupt(_config: &Config, name: &str) -> Result<()> {
    tmux::interrupt(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_run_the_worker_without_the_secrets() {
        let config = crate::config::parse(
            "plane:\n  api_key_env: MY_PLANE_KEY\napi:\n  token_env: MY_API_TOKEN\n",
            Path::new("/srv/po/config.yaml"),
        )
        .unwrap();
        let spec = SessionSpec {
            name: "plane-X-1".into(),
            ticket: TicketId::parse("X-1").unwrap(),
            workdir: PathBuf::from("/srv/po/repo"),
            agent_session: "a".into(),
            restart: false,
        };
        let argv = session_command(&config, &spec);
        assert_eq!(
            argv[..5],
            ["env", "-u", "MY_PLANE_KEY", "-u", "MY_API_TOKEN"]
        );
        assert_eq!(argv[argv.len() - 1], "X-1");
        assert!(
            argv[argv.len() - 2].ends_with("claude-ticket-worker"),
            "{argv:?}"
        );
    }
}
