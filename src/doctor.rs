//! `doctor`: one function per check, each saying what it found and, when something is wrong,
//! what to do. The checks only look: they never create, fix or write anything (a shared lock
//! on an existing state file aside).

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::config::{self, Backend, Config, PlaneConfig};
use crate::plane::{self, client::Access, client::Patience, Client};
use crate::store::Store;
use crate::ticket::Status as TicketStatus;

mod agent;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but deserves a look (printed with `!`); does not fail `doctor`.
    Warn,
    /// Broken: `doctor` exits 1.
    Fail,
}

impl Status {
    /// The mark printed before the check's name.
    #[must_use]
    pub fn mark(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `tmux`.
    pub name: String,
    pub status: Status,
    /// What was found (never a secret).
    pub detail: String,
    /// What to do about a warning or a failure.
    pub fix: Option<String>,
}

impl Check {
    #[must_use]
    pub fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    #[must_use]
    pub fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    #[must_use]
    pub fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(None))
    }
}

/// Appends `text` to `out`, whose current line is `indent` columns wide, breaking it at spaces
/// so no line passes `width` columns (a single word longer than that keeps its own line);
/// each new line starts with `indent` spaces.
fn wrap_into(out: &mut String, text: &str, indent: usize, width: usize) {
    use unicode_width::UnicodeWidthStr;
    let room = width.saturating_sub(indent).max(20);
    let mut used = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = word.width();
        if used > 0 && used + 1 + w > room {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            used = 0;
        } else if used > 0 {
            out.push(' ');
            used += 1;
        }
        out.push_str(word);
        used += w;
    }
}

impl Check {
    /// The check as printed: `✓ name  detail`, then `    fix: ...` on the next line. With a
    /// `width`, long lines are wrapped at word boundaries, continuing under their text.
    #[must_use]
    pub fn render(&self, width: Option<usize>) -> String {
        let head = format!("{} {:<17} ", self.status.mark(), self.name);
        let mut out = head.clone();
        match width {
            None => out.push_str(&self.detail),
            Some(w) => wrap_into(&mut out, &self.detail, head.chars().count(), w),
        }
        if let Some(fix) = &self.fix {
            const FIX: &str = "    fix: ";
            out.push('\n');
            out.push_str(FIX);
            match width {
                None => out.push_str(fix),
                Some(w) => wrap_into(&mut out, fix, FIX.len(), w),
            }
        }
        out
    }
}

/// Runs every check against the config found at `--config`, `$PLANE_ORCH_CONFIG` or
/// `./config.yaml`. When the config cannot be loaded, that is the only check.
#[must_use]
pub fn run(config_flag: Option<&Path>) -> Vec<Check> {
    let path = config::locate(config_flag);
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "config",
                format!("{e:#}"),
                format!(
                    "fix the file (config.yaml in the repository documents every key), or point \
                     --config / ${} at the right one",
                    config::CONFIG_ENV
                ),
            )]
        }
    };
    let mut checks = vec![Check::ok("config", config.path.display().to_string())];
    checks.extend(config.warnings.iter().map(|w| {
        Check::warn(
            "config",
            w.clone(),
            format!("edit {}", config.path.display()),
        )
    }));
    checks.push(data_folder(&config));
    checks.push(log_folder(&config));
    checks.push(state_file(&config));
    checks.push(plane_settings(&config));
    checks.push(plane_key(&config));
    checks.extend(plane(&config));
    checks.push(git(&config));
    checks.push(worker(&config));
    checks.push(completion_folder(&config));
    checks.push(session_backend(&config));
    checks.push(complete_command(&config));
    checks.extend(agent::checks(&config));
    checks.extend(notify_sinks(&config));
    checks
}

