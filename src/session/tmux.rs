//! The built-in backend: tmux, called with separate arguments (no shell, nothing from the
//! ticket in the command). tmux honours `TMUX_TMPDIR`, so a private server is one variable away.

use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::Result;

use crate::config::Config;
use crate::error::Error;

use super::{secret_vars, session_command, session_env, SessionSpec};

/// How long one tmux call may take. tmux answers in milliseconds; one that takes longer is
/// stuck (a hung server, a full disk), and waiting longer would only hold the caller.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Runs tmux with the deadline; the errors say what to do.
fn exec(cmd: &mut Command) -> Result<Output> {
    crate::process::run(cmd.env_remove("TMUX"), DEADLINE).map_err(|e| {
        let hint = match e {
            crate::process::RunError::Spawn(_) => "install tmux or put it on PATH",
            _ => "check that the tmux server is not stuck (`tmux list-sessions`)",
        };
        Error::Session(format!("cannot run tmux ({e}): {hint}")).into()
    })
}

fn run(args: &[&str]) -> Result<Output> {
    exec(Command::new("tmux").args(args))
}

/// The socket of the server plain `tmux` reaches, as tmux finds it: the one `$TMUX` names
/// (inside a session), else `tmux-<uid>/default` in `$TMUX_TMPDIR` (or `/tmp`).
fn server_socket() -> std::path::PathBuf {
    if let Some(socket) = std::env::var("TMUX")
        .ok()
        .and_then(|v| v.split(',').next().map(str::to_string))
        .filter(|s| !s.is_empty())
    {
        return socket.into();
    }
    let dir = std::env::var_os("TMUX_TMPDIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/tmp".into());
    std::path::Path::new(&dir)
        .join(format!("tmux-{}", rustix::process::getuid().as_raw()))
        .join("default")
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
    cmd.args(["new-session", "-d", "-s", &spec.name, "-c"])
        .arg(&spec.workdir);
    // A tmux server started by this call inherits our environment: keep the secrets out of it.
    for name in secret_vars(config) {
        cmd.env_remove(name);
    }
    for (key, value) in session_env(config, spec)? {
        cmd.arg("-e").arg(format!("{key}={value}"));
    }
    cmd.arg("--").args(session_command(config, spec));
    let out = exec(&mut cmd)?;
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
    // A server started earlier from a shell holding the secrets has them in its global
    // environment: mark them removed for every later window of this session too.
    let target = format!("={}", spec.name);
    for name in secret_vars(config) {
        match run(&["set-environment", "-t", &target, "-r", name]) {
            Ok(out) if out.status.success() => {}
            Ok(out) => log::debug!("tmux set-environment -r {name}: {}", stderr_of(&out)),
            Err(e) => log::debug!("tmux set-environment -r {name}: {e:#}"),
        }
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
    // No socket, no server: there is nothing to ask, and starting tmux to hear so costs a
    // `list` or a dashboard refresh a few milliseconds.
    if !server_socket().exists() {
        return Ok(HashSet::new());
    }
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

/// The last `lines` lines of the session's active pane as plain text, or `None` when no such
/// session runs. `capture-pane -p` without `-e` prints the cells' text without colours;
/// escape sequences and control characters left in that text are removed as well, so what a
/// program in the session prints cannot reach a reader's terminal or page as codes.
///
/// # Errors
/// tmux cannot be run or fails for another reason than a missing session.
pub fn capture_screen(name: &str, lines: usize) -> Result<Option<String>> {
    if !live_sessions()?.contains(name) {
        return Ok(None);
    }
    let target = format!("={name}:");
    let start = format!("-{lines}");
    let out = run(&["capture-pane", "-p", "-J", "-t", &target, "-S", &start])?;
    if !out.status.success() {
        if !live_sessions()?.contains(name) {
            return Ok(None);
        }
        return Err(Error::Session(format!(
            "tmux could not capture session {name}: {}",
            stderr_of(&out)
        ))
        .into());
    }
    Ok(Some(plain_tail(
        &String::from_utf8_lossy(&out.stdout),
        lines,
    )))
}

/// The last `lines` lines of `text` once trailing blank lines are cut, with escape sequences
/// and control characters removed and each line's trailing spaces trimmed.
fn plain_tail(text: &str, lines: usize) -> String {
    let text = strip_ansi_escapes::strip_str(text);
    let clean: Vec<String> = text
        .lines()
        .map(|l| {
            l.chars()
                .filter(|c| *c == '\t' || !c.is_control())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect();
    let end = clean
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    let start = end.saturating_sub(lines);
    clean[start..end].join("\n")
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
    exec(pane_command().args(args))
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

#[cfg(test)]
mod tests {
    use super::plain_tail;

    #[test]
    fn a_screen_is_cut_to_its_last_lines_without_control_characters() {
        let text = "one\ntwo \x1b[31mred\x1b[0m\nthree\x07\n\n   \n";
        assert_eq!(plain_tail(text, 2), "two red\nthree");
        assert_eq!(plain_tail(text, 10), "one\ntwo red\nthree");
        assert_eq!(plain_tail("\x1b]0;title\x07x\x1b[2J", 1), "x");
        assert_eq!(plain_tail("\n\n", 5), "");
    }
}
