//! Sending one message to one sink. Every answer and error is told without the sink's URL
//! (a Slack or ntfy URL is itself a secret) and without any secret's value.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::config::{Sink, Target};
use super::Notification;

/// How long one delivery may take; a sink slower than this failed and is retried later.
const DEADLINE: Duration = Duration::from_secs(10);

/// The header a webhook receiver checks: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Plane-Orch-Signature";

/// Sends `note` to `sink`. `Ok` carries what the sink answered (`HTTP 200`, `exit 0`), `Err`
/// why it failed; both are safe to log.
pub fn deliver(sink: &Sink, note: &Notification, secret_vars: &[String]) -> Result<String, String> {
    match &sink.target {
        Target::Webhook { url, secret_env } => {
            let body = serde_json::to_vec(&webhook_body(note)).map_err(|e| e.to_string())?;
            let mut headers = vec![
                ("X-Plane-Orch-Event", note.event.as_str().to_string()),
                ("X-Plane-Orch-Delivery", note.event_id.clone()),
            ];
            if let Some(var) = secret_env {
                let secret = read_secret(var)?;
                headers.push((SIGNATURE_HEADER, signature(secret.as_bytes(), &body)));
            }
            post(url, &body, &headers)
        }
        Target::Ntfy { url, token_env } => {
            let (base, topic) = url
                .rsplit_once('/')
                .filter(|(b, t)| !t.is_empty() && b.contains("://") && !b.ends_with('/'))
                .ok_or_else(|| {
                    "the ntfy url must end with the topic: https://HOST/TOPIC".to_string()
                })?;
            let mut body = json!({
                "topic": topic,
                "title": note.title,
                "message": note.message,
                "tags": [note.event.as_str()],
            });
            if let Some(link) = &note.link {
                body["click"] = Value::String(link.clone());
            }
            let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            let mut headers = Vec::new();
            if let Some(var) = token_env {
                headers.push(("Authorization", format!("Bearer {}", read_secret(var)?)));
            }
            post(&format!("{base}/"), &body, &headers).map_err(|e| scrub(&e, url))
        }
        Target::Slack { url } => {
            let body = serde_json::to_vec(&slack_body(note)).map_err(|e| e.to_string())?;
            post(url, &body, &[])
        }
        Target::Command { argv } => run(argv, note, secret_vars),
    }
}

/// The JSON a webhook receives: the message, its first ticket as `ticket` and all of them as
/// `tickets` (a `queued` message lists every new ticket).
#[must_use]
pub fn webhook_body(note: &Notification) -> Value {
    json!({
        "event": note.event.as_str(),
        "event_id": note.event_id,
        "time": note.time,
        "title": note.title,
        "message": note.message,
        "link": note.link,
        "ticket": note.tickets.first(),
        "tickets": note.tickets,
    })
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
#[must_use]
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Slack's mrkdwn gives `&`, `<` and `>` meaning: ticket text is escaped so it stays text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack_body(note: &Notification) -> Value {
    let headline = match &note.link {
        // A link's URL cannot hold `|` or `>` unescaped; ours are http(s) URLs we built.
        Some(link) => format!(
            "*<{}|{}>*",
            link.replace('|', "%7C").replace('>', "%3E"),
            slack_escape(&note.title)
        ),
        None => format!("*{}*", slack_escape(&note.title)),
    };
    json!({
        // The fallback text of notifications is read as mrkdwn too.
        "text": slack_escape(&format!("{}: {}", note.title, note.message)),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&note.message)}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("plane-orch · {}", note.event.as_str())}
            ]}
        ]
    })
}

fn read_secret(var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!(
            "the secret variable {var} is not set in plane-orch's environment"
        )),
    }
}

/// The one HTTP policy of notifications: a short deadline, no redirects (a redirect could
/// carry the body elsewhere), any status read as an answer.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(DEADLINE))
        .max_redirects(0)
        .user_agent(concat!("plane-orch/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn post(url: &str, body: &[u8], headers: &[(&str, String)]) -> Result<String, String> {
    let mut rq = agent().post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        rq = rq.header(*name, value);
    }
    match rq.send(body) {
        Ok(resp) if resp.status().is_success() => Ok(format!("HTTP {}", resp.status().as_u16())),
        Ok(resp) => Err(format!("the sink answered HTTP {}", resp.status().as_u16())),
        Err(e) => Err(scrub(&format!("no answer: {e}"), url)),
    }
}

/// Removes the URL (and its path, where a secret usually is) from a message.
fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "(the sink's URL)");
    if let Some((_, rest)) = url.split_once("://") {
        out = out.replace(rest, "(the sink's URL)");
        if let Some((_, path)) = rest.split_once('/') {
            if !path.is_empty() {
                out = out.replace(path, "…");
            }
        }
    }
    out
}