/// Each notification sink: its secret variable set, and how its deliveries went (from the
/// outbox; doctor sends nothing — `plane-orch notify test` does).
fn notify_sinks(config: &Config) -> Vec<Check> {
    use crate::notify::Target;
    let cfg = &config.notify;
    if !cfg.enabled() {
        return Vec::new();
    }
    let app = crate::app::App::from_config(config.clone());
    let outbox = crate::notify::health(&app);
    let summary = crate::notify::summarize(cfg, outbox.as_ref().ok().and_then(Option::as_ref));
    let mut checks = Vec::new();
    if let Err(e) = &outbox {
        checks.push(Check::fail(
            "notify",
            format!("{e:#}"),
            "remove the outbox file to start afresh",
        ));
    }
    for (sink, seen) in cfg.sinks.iter().zip(&summary.sinks) {
        let name = format!("notify {}", sink.name);
        let var = match &sink.target {
            Target::Webhook { secret_env, .. } => secret_env.as_deref(),
            Target::Ntfy { token_env, .. } => token_env.as_deref(),
            _ => None,
        };
        if let Some(var) = var.filter(|v| std::env::var(v).map_or(true, |x| x.is_empty())) {
            checks.push(Check::fail(
                &name,
                format!(
                    "${var} is not set: messages to this {} sink fail",
                    sink.target.kind()
                ),
                format!("export {var}=... in the environment plane-orch runs in"),
            ));
        } else if seen.failing {
            checks.push(Check::fail(
                &name,
                format!(
                    "deliveries fail: {}{}",
                    seen.last_error.as_deref().unwrap_or("unknown error"),
                    if seen.given_up > 0 {
                        format!(" ({} messages given up)", seen.given_up)
                    } else {
                        String::new()
                    }
                ),
                format!(
                    "fix the sink, then check it with `plane-orch notify test {}`",
                    sink.name
                ),
            ));
        } else {
            let detail = match seen.last_ok_at {
                Some(at) => format!("{} delivered, the last at {at}", seen.delivered),
                None => format!("{} sink, nothing sent yet", sink.target.kind()),
            };
            checks.push(Check::ok(&name, detail));
        }
    }
    checks
}

/// The longest doctor waits for one Plane request.
const PLANE_TIMEOUT: Duration = Duration::from_secs(5);

/// Plane itself: reachability and the key (`users/me/`), then each watched project's trigger
/// states and labels and the transition states. THE place for checks that talk to Plane.
/// Skipped when Plane is not configured: the settings and key checks say what is missing.
fn plane(config: &Config) -> Vec<Check> {
    let cfg = &config.plane;
    if plane::not_configured(cfg, true).is_some() {
        return Vec::new();
    }
    // Asked once, briefly: doctor reports how things are now, it does not wait them out.
    let patience = Patience {
        timeout: cfg.timeout.min(PLANE_TIMEOUT),
        attempts: 1,
        max_wait: Duration::from_secs(1),
        deadline: Some(cfg.timeout.min(PLANE_TIMEOUT)),
    };
    // doctor leaves no file behind: it heeds the shared budget but does not write to it.
    let client = match Client::with_patience(cfg, patience) {
        Ok(c) => c.budget_read_only(),
        Err(e) => {
            return vec![Check::fail(
                "plane",
                format!("{e:#}"),
                "set plane.workspace_slug and the key",
            )]
        }
    };
    let access = plane_access(config, &client, patience.timeout);
    if access.status != Status::Ok {
        // Every project request would fail the same way: one line says it.
        return vec![access];
    }
    let mut checks = vec![access];
    for pid in &cfg.project_ids {
        checks.extend(plane_project(cfg, &client, pid));
    }
    checks
}

/// Where the key comes from, for messages: the env var, or the config file.
fn key_source(config: &Config) -> String {
    let var = &config.plane.api_key_env;
    if std::env::var(var).is_ok_and(|k| !k.trim().is_empty()) {
        format!("${var}")
    } else {
        format!("plane.api_token in {}", config.path.display())
    }
}

fn plane_access(config: &Config, client: &Client, timeout: Duration) -> Check {
    let base = &config.plane.base_url;
    let var = &config.plane.api_key_env;
    match client.access() {
        Access::Granted(user) => Check::ok(
            "plane",
            format!(
                "{base} answers; the key in {} is {user}'s",
                key_source(config)
            ),
        ),
        Access::Unreachable(e) => Check::fail(
            "plane",
            if e.starts_with("timeout") {
                format!(
                    "cannot reach Plane at {base}: no answer within {} s ({e})",
                    timeout.as_secs()
                )
            } else {
                format!("cannot reach Plane at {base}: {e}")
            },
            "check plane.base_url and the network (and plane.timeout_secs if Plane is slow)",
        ),
        Access::KeyRefused { status, message } => Check::fail(
            "plane",
            format!(
                "Plane refused the API key in {} ({status}: {message})",
                key_source(config)
            ),
            format!(
                "make a new key in Plane (Profile settings > Personal Access Tokens > Add \
                 personal access token) and export {var}=<the new key>; for cron and systemd, \
                 set it in the job's environment"
            ),
        ),
        Access::Failed(e) => Check::fail(
            "plane",
            e,
            "check plane.base_url (Plane's API origin, such as https://api.plane.so); if it is \
             right, Plane itself is failing: try again later",
        ),
    }
}

