//! A session's life after approve: lost and flagged by poll, restarted to resume the same
//! conversation, attached to, and ended with the ticket.

mod common;

use std::fs;

use common::sessions::{wait_for, Sessions};

fn count(events: &[String], name: &str) -> usize {
    events.iter().filter(|e| *e == name).count()
}

#[test]
fn a_killed_session_is_flagged_once_and_restart_resumes_the_same_conversation() {
    let s = Sessions::new();
    s.ok(&["add", "LOST-1", "--title", "Gets lost"]);
    s.ok(&["approve", "LOST-1"]);
    let first = s.agent_argv();
    let uuid = s.ticket("LOST-1")["session"]["agent_session"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(first.contains(&uuid));

    let out = s.ok(&["poll"]);
    assert!(out.contains("0 sessions lost"), "{out}");
    let err = s.fails(4, &["restart", "LOST-1"]);
    assert!(err.contains("still running"), "{err}");

    s.tmux.tmux(&["kill-session", "-t", "=plane-LOST-1"]);
    wait_for("the session to end", || !s.tmux.has("plane-LOST-1"));
    // An ended session's name is not shown as if it ran.
    let listed = s.ok(&["list"]);
    assert!(
        !listed.contains("plane-LOST-1") && listed.contains("- (session ended)"),
        "{listed}"
    );
    let report = common::json(&s.ok(&["poll", "--dry-run", "--json"]));
    assert_eq!(report["sessions_lost_ids"], serde_json::json!(["LOST-1"]));
    let out = s.ok(&["poll", "--dry-run"]);
    assert!(out.contains("1 sessions lost"), "{out}");
    assert_eq!(
        s.ticket("LOST-1")["session_lost_at"],
        serde_json::Value::Null
    );

    let out = s.ok(&["poll"]);
    assert_eq!(out.trim(), "0 queued, 0 completed, 1 sessions lost");
    let listed = s.ok(&["list"]);
    assert!(listed.contains("- (session lost)"), "{listed}");
    let t = s.ticket("LOST-1");
    assert_eq!(t["status"], "active");
    assert!(t["session_lost_at"].is_string());
    let out = s.ok(&["poll"]);
    assert!(out.contains("0 sessions lost"), "{out}");
    assert_eq!(count(&s.env.events("LOST-1"), "session_lost"), 1);

    let err = s.fails(4, &["attach", "LOST-1"]);
    assert!(err.contains("plane-orch restart LOST-1"), "{err}");

    fs::remove_file(s.fake.join("argv")).unwrap();
    let out = s.ok(&["restart", "LOST-1"]);
    assert!(out.contains("plane-LOST-1"), "{out}");
    let argv = s.agent_argv();
    let at = argv.iter().position(|a| a == "--resume").expect("--resume");
    assert_eq!(argv[at + 1], uuid);
    assert!(!argv.iter().any(|a| a == "--session-id"), "{argv:?}");
    assert_eq!(s.agent_env_var("PLANE_ORCH_RESTART").as_deref(), Some("1"));
    assert!(argv.last().unwrap().contains("restarted"), "{argv:?}");
    let t = s.ticket("LOST-1");
    assert_eq!(t["session_lost_at"], serde_json::Value::Null);
    assert_eq!(t["session"]["agent_session"], uuid.as_str());
    assert!(s.tmux.has("plane-LOST-1"));
    assert!(s.ok(&["list"]).contains("plane-LOST-1"));
    let events = s.env.events("LOST-1");
    assert_eq!(events.last().unwrap(), "session_restarted");
    let out = s.ok(&["poll"]);
    assert!(out.contains("0 sessions lost"), "{out}");
}

#[test]
fn a_completed_ticket_is_never_flagged_lost() {
    let s = Sessions::new();
    s.ok(&["add", "FIN-1", "--title", "Finishes"]);
    s.ok(&["approve", "FIN-1"]);
    s.agent_argv();
    s.ok(&["complete", "FIN-1", "all done"]);
    s.tmux.tmux(&["kill-session", "-t", "=plane-FIN-1"]);
    let out = s.ok(&["poll"]);
    assert!(out.contains("0 sessions lost"), "{out}");
    assert_eq!(count(&s.env.events("FIN-1"), "session_lost"), 0);
}

#[test]
fn restart_and_attach_refuse_what_they_cannot_do() {
    let s = Sessions::new();
    s.fails(3, &["restart", "NOPE-1"]);
    s.fails(3, &["attach", "NOPE-1"]);
    s.fails(2, &["attach", "../x"]);
    s.ok(&["add", "PEND-1", "--title", "Pending"]);
    let err = s.fails(4, &["restart", "PEND-1"]);
    assert!(err.contains("pending"), "{err}");
    let err = s.fails(4, &["attach", "PEND-1"]);
    assert!(err.contains("pending"), "{err}");
    s.ok(&["approve", "PEND-1", "--no-session"]);
    let err = s.fails(4, &["attach", "PEND-1"]);
    assert!(err.contains("without a session"), "{err}");
    let err = s.fails(4, &["restart", "PEND-1"]);
    assert!(err.contains("without a session"), "{err}");
    assert!(s.tmux.sessions().is_empty());
}

#[test]
fn remove_with_kill_session_ends_the_session_and_drops_the_ticket() {
    let s = Sessions::new();
    s.ok(&["add", "RM-1", "--title", "Remove me"]);
    s.ok(&["add", "RM-2", "--title", "Keep my session"]);
    s.agent_will_hold();
    s.ok(&["approve", "RM-1"]);
    s.ok(&["approve", "RM-2"]);
    wait_for("both sessions", || {
        s.tmux.has("plane-RM-1") && s.tmux.has("plane-RM-2")
    });
    let out = s.ok(&["remove", "RM-1", "--kill-session"]);
    assert!(out.contains("RM-1 removed"), "{out}");
    assert!(!s.tmux.has("plane-RM-1"));
    assert_eq!(s.ticket("RM-1"), serde_json::Value::Null);
    // Without the flag the session is left running.
    s.ok(&["remove", "RM-2"]);
    assert!(s.tmux.has("plane-RM-2"));
    s.fails(3, &["remove", "RM-1", "--kill-session"]);
}

#[test]
fn attach_connects_a_terminal_to_the_running_session() {
    let s = Sessions::new();
    s.ok(&["add", "ATT-1", "--title", "Attach"]);
    s.ok(&["approve", "ATT-1"]);
    s.agent_argv();
    // A terminal of its own: a pane of another session on the same server, outside tmux's
    // view of "inside" (TMUX unset), so attach takes the `tmux attach` path.
    let bin = common::bin_path();
    let config = s.env.config_path();
    let out = s.tmux.tmux(&[
        "new-session",
        "-d",
        "-s",
        "viewer",
        "--",
        "env",
        "-u",
        "TMUX",
        &bin.display().to_string(),
        "--config",
        &config.display().to_string(),
        "attach",
        "ATT-1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("a client attached to plane-ATT-1", || {
        let out = s.tmux.tmux(&["list-clients", "-F", "#{session_name}"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "plane-ATT-1")
    });
}

#[test]
fn list_and_show_say_whether_the_session_is_alive() {
    let s = Sessions::new();
    s.ok(&["add", "LIVE-1", "--title", "alive"]);
    s.ok(&["approve", "LIVE-1"]);
    let listed = common::json(&s.ok(&["list", "--json"]));
    assert_eq!(listed[0]["session"]["alive"], true);
    let shown = common::json(&s.ok(&["show", "LIVE-1", "--json"]));
    assert_eq!(shown["session"]["alive"], true);
    s.tmux.tmux(&["kill-session", "-t", "=plane-LIVE-1"]);
    wait_for("the session to end", || !s.tmux.has("plane-LIVE-1"));
    let shown = common::json(&s.ok(&["show", "LIVE-1", "--json"]));
    assert_eq!(shown["session"]["alive"], false);
}