/// Replaces `{event}`, `{id}`, `{title}`, `{status}`, `{message}` and `{link}` in one
/// argument, in one pass: text put in is never looked at again.
fn expand(arg: &str, note: &Notification) -> String {
    let first = note.tickets.first();
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let value = [
            "{event}",
            "{id}",
            "{title}",
            "{status}",
            "{message}",
            "{link}",
            "{headline}",
        ]
        .into_iter()
        .find(|p| after.starts_with(p))
        .map(|p| {
            let v = match p {
                "{event}" => note.event.as_str().to_string(),
                "{id}" => first.map(|t| t.id.clone()).unwrap_or_default(),
                "{title}" => first.map(|t| t.title.clone()).unwrap_or_default(),
                "{status}" => first.map(|t| t.status.clone()).unwrap_or_default(),
                "{message}" => note.message.clone(),
                "{link}" => note.link.clone().unwrap_or_default(),
                _ => note.title.clone(),
            };
            (p.len(), v)
        });
        match value {
            Some((len, v)) => {
                out.push_str(&v);
                rest = &after[len..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Runs a command sink: the program with its arguments expanded, never through a shell; the
/// message in `PLANE_ORCH_EVENT_*` variables and on stdin as the webhook's JSON.
fn run(argv: &[String], note: &Notification, secret_vars: &[String]) -> Result<String, String> {
    let first = note.tickets.first();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(argv[1..].iter().map(|a| expand(a, note)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for var in secret_vars {
        cmd.env_remove(var);
    }
    let json = serde_json::to_string(&webhook_body(note)).unwrap_or_default();
    let vars = [
        ("PLANE_ORCH_EVENT", note.event.as_str().to_string()),
        ("PLANE_ORCH_EVENT_ID", note.event_id.clone()),
        ("PLANE_ORCH_EVENT_TIME", note.time.to_rfc3339()),
        ("PLANE_ORCH_EVENT_TITLE", note.title.clone()),
        ("PLANE_ORCH_EVENT_MESSAGE", note.message.clone()),
        (
            "PLANE_ORCH_EVENT_LINK",
            note.link.clone().unwrap_or_default(),
        ),
        (
            "PLANE_ORCH_EVENT_TICKET",
            first.map(|t| t.id.clone()).unwrap_or_default(),
        ),
        (
            "PLANE_ORCH_EVENT_TICKET_TITLE",
            first.map(|t| t.title.clone()).unwrap_or_default(),
        ),
        (
            "PLANE_ORCH_EVENT_STATUS",
            first.map(|t| t.status.clone()).unwrap_or_default(),
        ),
        ("PLANE_ORCH_EVENT_JSON", json),
    ];
    for (k, v) in vars {
        // A NUL cannot be in an environment variable; it is never in JSON-decoded ticket
        // text that matters, so it is dropped rather than failing the delivery.
        cmd.env(k, v.replace('\0', ""));
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.by_ref().take(4096).read_to_string(&mut err);
                }
                return if status.success() {
                    Ok("exit 0".into())
                } else {
                    let line = err.lines().next().unwrap_or("").trim();
                    Err(format!(
                        "{} exited with {status}{}{line}",
                        argv[0],
                        if line.is_empty() { "" } else { ": " }
                    ))
                };
            }
            Ok(None) if started.elapsed() > DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not finish within {} s: stopped",
                    argv[0],
                    DEADLINE.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for {}: {e}", argv[0])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{EventKind, TicketFacts};

    fn note(title: &str) -> Notification {
        Notification {
            event_id: "e1".into(),
            event: EventKind::Waiting,
            time: crate::ticket::now(),
            title: "A-1 is waiting for you".into(),
            message: "m".into(),
            link: None,
            tickets: vec![TicketFacts {
                id: "A-1".into(),
                title: title.into(),
                status: "active".into(),
                activity: None,
                cost: None,
                summary: None,
                link: None,
                url: None,
            }],
        }
    }

    #[test]
    fn placeholders_expand_once() {
        let n = note("{id} and {title} $(x)");
        assert_eq!(expand("t={title}", &n), "t={id} and {title} $(x)");
        assert_eq!(expand("{nope}{id}{", &n), "{nope}A-1{");
    }

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls_are_scrubbed() {
        let url = "https://hooks.slack.com/services/T0/B0/SECRET";
        let msg = scrub(&format!("no answer: bad uri {url}"), url);
        assert!(!msg.contains("SECRET"), "{msg}");
        let msg = scrub(
            "io error: hooks.slack.com/services/T0/B0/SECRET refused",
            url,
        );
        assert!(!msg.contains("SECRET"), "{msg}");
    }

    #[test]
    fn slack_text_is_escaped() {
        let mut n = note("x");
        n.title = "<!channel> & <http://evil|click>".into();
        let body = slack_body(&n).to_string();
        assert!(!body.contains("<!channel>"), "{body}");
        assert!(body.contains("&lt;!channel&gt;"), "{body}");
    }
}
