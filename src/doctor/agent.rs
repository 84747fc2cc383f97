//! The checks of what a session meets when it starts: the agent program on the PATH the
//! session will have, Claude Code's own config (first-run set-up done, a login), the same
//! Claude config folder for plane-orch and the sessions, hooks that call an existing binary,
//! and a systemd unit for `serve` that leaves sessions alone when it restarts.
//!
//! "The environment sessions will have" is the running tmux server's global environment: tmux
//! gives every new session that one (plus plane-orch's `-e` variables), not the environment of
//! the command that asked for it. With no server running, the next one starts with the
//! environment of whoever starts it, which is this one.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Check;
use crate::config::{Backend, Config};
use crate::session::{claude, tmux};

/// The environment a new session will start with, and where it comes from.
pub struct SessionEnv {
    vars: HashMap<String, String>,
    /// For messages: "the tmux server's environment" or "this environment".
    source: &'static str,
    /// Whether it is a running tmux server's (so it may differ from this process's).
    from_server: bool,
}

impl SessionEnv {
    /// Asks the tmux server when one runs (tmux backend); otherwise this process's own.
    #[must_use]
    pub fn discover(config: &Config) -> SessionEnv {
        let server = match config.sessions.backend {
            Backend::Tmux => tmux::server_environment().ok().flatten(),
            Backend::Service => None,
        };
        match server {
            Some(vars) => SessionEnv {
                vars: vars.into_iter().collect(),
                source: "the running tmux server's environment",
                from_server: true,
            },
            None => SessionEnv::of_this_process(),
        }
    }