/// One watched project: readable, every trigger name and transition state found exactly
/// once. One ✓ when all is well, else one line per problem.
fn plane_project(cfg: &PlaneConfig, client: &Client, pid: &str) -> Vec<Check> {
    const NAME: &str = "plane project";
    let unreadable = |e: anyhow::Error| {
        vec![Check::fail(
            NAME,
            format!("cannot read project {pid}: {e:#}"),
            "check plane.project_ids and plane.workspace_slug, and that the key's user is a \
             member of the project",
        )]
    };
    let project = match client.project(pid) {
        Ok(p) => p,
        Err(e) => return unreadable(e),
    };
    // One after the other: a failure (a timeout, say) is not waited for twice.
    let lists = client
        .states(pid)
        .and_then(|states| Ok((states, client.labels(pid)?)));
    let (states, labels) = match lists {
        Ok(l) => l,
        Err(e) => return unreadable(e),
    };
    let shown = format!("{} ({pid})", project.identifier);
    let state_names: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
    let label_names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    let mut wanted: Vec<(&str, &str, &[&str], &str)> = Vec::new();
    for name in &cfg.trigger_states {
        wanted.push((name, "state", &state_names, "plane.trigger.states"));
    }
    for name in &cfg.trigger_labels {
        wanted.push((name, "label", &label_names, "plane.trigger.labels"));
    }
    for (name, setting) in [
        (&cfg.on_approve, "plane.transitions.on_approve"),
        (&cfg.on_update, "plane.transitions.on_update"),
    ] {
        if let Some(name) = name {
            wanted.push((name, "state", &state_names, setting));
        }
    }
    let mut checks = Vec::new();
    let mut found = Vec::new();
    for (name, kind, known, setting) in wanted {
        match plane::named(known, |n| n, name).len() {
            1 => found.push(format!("{kind} {name:?}")),
            0 => checks.push(Check::fail(
                NAME,
                format!("{shown} has no {kind} named {name:?} ({setting})"),
                format!(
                    "set {setting} to {kind}s {} has ({}), or create {kind} {name:?} in Plane{}",
                    project.identifier,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                    if kind == "label" && known.is_empty() {
                        " (a label list is empty when the key's user is not a member of the \
                         project)"
                    } else {
                        ""
                    }
                ),
            )),
            n => checks.push(Check::fail(
                NAME,
                format!("{shown} has {n} {kind}s named {name:?} (names are compared without case)"),
                format!("rename all but one in Plane, so {setting} names exactly one"),
            )),
        }
    }
    if let Some(ident) = &cfg.project_identifier {
        if cfg.project_ids.len() == 1 && !ident.eq_ignore_ascii_case(&project.identifier) {
            checks.push(Check::warn(
                NAME,
                format!(
                    "plane.project_identifier is {ident} but Plane calls project {pid} {}: \
                     ticket ids would not match Plane's",
                    project.identifier
                ),
                format!(
                    "set plane.project_identifier to {} or remove it",
                    project.identifier
                ),
            ));
        }
    }
    if checks.iter().all(|c| c.status != Status::Fail) {
        checks.insert(
            0,
            Check::ok(
                NAME,
                if found.is_empty() {
                    format!("{shown} {:?} is readable", project.name)
                } else {
                    format!("{shown} {:?}: found {}", project.name, found.join(", "))
                },
            ),
        );
    }
    checks
}

