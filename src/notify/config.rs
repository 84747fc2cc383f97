//! The `notify:` section of config.yaml: where messages go and which events each sink wants.
//! Read strictly, like the rest of the config: unknown keys, a sink without what its kind
//! needs, or an event name that does not exist are errors naming the key.

use std::time::Duration;

use serde::Deserialize;

use super::EventKind;

/// The validated `notify:` section.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// The dashboard's URL: each message links there (with `#ID`) when set, else to the
    /// ticket in Plane.
    pub link_base: Option<String>,
    /// At most one `waiting` message per ticket in this time, unless the question changes.
    pub repeat: Duration,
    /// The first retry of a failed delivery waits this long; each later one twice as long.
    pub retry_base: Duration,
    /// Deliveries to one sink are tried this many times, then given up and reported.
    pub max_attempts: u32,
    pub sinks: Vec<Sink>,
    /// Variables that hold secrets of plane-orch's own (the Plane key, the API token, each
    /// sink's secret): never passed on to a command sink.
    pub secret_vars: Vec<String>,
}

impl NotifyConfig {
    /// Whether any sink is configured: without one no outbox is kept at all.
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.sinks.is_empty()
    }
}

/// One place messages go.
#[derive(Debug, Clone, PartialEq)]
pub struct Sink {
    /// How the sink is named in output, `/health` and `notify test NAME`: the `name` key, else
    /// `KIND-N` (N counting from 1 in the file). Never the URL, which may hold a secret.
    pub name: String,
    pub target: Target,
    /// The events it wants; empty = all.
    pub events: Vec<EventKind>,
}

impl Sink {
    #[must_use]
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// What a sink is and what it needs to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A JSON POST, signed with HMAC-SHA256 when `secret_env` names a variable.
    Webhook {
        url: String,
        secret_env: Option<String>,
    },
    /// An ntfy topic URL; `token_env` names a variable holding an access token.
    Ntfy {
        url: String,
        token_env: Option<String>,
    },
    /// A Slack incoming-webhook URL (the URL itself is the secret).
    Slack { url: String },
    /// A program and its arguments, run without a shell.
    Command { argv: Vec<String> },
}

impl Target {
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Webhook { .. } => "webhook",
            Target::Ntfy { .. } => "ntfy",
            Target::Slack { .. } => "slack",
            Target::Command { .. } => "command",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawNotify {
    link_base: Option<String>,
    repeat_minutes: Option<u64>,
    retry_seconds: Option<u64>,
    max_attempts: Option<u32>,
    sinks: Vec<RawSink>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSink {
    kind: String,
    name: Option<String>,
    url: Option<String>,
    secret_env: Option<String>,
    token_env: Option<String>,
    command: Option<Vec<String>>,
    events: Option<Vec<String>>,
}

/// Validates the section; `http_url` is the config's own URL check.
pub(crate) fn validate(
    raw: RawNotify,
    http_url: impl Fn(&str, &str) -> Result<String, String>,
) -> Result<NotifyConfig, String> {
    let link_base = raw
        .link_base
        .filter(|s| !s.trim().is_empty())
        .map(|s| http_url("notify.link_base", &s))
        .transpose()?;
    let max_attempts = raw.max_attempts.unwrap_or(6);
    if max_attempts == 0 {
        return Err("notify.max_attempts: must be at least 1".into());
    }
    let mut sinks: Vec<Sink> = Vec::new();
    for (i, s) in raw.sinks.into_iter().enumerate() {
        let key = format!("notify.sinks[{i}]");
        let url = |s: &RawSink| -> Result<String, String> {
            let url = s
                .url
                .as_deref()
                .ok_or_else(|| format!("{key}.url: a {} sink needs a url", s.kind))?;
            http_url(&format!("{key}.url"), url)
        };
        let target = match s.kind.as_str() {
            "webhook" => Target::Webhook {
                url: url(&s)?,
                secret_env: env_name(&key, "secret_env", s.secret_env.as_deref())?,
            },
            "ntfy" => Target::Ntfy {
                url: url(&s)?,
                token_env: env_name(&key, "token_env", s.token_env.as_deref())?,
            },
            "slack" => Target::Slack { url: url(&s)? },
            "command" => {
                let argv = s.command.clone().unwrap_or_default();
                if argv.first().is_none_or(|p| p.trim().is_empty()) {
                    return Err(format!(
                        "{key}.command: a command sink needs a program, as a list: \
                         [/path/to/program, arg, ...]"
                    ));
                }
                Target::Command { argv }
            }
            other => {
                return Err(format!(
                    "{key}.kind: {other:?} is not one of webhook, ntfy, slack, command"
                ))
            }
        };
        let misplaced = match &target {
            Target::Command { .. } => s.url.is_some().then_some("url"),
            _ => s.command.is_some().then_some("command"),
        };
        if let Some(k) = misplaced {
            return Err(format!("{key}.{k}: not used by a {} sink", s.kind));
        }
        let events = s
            .events
            .unwrap_or_default()
            .iter()
            .map(|e| {
                EventKind::parse(e).ok_or_else(|| {
                    format!(
                        "{key}.events: {e:?} is not an event; the events are {}",
                        EventKind::ALL.map(EventKind::as_str).join(", ")
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let name = match s.name.map(|n| n.trim().to_string()) {
            Some(n) if !n.is_empty() => n,
            Some(_) => return Err(format!("{key}.name: must not be empty")),
            None => format!("{}-{}", target.kind(), i + 1),
        };
        if sinks.iter().any(|other| other.name == name) {
            return Err(format!("{key}.name: {name:?} names another sink too"));
        }
        sinks.push(Sink {
            name,
            target,
            events,
        });
    }
    Ok(NotifyConfig {
        link_base,
        repeat: Duration::from_secs(60 * raw.repeat_minutes.unwrap_or(30)),
        retry_base: Duration::from_secs(raw.retry_seconds.unwrap_or(10)),
        max_attempts,
        secret_vars: sinks
            .iter()
            .filter_map(|s| match &s.target {
                Target::Webhook { secret_env, .. } => secret_env.clone(),
                Target::Ntfy { token_env, .. } => token_env.clone(),
                _ => None,
            })
            .collect(),
        sinks,
    })
}

fn env_name(key: &str, field: &str, value: Option<&str>) -> Result<Option<String>, String> {
    match value.map(str::trim) {
        None => Ok(None),
        Some(v)
            if !v.is_empty()
                && v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                && !v.as_bytes()[0].is_ascii_digit() =>
        {
            Ok(Some(v.to_string()))
        }
        Some(v) => Err(format!(
            "{key}.{field}: {v:?} is not an environment variable name (the secret itself never \
             goes in the file: put it in a variable and name the variable here)"
        )),
    }
}