    fn of_this_process() -> SessionEnv {
        SessionEnv {
            vars: std::env::vars().collect(),
            source: "this environment",
            from_server: false,
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Claude Code's config file as the session will read it.
    fn claude_json(&self) -> Option<PathBuf> {
        match self.get("CLAUDE_CONFIG_DIR") {
            Some(dir) => Some(Path::new(dir).join(".claude.json")),
            None => self.get("HOME").map(|h| Path::new(h).join(".claude.json")),
        }
    }

    /// Claude Code's config folder (where `.credentials.json` lives).
    fn claude_dir(&self) -> Option<PathBuf> {
        match self.get("CLAUDE_CONFIG_DIR") {
            Some(dir) => Some(PathBuf::from(dir)),
            None => self.get("HOME").map(|h| Path::new(h).join(".claude")),
        }
    }
}

/// Every agent check, in order.
#[must_use]
pub fn checks(config: &Config) -> Vec<Check> {
    let env = SessionEnv::discover(config);
    let mut checks = vec![agent(config, &env)];
    if is_claude(&config.automation.agent_command) {
        checks.push(claude_config(config, &env));
    }
    checks.extend(hooks(config));
    checks.extend(serve_unit());
    checks
}

/// Whether the agent is Claude Code (whose config plane-orch knows how to read).
fn is_claude(command: &str) -> bool {
    Path::new(command)
        .file_name()
        .is_some_and(|n| n == "claude")
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where `command` resolves on `path` (a `:`-separated list), as a shell would find it.
fn find_on(path: &str, command: &str) -> Option<PathBuf> {
    if command.contains('/') {
        let p = PathBuf::from(command);
        return is_executable(&p).then_some(p);
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(command))
        .find(|p| is_executable(p))
}

fn agent(config: &Config, env: &SessionEnv) -> Check {
    const NAME: &str = "agent";
    let command = &config.automation.agent_command;
    let session_path = env.get("PATH").unwrap_or("");
    if let Some(found) = find_on(session_path, command) {
        let detail = if command.contains('/') {
            format!("{} is executable", found.display())
        } else {
            format!(
                "{command} is {} (on the PATH of {})",
                found.display(),
                env.source
            )
        };
        return Check::ok(NAME, detail);
    }
    let install = if is_claude(command) {
        "install Claude Code (npm install -g @anthropic-ai/claude-code)"
    } else {
        "install it"
    };
    if command.contains('/') {
        return Check::fail(
            NAME,
            format!("{command} (automation.agent_command) is not an executable file"),
            format!("{install}, or set automation.agent_command to the agent's absolute path"),
        );
    }
    let here = std::env::var("PATH").ok();
    let elsewhere = here
        .as_deref()
        .filter(|_| env.from_server)
        .and_then(|p| find_on(p, command));
    let fix = match elsewhere {
        Some(p) => format!(
            "it is on this shell's PATH ({}), but the running tmux server started with another \
             PATH: set automation.agent_command: {} (or restart the tmux server from this shell, \
             which ends its sessions)",
            p.display(),
            p.display()
        ),
        None => format!(
            "{install}, or set automation.agent_command to the agent's absolute path (sessions \
             get the PATH of {})",
            env.source
        ),
    };
    Check::fail(
        NAME,
        format!(
            "{command} (automation.agent_command) is not on the PATH sessions get \
             ({}: PATH={session_path})",
            env.source
        ),
        fix,
    )
}

/// How Claude Code will log in, when that can be told without the network.
fn login(doc: &Value, env: &SessionEnv) -> Option<String> {
    for var in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
    ] {
        if env.get(var).is_some() {
            return Some(format!("${var} is set"));
        }
    }
    if doc.get("oauthAccount").is_some_and(Value::is_object) {
        return Some("logged in to a Claude account".into());
    }
    if doc.get("primaryApiKey").is_some_and(Value::is_string) {
        return Some("an API key is stored".into());
    }
    let credentials = env.claude_dir()?.join(".credentials.json");
    credentials
        .is_file()
        .then(|| format!("credentials in {}", credentials.display()))
}

fn claude_config(config: &Config, env: &SessionEnv) -> Check {
    const NAME: &str = "claude config";
    let Some(path) = env.claude_json() else {
        return Check::fail(
            NAME,
            format!(
                "neither CLAUDE_CONFIG_DIR nor HOME is set in {}",
                env.source
            ),
            "run plane-orch (and tmux) with HOME set",
        );
    };
    let shown = path.display();
    let with_dir = env
        .get("CLAUDE_CONFIG_DIR")
        .map(|d| format!("CLAUDE_CONFIG_DIR={d} "))
        .unwrap_or_default();
    let run_once = format!(
        "run `{with_dir}claude` once in a terminal and finish its set-up (theme, login, the \
         terms); it needs the network"
    );
    let doc: Value = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::fail(
                NAME,
                format!(
                    "{shown} does not exist: Claude Code never ran with the config sessions \
                     read, so they would stop at its first-run screen"
                ),
                run_once,
            )
        }
        Err(e) => return Check::fail(NAME, format!("cannot read {shown}: {e}"), run_once),
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return Check::fail(
                    NAME,
                    format!("{shown} is not JSON ({e})"),
                    format!("repair it, or move it aside and {run_once}"),
                )
            }
        },
    };
    if doc.get("hasCompletedOnboarding") != Some(&Value::Bool(true)) {
        return Check::fail(
            NAME,
            format!(
                "{shown} shows Claude Code's first-run set-up was never finished: sessions \
                 would stop at its first-run screen"
            ),
            run_once,
        );
    }
    // plane-orch writes the folder-trust entries with its own environment; the session reads
    // with the server's. Both must name the same file.
    if config.automation.trust_worktrees {
        if let Some(ours) = claude::claude_config_path() {
            if ours != path {
                return Check::fail(
                    NAME,
                    format!(
                        "plane-orch marks worktrees trusted in {}, but sessions read {shown} \
                         (CLAUDE_CONFIG_DIR differs between this environment and {})",
                        ours.display(),
                        env.source
                    ),
                    match env.get("CLAUDE_CONFIG_DIR") {
                        Some(d) => format!(
                            "export CLAUDE_CONFIG_DIR={d} for plane-orch too (and in the env \
                             file of cron and systemd)"
                        ),
                        None => "unset CLAUDE_CONFIG_DIR for plane-orch, or restart the tmux \
                                 server with it set (which ends its sessions)"
                            .to_string(),
                    },
                );
            }
        }
    }
    match login(&doc, env) {
        Some(how) => Check::ok(NAME, format!("{shown}: set up; {how}")),
        None => Check::warn(
            NAME,
            format!(
                "{shown}: set up, but no login found (no Claude account, no stored key, no \
                 $ANTHROPIC_API_KEY): sessions may show \"Not logged in\""
            ),
            format!("run `{with_dir}claude` in a terminal and type /login"),
        ),
    }
}

/// The binaries the hooks in `claude_dir/settings.json` call, with the hook's command.
fn hook_binaries(settings: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(events) = settings.get("hooks").and_then(Value::as_object) else {
        return out;
    };
    for groups in events.values().filter_map(Value::as_array) {
        for group in groups {
            let hooks = group.get("hooks").and_then(Value::as_array);
            for hook in hooks.into_iter().flatten() {
                let Some(command) = hook.get("command").and_then(Value::as_str) else {
                    continue;
                };
                // Hook commands run through a shell; ours are `'<binary>' hook <name>`.
                if let Some(words) = shlex::split(command) {
                    if words.get(1).map(String::as_str) == Some("hook") {
                        out.push((words[0].clone(), command.to_string()));
                    }
                }
            }
        }
    }
    out
}

