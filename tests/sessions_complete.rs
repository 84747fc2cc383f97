//! Finishing a session: `/complete` through Claude Code's hook, the worker's question when the
//! agent exits, and the Notification hook's "needs you" mark.

mod common;

use std::fs;

use common::sessions::{wait_for, Sessions};

const HOSTILE: &str =
    "Fixed \"it's\" in $HOME with `whoami` and $(whoami) & more ! now\n```\ncode ```\nsecond line";

/// Runs a hook as Claude Code would inside the ticket's session.
fn hook(s: &Sessions, ticket: Option<&str>, which: &str, input: &str) -> std::process::Output {
    let mut cmd = s.cmd();
    if let Some(id) = ticket {
        cmd.env("PLANE_ORCH_TICKET", id);
    }
    cmd.args(["hook", which])
        .write_stdin(input.to_string())
        .output()
        .unwrap()
}

fn prompt_json(prompt: &str) -> String {
    serde_json::json!({"session_id": "x", "hook_event_name": "UserPromptSubmit", "prompt": prompt})
        .to_string()
}

#[test]
fn complete_in_claude_code_records_a_hostile_summary_byte_for_byte() {
    let s = Sessions::new();
    s.agent_will_submit(&format!("/complete {HOSTILE}\n"));
    s.ok(&["add", "DONE-1", "--title", "Finish me"]);
    s.ok(&["approve", "DONE-1"]);
    wait_for("the hook to run", || s.fake.join("hook-status").exists());
    assert_eq!(
        fs::read_to_string(s.fake.join("hook-status"))
            .unwrap()
            .trim(),
        "0"
    );
    // A systemMessage: shown in the pane with or without a model turn.
    let answer: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(s.fake.join("hook-stdout")).unwrap()).unwrap();
    assert_eq!(
        answer["systemMessage"],
        "plane-orch: recorded the summary for DONE-1"
    );
    assert_eq!(
        answer["hookSpecificOutput"]["hookEventName"],
        "UserPromptSubmit"
    );
    let t = s.ticket("DONE-1");
    assert_eq!(t["status"], "completed");
    assert_eq!(t["summary"], HOSTILE);
    let last = t["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "completed");
    assert!(last["detail"].as_str().unwrap().contains("/complete"));
    // The worker sees the ticket completed and ends the session.
    wait_for("the session to end", || !s.tmux.has("plane-DONE-1"));
}