/// Tries to create (and at once delete) a file in `dir`: the only test of writability that
/// holds for every user, root included, and for read-only mounts.
fn can_write_in(dir: &Path) -> Result<(), String> {
    tempfile::Builder::new()
        .prefix(".plane-orch-doctor")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A folder plane-orch writes into: writable when it exists, creatable when it does not.
fn writable_folder(name: &str, dir: &Path, key: &str) -> Check {
    let fix = format!(
        "make {} writable by this user (chown/chmod u+w), or point {key} elsewhere",
        dir.display()
    );
    if dir.is_dir() {
        return match can_write_in(dir) {
            Ok(()) => Check::ok(name, format!("{} is writable", dir.display())),
            Err(e) => Check::fail(name, format!("cannot write in {}: {e}", dir.display()), fix),
        };
    }
    if dir.exists() {
        return Check::fail(name, format!("{} is not a folder", dir.display()), fix);
    }
    let mut ancestor = dir.parent();
    while let Some(a) = ancestor {
        if a.exists() {
            if !a.is_dir() {
                return Check::fail(
                    name,
                    format!(
                        "{} cannot be created: {} is a file",
                        dir.display(),
                        a.display()
                    ),
                    format!("point {key} at a path under a folder"),
                );
            }
            return match can_write_in(a) {
                Ok(()) => Check::ok(
                    name,
                    format!("{} will be created at the first write", dir.display()),
                ),
                Err(e) => Check::fail(
                    name,
                    format!(
                        "{} cannot be created: cannot write in {}: {e}",
                        dir.display(),
                        a.display()
                    ),
                    format!(
                        "mkdir -p {} as a user who can, or point {key} elsewhere",
                        dir.display()
                    ),
                ),
            };
        }
        ancestor = a.parent();
    }
    Check::fail(
        name,
        format!("{} has no existing folder above it", dir.display()),
        fix,
    )
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

fn data_folder(config: &Config) -> Check {
    writable_folder("data folder", &parent_of(&config.state.path), "state.path")
}

fn log_folder(config: &Config) -> Check {
    writable_folder("log folder", &parent_of(&config.log.path), "log.path")
}

fn state_file(config: &Config) -> Check {
    let path = &config.state.path;
    if !path.exists() {
        return Check::ok(
            "state file",
            format!("{} does not exist yet: an empty queue", path.display()),
        );
    }
    let store = Store::new(path.clone());
    match store.load() {
        Ok(state) => {
            let counts: Vec<String> = TicketStatus::ALL
                .iter()
                .map(|s| {
                    let n = state.tickets.values().filter(|t| t.status == *s).count();
                    format!("{n} {s}")
                })
                .collect();
            Check::ok(
                "state file",
                format!("{}: {}", path.display(), counts.join(", ")),
            )
        }
        Err(e) => Check::fail(
            "state file",
            format!("{e:#}"),
            format!(
                "plane-orch never overwrites it: repair it, or move it aside and copy {} over it",
                store.backup_path().display()
            ),
        ),
    }
}

fn plane_settings(config: &Config) -> Check {
    let where_ = config.path.display();
    if config.plane.workspace_slug.is_empty() {
        return Check::fail(
            "plane settings",
            "plane.workspace_slug is empty: polling is off",
            format!("set plane.workspace_slug (the workspace's name in its URLs) in {where_}"),
        );
    }
    if config.plane.project_ids.is_empty() {
        return Check::fail(
            "plane settings",
            "plane.project_ids is empty: no project is watched",
            format!("add the UUIDs of the projects to watch to plane.project_ids in {where_}"),
        );
    }
    Check::ok(
        "plane settings",
        format!(
            "workspace {}, {} project(s) at {}",
            config.plane.workspace_slug,
            config.plane.project_ids.len(),
            config.plane.base_url
        ),
    )
}

fn plane_key(config: &Config) -> Check {
    let var = &config.plane.api_key_env;
    let in_env = std::env::var(var).is_ok_and(|k| !k.trim().is_empty());
    if in_env {
        Check::ok("plane key", format!("${var} is set"))
    } else if config.plane.api_key_in_file.is_some() {
        Check::ok(
            "plane key",
            format!("kept in the config file (${var} is not set; see the warning above)"),
        )
    } else {
        Check::fail(
            "plane key",
            format!("${var} is not set"),
            format!(
                "export {var}=<your key> (Plane: Profile settings > Personal Access Tokens); for cron and \
                 systemd, set it in the job's environment"
            ),
        )
    }
}

/// Runs a program and returns its trimmed stdout, or a message saying why it did not run.
fn output_of(program: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{program} is not on PATH"))
        }
        Err(e) => Err(format!("cannot run {program}: {e}")),
    }
}

fn git(config: &Config) -> Check {
    let version = match output_of("git", &["--version"]) {
        Ok(v) => v,
        Err(e) => return Check::fail("git", e, "install git (e.g. apt install git)"),
    };
    let repo = &config.automation.repo_path;
    let fix = format!(
        "set automation.repo_path to a git repository, or run `git init` in {}",
        repo.display()
    );
    if !repo.is_dir() {
        return Check::fail("git", format!("{} is not a folder", repo.display()), fix);
    }
    let repo_arg = repo.to_string_lossy();
    if let Err(e) = output_of(
        "git",
        &["-C", &repo_arg, "rev-parse", "--is-inside-work-tree"],
    ) {
        return Check::fail(
            "git",
            format!("{} is not a git repository: {e}", repo.display()),
            fix,
        );
    }
    if config.automation.worktrees
        && output_of(
            "git",
            &["-C", &repo_arg, "rev-parse", "--verify", "--quiet", "HEAD"],
        )
        .is_err()
    {
        return Check::fail(
            "git",
            format!(
                "{} has no commit yet; worktrees branch from HEAD",
                repo.display()
            ),
            format!("make a first commit in {}", repo.display()),
        );
    }
    Check::ok(
        "git",
        format!("{version}; {} is a repository", repo.display()),
    )
}