fn hooks(config: &Config) -> Option<Check> {
    const NAME: &str = "hooks";
    let path = claude::settings_path(&config.automation.claude_dir);
    // Missing: the /complete check says so already.
    let bytes = std::fs::read(&path).ok()?;
    let refresh = "it is rewritten at every approve and restart; sessions running now keep the \
                   old hooks: end them and `plane-orch restart ID`";
    let settings: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return Some(Check::fail(
                NAME,
                format!("{} is not JSON ({e})", path.display()),
                refresh,
            ))
        }
    };
    let binaries = hook_binaries(&settings);
    if binaries.is_empty() {
        return Some(Check::warn(
            NAME,
            format!(
                "{} has no plane-orch hooks: /complete would not be recorded",
                path.display()
            ),
            refresh,
        ));
    }
    for (bin, command) in &binaries {
        if !is_executable(Path::new(bin)) {
            return Some(Check::fail(
                NAME,
                format!(
                    "{} runs `{command}`, but {bin} is not an executable file: /complete would \
                     fail",
                    path.display()
                ),
                refresh,
            ));
        }
    }
    Some(Check::ok(
        NAME,
        format!("{} calls {}", path.display(), binaries[0].0),
    ))
}

/// The folders systemd reads units from that a person installs into.
fn unit_folders() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => dirs.push(PathBuf::from(d).join("systemd/user")),
        None => {
            if let Some(h) = std::env::var_os("HOME") {
                dirs.push(PathBuf::from(h).join(".config/systemd/user"));
            }
        }
    }
    dirs.push("/etc/systemd/user".into());
    dirs.push("/etc/systemd/system".into());
    dirs
}

/// The last value of `key=` in `[Service]` lines of a unit file's text.
fn unit_value(text: &str, key: &str) -> Option<String> {
    let mut value = None;
    for line in text.lines() {
        if let Some((k, v)) = line.trim().split_once('=') {
            if k.trim() == key {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
}

/// An installed unit that runs `plane-orch serve` without `KillMode=process`: restarting it
/// would end every tmux server (and so every session) that serve started, since they live in
/// the unit's cgroup. Nothing when no such unit is installed.
fn serve_unit() -> Option<Check> {
    const NAME: &str = "serve unit";
    for dir in unit_folders() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        for unit in names {
            if unit.extension().is_none_or(|e| e != "service") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&unit) else {
                continue;
            };
            let runs_serve = unit_value(&text, "ExecStart").is_some_and(|e| {
                e.contains("plane-orch") && e.split_whitespace().any(|w| w == "serve")
            });
            if !runs_serve {
                continue;
            }
            // Drop-ins (`<unit>.d/*.conf`) come after the unit and win.
            let mut kill_mode = unit_value(&text, "KillMode");
            let dropins = PathBuf::from(format!("{}.d", unit.display()));
            if let Ok(entries) = std::fs::read_dir(&dropins) {
                let mut confs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                confs.sort();
                for conf in confs
                    .iter()
                    .filter(|c| c.extension().is_some_and(|e| e == "conf"))
                {
                    if let Some(v) = std::fs::read_to_string(conf)
                        .ok()
                        .and_then(|t| unit_value(&t, "KillMode"))
                    {
                        kill_mode = Some(v);
                    }
                }
            }
            return Some(match kill_mode.as_deref() {
                Some("process") => Check::ok(
                    NAME,
                    format!(
                        "{} keeps sessions alive across restarts (KillMode=process)",
                        unit.display()
                    ),
                ),
                other => Check::fail(
                    NAME,
                    format!(
                        "{} runs serve with KillMode={}: restarting it would end every session \
                         serve started",
                        unit.display(),
                        other.unwrap_or("control-group (the default)")
                    ),
                    format!(
                        "add KillMode=process under [Service] in {} (as in \
                         scripts/systemd/plane-orch-serve.service), then `systemctl --user \
                         daemon-reload`",
                        unit.display()
                    ),
                ),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_binaries_are_read_from_quoted_commands() {
        let settings = claude::settings(Path::new("/opt/my tools/plane-orch"));
        let found = hook_binaries(&settings);
        assert_eq!(found.len(), claude::HOOKS.len(), "{found:?}");
        assert!(found.iter().all(|(b, _)| b == "/opt/my tools/plane-orch"));
        assert!(hook_binaries(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn the_last_kill_mode_wins() {
        let text = "[Service]\nKillMode=mixed\nExecStart=/x/plane-orch serve\nKillMode = process\n";
        assert_eq!(unit_value(text, "KillMode").as_deref(), Some("process"));
        assert_eq!(unit_value("[Service]\n", "KillMode"), None);
    }

    #[test]
    fn commands_are_found_as_a_shell_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("claude");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("/nonexistent::{}", dir.path().display());
        assert_eq!(find_on(&path, "claude"), Some(bin.clone()));
        assert_eq!(find_on("/nonexistent", "claude"), None);
        assert_eq!(find_on("", &bin.display().to_string()), Some(bin));
    }
}
