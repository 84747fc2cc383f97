//! Generated state files, written as raw JSON in the version-1 layout (every ticket inside one
//! file, done ones included, each ticket's text twice and its approved snapshot in full).
//!
//! The bench writes the JSON itself rather than through the library's store, so that an older
//! binary and a newer one read the very same bytes, whatever the library's layout becomes:
//! a newer binary migrates its own copy on its first write, which the bench does before timing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};

/// Where a generated ticket is in the workflow: the statuses are the program's own, the
/// rest of a ticket is written here as the earlier format wrote it.
pub use plane_orch::ticket::Status;

const WORDS: &[&str] = &[
    "ticket",
    "session",
    "worktree",
    "branch",
    "summary",
    "review",
    "deploy",
    "cache",
    "index",
    "render",
    "parser",
    "client",
    "server",
    "timeout",
    "retry",
    "queue",
    "report",
    "export",
    "import",
    "schema",
    "migration",
    "dashboard",
    "metric",
    "login",
    "token",
    "config",
];

fn words(seed: usize, n: usize) -> String {
    (0..n)
        .map(|i| WORDS[(seed * 7 + i * 13 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn time(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// The id of generated ticket `i`.
pub fn id(i: usize) -> String {
    format!("BENCH-{i}")
}

/// Ticket `i` as the version-1 file holds it: a few sentences and a short list of text, the
/// events of every step up to `status`, the approved snapshot and session from approval on.
pub fn ticket(i: usize, status: Status, now: DateTime<Utc>) -> Value {
    let id = id(i);
    let text = format!(
        "{}.\n\n{}.\n{}.",
        words(i, 14),
        words(i + 1, 8),
        words(i + 2, 6)
    );
    let html = format!(
        "<p>{}.</p><ul><li>{}</li><li>{}</li></ul>",
        words(i, 14),
        words(i + 1, 8),
        words(i + 2, 6)
    );
    let title = format!("Fix the {} in {}", words(i, 3), words(i + 3, 2));
    let url = format!("https://plane.example/acme/browse/{id}/");
    let label = i % 3 == 0;
    let queued = now - TimeDelta::minutes(i64::try_from(i).unwrap_or(0) + 60);
    let mut events = vec![json!({
        "at": time(queued),
        "event": "queued",
        "detail": if label { "found in Plane (trigger label)" } else { "found in Plane (trigger state)" },
    })];
    let mut t = json!({
        "id": id,
        "issue_id": format!("00000000-0000-4000-8000-{i:012}"),
        "project_id": "5fdc458d-c727-4c57-b584-4b5c0e4f30f8",
        "title": title,
        "description_html": html,
        "description_text": text,
        "html_policy": 1,
        "url": url,
        "priority": "medium",
        "labels": ["claude", "backend"],
        "trigger_type": if label { "label" } else { "status_change" },
        "status": status.as_str(),
        "plane_created_at": null,
        "plane_updated_at": null,
        "queued_at": time(queued),
        "approved_at": null,
        "completed_at": null,
        "done_at": null,
        "approved_snapshot": null,
        "session": null,
        "summary": null,
        "last_error": null,
        "waiting": null,
        "session_lost_at": null,
        "plane_closed_at": null,
        "run_id": null,
        "plane_sync": {
            "comment_posted_at": null,
            "comment_id": null,
            "state_updated_at": null,
            "approve_state_set_at": null,
        },
    });
    let mut at = queued;
    let steps: &[Status] = match status {
        Status::Pending => &[],
        Status::Active => &[Status::Active],
        Status::Completed => &[Status::Active, Status::Completed],
        Status::Done => &[Status::Active, Status::Completed, Status::Done],
    };
    for step in steps {
        at += TimeDelta::minutes(5);
        match step {
            Status::Active => {
                t["approved_at"] = time(at);
                t["approved_snapshot"] = json!({
                    "title": t["title"],
                    "description_html": t["description_html"],
                    "description_text": t["description_text"],
                    "url": t["url"],
                });
                t["session"] = json!({
                    "name": format!("plane-{id}"),
                    "backend": "tmux",
                    "workdir": format!("/srv/repo/data/worktrees/{id}"),
                    "branch": format!("claude/{}", id.to_lowercase()),
                    "agent_session": format!("11111111-2222-4333-8444-{i:012}"),
                    "started_at": time(at),
                });
                t["run_id"] = json!(format!("22222222-2222-4333-8444-{i:012}"));
                events.push(json!({"at": time(at), "event": "approved", "detail": "bench"}));
            }
            Status::Completed => {
                t["completed_at"] = time(at);
                t["summary"] = json!(format!("Done: {}.", words(i + 4, 12)));
                events.push(json!({"at": time(at), "event": "completed", "detail": "bench"}));
            }
            Status::Done => {
                t["done_at"] = time(at);
                events.push(json!({"at": time(at), "event": "done", "detail": "bench"}));
            }
            Status::Pending => {}
        }
    }
    events.push(json!({
        "at": time(at),
        "event": "plane_changed",
        "detail": "title changed in Plane",
    }));
    t["events"] = Value::Array(events);
    t
}

/// The status of ticket `i` in a store of `total` tickets, `pending` of them pending (the
/// first ones) and the rest mostly done: 10 % active, 15 % completed, 75 % done.
pub fn mostly_done(i: usize, pending: usize) -> Status {
    if i < pending {
        return Status::Pending;
    }
    match i % 20 {
        0 | 1 => Status::Active,
        2..=4 => Status::Completed,
        _ => Status::Done,
    }
}

/// The status of open ticket `i`: half pending, a quarter active, a quarter completed.
pub fn open(i: usize) -> Status {
    match i % 4 {
        0 | 1 => Status::Pending,
        2 => Status::Active,
        _ => Status::Completed,
    }
}

/// Writes a version-1 state file holding tickets `0..total` with `status(i)`, one ticket a
/// line; returns its size in bytes.
pub fn write(path: &Path, total: usize, status: impl Fn(usize) -> Status) -> u64 {
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("the store's folder");
    let now = Utc::now();
    let file = std::fs::File::create(path).expect("create the store");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(b"{\"version\":1,\n\"tickets\":{\n")
        .expect("write the store");
    let mut line = String::new();
    for i in 0..total {
        line.clear();
        let t = ticket(i, status(i), now);
        let _ = writeln!(
            line,
            "{}:{}{}",
            Value::String(id(i)),
            t,
            if i + 1 < total { "," } else { "" }
        );
        out.write_all(line.as_bytes()).expect("write the store");
    }
    out.write_all(b"},\n\"dismissed\":{},\n\"generation\":0\n}\n")
        .expect("write the store");
    out.flush().expect("write the store");
    std::fs::metadata(path).expect("the store").len()
}

/// The ids of `0..total` whose status is `want`.
pub fn ids(total: usize, status: impl Fn(usize) -> Status, want: Status) -> Vec<usize> {
    (0..total).filter(|&i| status(i) == want).collect()
}
