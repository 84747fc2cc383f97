//! The built-in backend: tmux, called with separate arguments (no shell, nothing from the
//! ticket in the command). tmux honours `TMUX_TMPDIR`, so a private server is one variable away.

use std::collections::HashSet;
use std::process::{Command, Output};

use anyhow::Result;

use crate::config::Config;
use crate::error::Error;

use super::{session_env, SessionSpec};

fn run(args: &[&str]) -> Result<Output> {
    Command::new("tmux")
        .args(args)
        .env_remove("TMUX")
        .output()
        .map_err(|e| {
            Error::Session(format!(
                "cannot run tmux ({e}): install tmux or put it on PATH"
            ))
            .into()
        })
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `tmux new-session -d -s NAME -c WORKDIR -e K=V ... -- WORKER ID`.
///
/// # Errors
/// `Error::Session` with tmux's own message (a session of that name exists, tmux missing).
pub fn start(config: &Config, spec: &SessionSpec) -> Result<()> {
    let mut cmd = Command::new("tmux");
    cmd.env_remove("TMUX")
        .args(["new-session", "-d", "-s", &spec.name, "-c"])
        .arg(&spec.workdir);
    for (key, value) in session_env(config, spec)? {
        cmd.arg("-e").arg(format!("{key}={value}"));
    }
    cmd.arg("--")
        .arg(&config.automation.worker)
        .arg(spec.ticket.as_str());
    let out = cmd.output().map_err(|e| {
        Error::Session(format!(
            "cannot run tmux ({e}): install tmux or put it on PATH"
        ))
    })?;
    if !out.status.success() {
        let err = stderr_of(&out);
        let hint = if err.contains("duplicate session") {
            format!(
                " (a session of that name already runs: `tmux attach -t {0}` to see it, \
                 `tmux kill-session -t {0}` to end it)",
                spec.name
            )
        } else {
            String::new()
        };
        return Err(Error::Session(format!(
            "tmux could not start session {}: {err}{hint}",
            spec.name
        ))
        .into());
    }
    Ok(())
}

/// tmux's version (`tmux -V`), or why it cannot be run.
///
/// # Errors
/// `Error::Session` when tmux is missing or fails.
pub fn probe() -> Result<String> {
    let out = run(&["-V"])?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(Error::Session(format!("tmux -V failed: {}", stderr_of(&out))).into())
    }
}

/// The names of the sessions on the tmux server; no server running means none.
///
/// # Errors
/// tmux cannot be run.
pub fn live_sessions() -> Result<HashSet<String>> {
    let out = run(&["list-sessions", "-F", "#{session_name}"])?;
    if !out.status.success() {
        let err = stderr_of(&out);
        // No server, or one shutting down as its last session ends: no sessions.
        if err.contains("no server running")
            || err.contains("error connecting")
            || err.contains("No such file or directory")
            || err.contains("server exited unexpectedly")
            || err.contains("lost server")
        {
            return Ok(HashSet::new());
        }
        return Err(Error::Session(format!("tmux list-sessions failed: {err}")).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The running tmux server's global environment, which every new session starts with
/// (plus the `-e` variables); `None` when no server runs, so a new one would start with the
/// environment of whoever starts it.
///
/// # Errors
/// tmux cannot be run.
pub fn server_environment() -> Result<Option<Vec<(String, String)>>> {
    let out = run(&["show-environment", "-g"])?;
    if !out.status.success() {
        return Ok(None);
    }
    // `NAME=value`, or `-NAME` for a variable removed from the environment.
    Ok(Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

/// Kills the session; one that is already gone is fine.
///
/// # Errors
/// tmux cannot be run or refuses for another reason.
pub fn kill(name: &str) -> Result<()> {
    if !live_sessions()?.contains(name) {
        return Ok(());
    }
    let target = format!("={name}");
    let out = run(&["kill-session", "-t", &target])?;
    if out.status.success() || !live_sessions()?.contains(name) {
        Ok(())
    } else {
        Err(Error::Session(format!(
            "tmux could not kill session {name}: {}",
            stderr_of(&out)
        ))
        .into())
    }
}

/// Replaces this process with `tmux attach -t NAME`, or `tmux switch-client -t NAME` when
/// run inside tmux (attaching there would nest clients).
///
/// # Errors
/// tmux cannot be run.
pub fn attach(name: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let target = format!("={name}");
    let inside = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty());
    let verb = if inside {
        "switch-client"
    } else {
        "attach-session"
    };
    let err = Command::new("tmux").args([verb, "-t", &target]).exec();
    Err(Error::Session(format!(
        "cannot run tmux ({err}): install tmux or put it on PATH"
    ))
    .into())
}

/// tmux for a session's pane: inside a session (a hook) the server is the one named by
/// `$TMUX`, whatever `TMUX_TMPDIR` says.
fn pane_command() -> Command {
    let mut cmd = Command::new("tmux");
    if let Some(socket) = std::env::var("TMUX")
        .ok()
        .and_then(|v| v.split(',').next().map(str::to_string))
        .filter(|s| !s.is_empty())
    {
        cmd.arg("-S").arg(socket);
    }
    cmd.env_remove("TMUX");
    cmd
}

fn pane_run(args: &[&str]) -> Result<Output> {
    pane_command().args(args).output().map_err(|e| {
        Error::Session(format!(
            "cannot run tmux ({e}): install tmux or put it on PATH"
        ))
        .into()
    })
}

/// Sends Escape to the session's pane: Claude Code stops what it is doing.
///
/// # Errors
/// tmux cannot be run or has no such session.
pub fn interrupt(name: &str) -> Result<()> {
    let target = format!("={name}:");
    let out = pane_run(&["send-keys", "-t", &target, "Escape"])?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Session(format!(
            "tmux could not send Escape to {name}: {}",
            stderr_of(&out)
        ))
        .into())
    }
}

/// The last `lines` non-blank lines the session's pane shows, as plain text; `None` when
/// the session is gone.
///
/// # Errors
/// tmux cannot be run.
pub fn capture_screen(name: &str, lines: usize) -> Result<Option<String>> {
    let target = format!("={name}:");
    let out = pane_run(&["capture-pane", "-p", "-J", "-t", &target])?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let kept: Vec<&str> = text.lines().collect();
    let end = kept
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let start = end.saturating_sub(lines);
    Ok(Some(kept[start..end].join("\n")))
}