#[test]
fn complete_with_nothing_after_it_is_blocked_with_the_usage() {
    let s = Sessions::new();
    s.agent_will_submit("/complete   ");
    s.ok(&["add", "EMPTY-1", "--title", "Empty"]);
    s.ok(&["approve", "EMPTY-1"]);
    wait_for("the hook to run", || s.fake.join("hook-status").exists());
    assert_eq!(
        fs::read_to_string(s.fake.join("hook-status"))
            .unwrap()
            .trim(),
        "2"
    );
    let err = fs::read_to_string(s.fake.join("hook-stderr")).unwrap();
    assert!(err.contains("usage: /complete <summary"), "{err}");
    assert_eq!(s.ticket("EMPTY-1")["status"], "active");

    let before = s.env.state_bytes();
    let out = hook(
        &s,
        Some("EMPTY-1"),
        "prompt-submit",
        &prompt_json("/complete"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: /complete"));
    assert!(out.stdout.is_empty());
    assert_eq!(s.env.state_bytes(), before);
}

#[test]
fn a_prompt_that_is_not_complete_passes_silently() {
    let s = Sessions::new();
    s.ok(&["add", "PASS-1", "--title", "Pass"]);
    s.ok(&["approve", "PASS-1", "--no-session"]);
    let before = s.env.state_bytes();
    for prompt in ["please fix it", "/completed the thing", "/help"] {
        let out = hook(&s, Some("PASS-1"), "prompt-submit", &prompt_json(prompt));
        assert_eq!(out.status.code(), Some(0), "{prompt}");
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{prompt}");
    }
    // Outside a plane-orch session, even /complete is none of our business.
    let out = hook(&s, None, "prompt-submit", &prompt_json("/complete x"));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(s.env.state_bytes(), before);
}

#[test]
fn complete_for_a_ticket_that_is_not_active_says_not_recorded() {
    let s = Sessions::new();
    s.ok(&["add", "NR-1", "--title", "Pending"]);
    let out = hook(
        &s,
        Some("NR-1"),
        "prompt-submit",
        &prompt_json("/complete done"),
    );
    assert_eq!(out.status.code(), Some(0));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = answer["systemMessage"].as_str().unwrap();
    assert!(
        message.starts_with("plane-orch: NOT recorded: "),
        "{message}"
    );
    assert!(message.contains("pending"), "{message}");
    assert_eq!(s.ticket("NR-1")["status"], "pending");
}

#[test]
fn when_the_agent_exits_the_worker_asks_for_the_summary() {
    let s = Sessions::new();
    s.ok(&["add", "EXIT-1", "--title", "Exit path"]);
    s.ok(&["approve", "EXIT-1"]);
    s.agent_argv();
    wait_for("the worker's question", || {
        s.tmux.screen("plane-EXIT-1").contains("Type a summary")
    });
    let target = "=plane-EXIT-1:";
    s.tmux.tmux(&[
        "send-keys",
        "-t",
        target,
        "-l",
        "Fixed the \"login\" for $USER",
    ]);
    s.tmux.tmux(&["send-keys", "-t", target, "Enter"]);
    s.tmux
        .tmux(&["send-keys", "-t", target, "-l", "and the tests"]);
    s.tmux.tmux(&["send-keys", "-t", target, "Enter", "Enter"]);
    s.wait_status("EXIT-1", "completed");
    let t = s.ticket("EXIT-1");
    assert_eq!(t["summary"], "Fixed the \"login\" for $USER\nand the tests");
    wait_for("the session to end", || !s.tmux.has("plane-EXIT-1"));
}

#[test]
fn an_empty_answer_leaves_the_ticket_active_and_says_how_to_finish() {
    let s = Sessions::new();
    s.ok(&["add", "LATER-1", "--title", "Later"]);
    s.ok(&["approve", "LATER-1"]);
    s.agent_argv();
    wait_for("the worker's question", || {
        s.tmux.screen("plane-LATER-1").contains("Type a summary")
    });
    s.tmux
        .tmux(&["send-keys", "-t", "=plane-LATER-1:", "Enter"]);
    wait_for("the hint", || {
        s.tmux
            .screen("plane-LATER-1")
            .contains("plane-orch complete LATER-1 \"summary\"")
    });
    assert_eq!(s.ticket("LATER-1")["status"], "active");
    assert!(s.tmux.has("plane-LATER-1"), "the pane stays open");
}

#[test]
fn a_notification_marks_the_ticket_waiting_until_the_next_prompt() {
    let s = Sessions::new();
    s.ok(&["add", "WAIT-1", "--title", "Waits"]);
    s.ok(&["approve", "WAIT-1", "--no-session"]);
    let input = serde_json::json!({
        "session_id": "x",
        "hook_event_name": "Notification",
        "notification_type": "permission_prompt",
        "message": "Claude needs your permission to use Bash",
    })
    .to_string();
    let before = s.env.state_bytes();
    let out = hook(&s, Some("WAIT-1"), "notify", &input);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    // Kept beside the state file, which hooks never rewrite.
    assert_eq!(s.env.state_bytes(), before);
    let shown = common::json(&s.ok(&["show", "WAIT-1", "--json"]));
    assert_eq!(shown["waiting"]["kind"], "permission_prompt");
    // A second notification refreshes the mark without a second history entry.
    hook(&s, Some("WAIT-1"), "notify", &input);
    let shown = common::json(&s.ok(&["show", "WAIT-1", "--json"]));
    let waits = shown["activity_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "waiting")
        .count();
    assert_eq!(waits, 1, "{shown}");

    let list = s.ok(&["list"]);
    assert!(list.contains("waiting"), "{list}");
    let shown = common::json(&s.ok(&["show", "WAIT-1", "--json"]));
    assert_eq!(
        shown["waiting"]["message"],
        "Claude needs your permission to use Bash"
    );
    let text = s.ok(&["show", "WAIT-1"]);
    assert!(text.contains("state:     waiting"), "{text}");

    let out = hook(
        &s,
        Some("WAIT-1"),
        "prompt-submit",
        &prompt_json("yes, go on"),
    );
    assert_eq!(out.status.code(), Some(0));
    let shown = common::json(&s.ok(&["show", "WAIT-1", "--json"]));
    assert_eq!(shown["waiting"], serde_json::Value::Null);
    assert_eq!(shown["activity"]["state"], "working");
}
