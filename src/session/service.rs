//! The `service` backend: tmux-session-service over HTTP (session-service.md). It has no
//! working-directory field and runs `command` through a shell, so the command is built with
//! every value single-quoted.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use serde_json::json;

use crate::config::Config;
use crate::error::Error;

use super::{removed_vars, session_env, SessionSpec};

/// Quotes a value for a POSIX shell: `'...'`, with each `'` written as `'\''`.
#[must_use]
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `cd '<workdir>' && exec env NAME='value' ... '<worker>' '<ID>'`.
///
/// # Errors
/// The path of plane-orch itself is unknown.
pub fn command_line(config: &Config, spec: &SessionSpec) -> Result<String> {
    let mut line = format!(
        "cd {} && exec env",
        shell_quote(&spec.workdir.display().to_string())
    );
    // The service's shell may hold the secrets: `env -u` removes them before the worker runs.
    for name in removed_vars(config) {
        line.push_str(&format!(" -u {}", shell_quote(name)));
    }
    for (key, value) in session_env(config, spec)? {
        // Keys are fixed names of ours; only values need quoting.
        line.push_str(&format!(" {key}={}", shell_quote(&value)));
    }
    line.push_str(&format!(
        " {} {}",
        shell_quote(&config.automation.worker.display().to_string()),
        shell_quote(spec.ticket.as_str())
    ));
    Ok(line)
}

/// How long one call to the service may take, connecting included: it answers in
/// milliseconds, and one that does not is down or stuck.
pub const DEADLINE: Duration = Duration::from_secs(5);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(Some(DEADLINE))
        .http_status_as_error(false)
        .build()
        .into()
}

fn unreachable(config: &Config, e: &ureq::Error) -> anyhow::Error {
    Error::Session(format!(
        "tmux-session-service at {} cannot be reached ({e}): start it or fix sessions.service_url",
        config.sessions.service_url
    ))
    .into()
}

/// A GET that must answer 200; its body.
fn get_ok(config: &Config, agent: &ureq::Agent, url: &str, what: &str) -> Result<String> {
    let mut resp = agent.get(url).call().map_err(|e| unreachable(config, &e))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    if status == 200 {
        Ok(text)
    } else {
        Err(refused(what, status, &text))
    }
}

fn refused(what: &str, status: u16, body: &str) -> anyhow::Error {
    let body: String = body.trim().chars().take(300).collect();
    Error::Session(format!(
        "tmux-session-service refused to {what}: HTTP {status} {body}"
    ))
    .into()
}

/// What `GET /health` of tmux-session-service says.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    tmux_available: Option<bool>,
    #[serde(default)]
    tmux_version: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The service's own health: answering, and with tmux available.
///
/// # Errors
/// `Error::Session` when the service cannot be reached, answers an error, or has no tmux.
pub fn probe(config: &Config) -> Result<String> {
    let base = &config.sessions.service_url;
    let url = format!("{base}/health");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    let text = get_ok(config, &agent, &url, "report its health")?;
    // Only an explicit "no" counts against it: an older service may say less.
    let health: Health = serde_json::from_str(&text).unwrap_or(Health {
        ok: None,
        tmux_available: None,
        tmux_version: None,
        error: None,
    });
    if health.ok == Some(false) || health.tmux_available == Some(false) {
        let why = health
            .error
            .unwrap_or_else(|| "tmux is not available".into());
        return Err(Error::Session(format!("tmux-session-service at {base}: {why}")).into());
    }
    Ok(format!(
        "tmux-session-service at {base} ({})",
        health.tmux_version.unwrap_or_else(|| "tmux".into())
    ))
}

/// `PUT /sessions/NAME` with `{sessionId, projectId, command}`.
///
/// # Errors
/// `Error::Session` when the service is down or refuses.
pub fn start(config: &Config, spec: &SessionSpec) -> Result<()> {
    let url = format!("{}/sessions/{}", config.sessions.service_url, spec.name);
    let body = json!({
        "sessionId": spec.name,
        "projectId": config.sessions.service_project_id,
        "command": command_line(config, spec)?,
    });
    let mut resp = agent()
        .put(&url)
        .send_json(&body)
        .map_err(|e| unreachable(config, &e))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        return Err(refused(&format!("start {}", spec.name), status, &text));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Sessions {
    sessions: Vec<ServiceSession>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSession {
    session_id: String,
    #[serde(default)]
    active: bool,
}

/// The sessions the service reports as `active` (tmux has them now).
///
/// # Errors
/// `Error::Session` when the service is down or answers something else.
pub fn live_sessions(config: &Config) -> Result<HashSet<String>> {
    let url = format!("{}/sessions", config.sessions.service_url);
    let text = get_ok(config, &agent(), &url, "list sessions")?;
    let list: Sessions = serde_json::from_str(&text).map_err(|e| {
        Error::Session(format!(
            "tmux-session-service at {} answered GET /sessions with something unexpected: {e}",
            config.sessions.service_url
        ))
    })?;
    Ok(list
        .sessions
        .into_iter()
        .filter(|s| s.active)
        .map(|s| s.session_id)
        .collect())
}

/// `DELETE /sessions/NAME`; a 404 means it is gone already.
///
/// # Errors
/// `Error::Session` when the service is down or refuses.
pub fn kill(config: &Config, name: &str) -> Result<()> {
    let url = format!("{}/sessions/{name}", config.sessions.service_url);
    let mut resp = agent()
        .delete(&url)
        .call()
        .map_err(|e| unreachable(config, &e))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) || status == 404 {
        return Ok(());
    }
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    Err(refused(&format!("kill {name}"), status, &text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive_a_shell() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