fn worker(config: &Config) -> Check {
    let path = &config.automation.worker;
    let fix_missing = "set automation.worker to the worker script (scripts/claude-ticket-worker in the repository)";
    match std::fs::metadata(path) {
        Err(e) => Check::fail("worker", format!("{}: {e}", path.display()), fix_missing),
        Ok(m) if !m.is_file() => Check::fail(
            "worker",
            format!("{} is not a file", path.display()),
            fix_missing,
        ),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Check::fail(
            "worker",
            format!("{} is not executable", path.display()),
            format!("chmod +x {}", path.display()),
        ),
        Ok(_) => Check::ok("worker", format!("{} is executable", path.display())),
    }
}

fn completion_folder(config: &Config) -> Check {
    let dir = &config.completion.dir;
    match std::fs::metadata(dir) {
        Err(_) => Check::warn(
            "completion folder",
            format!("{} does not exist", dir.display()),
            format!("mkdir -m 700 {}", dir.display()),
        ),
        Ok(m) if !m.is_dir() => Check::fail(
            "completion folder",
            format!("{} is not a folder", dir.display()),
            "point completion.dir at a private folder",
        ),
        Ok(m) if m.permissions().mode() & 0o022 != 0 => Check::fail(
            "completion folder",
            format!(
                "{} is writable by others (mode {:o}): anyone could complete a ticket",
                dir.display(),
                m.permissions().mode() & 0o777
            ),
            format!("chmod 700 {}", dir.display()),
        ),
        Ok(m) => Check::ok(
            "completion folder",
            format!(
                "{} is private (mode {:o})",
                dir.display(),
                m.permissions().mode() & 0o777
            ),
        ),
    }
}

fn session_backend(config: &Config) -> Check {
    let (name, fix) = match config.sessions.backend {
        Backend::Tmux => (
            "tmux",
            "install tmux (e.g. apt install tmux), or set sessions.backend: service".to_string(),
        ),
        Backend::Service => (
            "session service",
            format!(
                "start tmux-session-service at {}, or fix sessions.service_url, or set \
                 sessions.backend: tmux",
                config.sessions.service_url
            ),
        ),
    };
    match crate::session::probe(config) {
        Ok(what) => Check::ok(name, what),
        Err(e) => Check::fail(name, format!("{e:#}"), fix),
    }
}

fn complete_command(config: &Config) -> Check {
    let dir = &config.automation.claude_dir;
    let skill = dir.join(".claude/skills/complete/SKILL.md");
    let settings = dir.join("settings.json");
    let missing: Vec<String> = [&skill, &settings]
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        Check::ok("/complete", format!("installed in {}", dir.display()))
    } else {
        Check::warn(
            "/complete",
            format!("not installed yet: {} missing", missing.join(" and ")),
            "plane-orch writes them when it starts a session: approve a ticket \
             (`plane-orch approve ID`)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_prints_its_fix_on_the_next_line() {
        let c = Check::fail("tmux", "tmux is not on PATH", "install tmux");
        assert_eq!(
            c.to_string(),
            "✗ tmux              tmux is not on PATH\n    fix: install tmux"
        );
        assert_eq!(Check::ok("git", "ok").to_string(), "✓ git               ok");
    }

    #[test]
    fn long_lines_wrap_at_spaces_under_their_text() {
        let c = Check::fail(
            "agent",
            "claude-nope (automation.agent_command) is not on the PATH sessions get",
            "install it, or set automation.agent_command to the agent's absolute path",
        );
        let text = c.render(Some(50));
        assert_eq!(
            text,
            "✗ agent             claude-nope\n                    \
             (automation.agent_command) is\n                    not on the PATH sessions \
             get\n    fix: install it, or set\n         \
             automation.agent_command to the agent's\n         absolute path"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= 50, "{line:?}");
        }
        // Unwrapped, every word is kept in order.
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(words(&text), words(&c.render(None)));
    }

    #[test]
    fn a_folder_under_a_file_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let c = writable_folder("data folder", &file.join("data"), "state.path");
        assert_eq!(c.status, Status::Fail, "{c}");
        let c = writable_folder("data folder", &dir.path().join("a/b"), "state.path");
        assert_eq!(c.status, Status::Ok, "{c}");
        assert!(
            !dir.path().join("a").exists(),
            "doctor must not create folders"
        );
    }
}
