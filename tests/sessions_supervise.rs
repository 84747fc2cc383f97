//! Supervision against real tmux: a fake `claude` plays the hook inputs captured from the real
//! Claude Code (tests/fixtures/claude-hooks) through the hooks plane-orch registers, and writes
//! a transcript in Claude Code's shape (several lines per request).

mod common;

use std::fs;

use common::sessions::{make_executable, wait_for, Sessions};
use serde_json::Value;

fn show(s: &Sessions, id: &str) -> Value {
    common::json(&s.ok(&["show", id, "--json"]))
}

fn row(s: &Sessions, id: &str) -> String {
    s.ok(&["list"])
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn each_activity_is_reached_and_shown_and_each_request_is_counted_once() {
    let s = Sessions::new();
    s.agent_will_play(
        "wait go1\n\
         hook SessionStart session-start.json\n\
         hook UserPromptSubmit user-prompt-submit.json\n\
         hook PreToolUse pre-tool-use.json\n\
         wait go2\n\
         hook Notification notification-permission.json\n\
         wait go3\n\
         transcript transcript.jsonl\n\
         hook Stop stop.json\n\
         hook statusLine status-line.json\n\
         wait go4\n\
         hook StopFailure stop-failure-rate-limit.json\n\
         wait go5\n\
         hook SessionEnd session-end-exit.json\n",
    );
    s.agent_will_hold();
    s.ok(&["add", "ACT-1", "--title", "Watch me"]);
    s.ok(&["approve", "ACT-1"]);
    assert_eq!(show(&s, "ACT-1")["activity"]["state"], "starting");
    assert!(
        row(&s, "ACT-1").contains("starting"),
        "{}",
        row(&s, "ACT-1")
    );
    let state_before = s.env.state_bytes();

    s.go("go1");
    for n in 1..=3 {
        assert_eq!(s.hook_done(n).0, 0);
    }
    let t = show(&s, "ACT-1");
    assert_eq!(t["activity"]["state"], "working", "{t}");
    assert_eq!(t["activity"]["tool"], "Bash(npm test)");
    assert!(row(&s, "ACT-1").contains("working"), "{}", row(&s, "ACT-1"));

    s.go("go2");
    s.hook_done(4);
    let t = show(&s, "ACT-1");
    assert_eq!(t["activity"]["state"], "waiting");
    assert_eq!(t["waiting"]["kind"], "permission_prompt");
    assert_eq!(
        t["waiting"]["message"],
        "Claude needs your permission: Bash(npm test)"
    );
    let r = row(&s, "ACT-1");
    assert!(
        r.contains("waiting") && r.contains("\"Claude needs your"),
        "{r}"
    );

    s.go("go3");
    s.hook_done(5);
    let (status, _) = s.hook_done(6);
    assert_eq!(status, 0);
    let line = fs::read_to_string(s.fake.join("out-6")).unwrap();
    assert!(line.starts_with("plane-orch ACT-1 · $0.03"), "{line}");
    let t = show(&s, "ACT-1");
    assert_eq!(t["activity"]["state"], "idle");
    assert_eq!(t["activity"]["message"], "All tests pass.");
    // Two requests, one of them on two transcript lines: counted once each.
    let tokens = &t["cost"]["tokens"];
    assert_eq!(tokens["input"], 2400, "{t}");
    assert_eq!(tokens["output"], 500);
    assert_eq!(tokens["cache_read"], 10_000);
    assert_eq!(tokens["cache_write"], 600);
    let usd = t["cost"]["usd"].as_f64().unwrap();
    assert!((usd - 0.03325).abs() < 1e-9, "{usd}");
    assert_eq!(t["cost"]["claude_reported_usd"], 0.03325);
    let r = row(&s, "ACT-1");
    assert!(r.contains("idle $0.03"), "{r}");
    let text = s.ok(&["show", "ACT-1"]);
    assert!(text.contains("tokens:    2400 input, 500 output"), "{text}");
    assert!(text.contains("claude-opus-4-8"), "{text}");

    s.go("go4");
    s.hook_done(7);
    let t = show(&s, "ACT-1");
    assert_eq!(t["activity"]["state"], "limit");
    assert_eq!(t["activity"]["kind"], "rate_limit");
    assert!(row(&s, "ACT-1").contains("limit"));

    s.go("go5");
    s.hook_done(8);
    let t = show(&s, "ACT-1");
    assert_eq!(t["activity"]["state"], "ended");
    assert_eq!(t["activity"]["message"], "prompt_input_exit");
    let events: Vec<&str> = t["activity_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["starting", "working", "waiting", "idle", "limit", "ended"]
    );
    // Every hook call above left the state file alone.
    assert_eq!(s.env.state_bytes(), state_before);
    // The API's list carries the same.
    let list = common::json(&s.ok(&["list", "--json"]));
    assert_eq!(list[0]["activity"]["state"], "ended");
    assert!(list[0]["cost"]["usd"].as_f64().unwrap() > 0.03);
}

#[test]
fn a_used_up_budget_interrupts_the_pane_and_waits_until_it_is_raised() {
    let s = Sessions::new();
    s.agent_will_play(
        "raw\n\
         hook SessionStart session-start.json\n\
         transcript transcript.jsonl\n\
         hook PreToolUse pre-tool-use.json\n\
         key key\n\
         wait go\n\
         hook PreToolUse pre-tool-use.json\n",
    );
    s.agent_will_hold();
    s.ok(&["add", "BUD-1", "--title", "Spend"]);
    s.ok(&["approve", "BUD-1", "--budget", "0.02"]);
    assert_eq!(s.ticket("BUD-1")["budget_usd"], 0.02);
    s.hook_done(1);
    // $0.033 spent of $0.02: the tool call is refused and Escape reaches the pane.
    let (status, err) = s.hook_done(2);
    assert_eq!(status, 2, "{err}");
    assert!(err.contains("budget of $0.02"), "{err}");
    let key = s.fake.join("key");
    wait_for("Escape in the pane", || key.exists());
    assert_eq!(fs::read(&key).unwrap(), b"\x1b");
    let t = show(&s, "BUD-1");
    assert_eq!(t["activity"]["state"], "waiting", "{t}");
    assert_eq!(t["activity"]["kind"], "budget");
    assert_eq!(t["waiting"]["kind"], "budget");
    let r = row(&s, "BUD-1");
    assert!(
        r.contains("budget reached") && r.contains("$0.03/0.02"),
        "{r}"
    );
    // A poll tick keeps it waiting (and does not interrupt again), and copies the event into
    // the ticket's history, where notifications read it.
    s.ok(&["poll"]);
    assert_eq!(show(&s, "BUD-1")["activity"]["kind"], "budget");
    let events = s.env.events("BUD-1");
    assert!(events.contains(&"budget".to_string()), "{events:?}");
    assert_eq!(s.ticket("BUD-1")["waiting"]["kind"], "budget");

    let out = s.ok(&["budget", "BUD-1", "10"]);
    assert!(out.contains("budget $10.00"), "{out}");
    let t = show(&s, "BUD-1");
    assert_eq!(t["activity"]["state"], "idle", "{t}");
    assert_eq!(t["waiting"], Value::Null);
    assert!(s.env.events("BUD-1").contains(&"budget_set".to_string()));
    s.go("go");
    assert_eq!(s.hook_done(3).0, 0);
    assert_eq!(show(&s, "BUD-1")["activity"]["state"], "working");
    // Bad amounts are refused.
    s.fails(2, &["budget", "BUD-1", "-3"]);
    s.fails(2, &["budget", "BUD-1", "lots"]);
}

#[test]
fn a_worker_that_never_starts_the_agent_is_stuck_before_start_with_the_pane_text() {
    let s = Sessions::with_config(
        "  agent_command: stuck-claude",
        "watch:\n  start_seconds: 1",
    );
    let stuck = s.bin_dir.join("stuck-claude");
    fs::write(
        &stuck,
        "#!/bin/sh\nprintf 'Do you trust the files in this folder?\\n\\033[1m 1. Yes, proceed\\033[0m\\n'\nsleep 60\n",
    )
    .unwrap();
    make_executable(&stuck);
    s.ok(&["add", "STK-1", "--title", "Never starts"]);
    s.ok(&["approve", "STK-1"]);
    wait_for("the pane to show the question", || {
        s.tmux.screen("plane-STK-1").contains("Do you trust")
    });
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let out = s.ok(&["poll"]);
    assert!(out.contains("STK-1: stuck before start"), "{out}");
    let t = show(&s, "STK-1");
    let flag = &t["activity"]["flags"][0];
    assert_eq!(flag["flag"], "stuck", "{t}");
    let screen = flag["screen"].as_str().unwrap();
    assert!(
        screen.contains("Do you trust the files in this folder?"),
        "{screen}"
    );
    assert!(screen.contains("1. Yes, proceed"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "{screen:?}");
    assert!(row(&s, "STK-1").contains("stuck"));
    let text = s.ok(&["show", "STK-1"]);
    assert!(text.contains("the pane shows:"), "{text}");
    // Flagged once: a second tick adds nothing.
    s.ok(&["poll"]);
    assert_eq!(
        show(&s, "STK-1")["activity"]["flags"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_stalled_session_is_flagged_and_cleared_by_the_next_hook() {
    let s = Sessions::with_config("", "watch:\n  stall_minutes: 0.01");
    s.agent_will_play(
        "hook SessionStart session-start.json\n\
         hook PreToolUse pre-tool-use.json\n\
         wait go\n\
         hook Stop stop.json\n",
    );
    s.agent_will_hold();
    s.ok(&["add", "STL-1", "--title", "Stalls"]);
    s.ok(&["approve", "STL-1"]);
    s.hook_done(2);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let out = s.ok(&["poll"]);
    assert!(out.contains("STL-1: stalled"), "{out}");
    let t = show(&s, "STL-1");
    assert_eq!(t["activity"]["flags"][0]["flag"], "stalled", "{t}");
    assert!(row(&s, "STL-1").contains("stalled"), "{}", row(&s, "STL-1"));
    s.go("go");
    s.hook_done(3);
    let t = show(&s, "STL-1");
    assert_eq!(t["activity"]["flags"], serde_json::json!([]), "{t}");
    assert_eq!(t["activity"]["state"], "idle");
    let cleared = t["activity_history"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "stalled_cleared");
    assert!(cleared, "{t}");
}

#[test]
fn a_session_over_its_time_is_flagged_once_interrupted_and_stays_flagged() {
    let s = Sessions::with_config(
        "",
        "watch:\n  max_session_minutes: 0.01\n  stop_over_time: true",
    );
    s.agent_will_play(
        "raw\n\
         hook SessionStart session-start.json\n\
         hook PreToolUse pre-tool-use.json\n\
         key key\n\
         wait go\n\
         hook PreToolUse pre-tool-use.json\n",
    );
    s.agent_will_hold();
    s.ok(&["add", "OVT-1", "--title", "Runs long"]);
    s.ok(&["approve", "OVT-1"]);
    s.hook_done(2);
    assert!(!row(&s, "OVT-1").contains("over time"));
    // 0.01 minutes is 0.6 s.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let out = s.ok(&["poll"]);
    assert!(out.contains("OVT-1: over time"), "{out}");
    let t = show(&s, "OVT-1");
    let flags = t["activity"]["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{t}");
    assert_eq!(flags[0]["flag"], "over_time");
    // stop_over_time: interrupted like a used-up budget, Escape to the pane.
    let key = s.fake.join("key");
    wait_for("Escape in the pane", || key.exists());
    assert_eq!(fs::read(&key).unwrap(), b"\x1b");
    assert_eq!(t["activity"]["state"], "waiting", "{t}");
    assert_eq!(t["activity"]["kind"], "over_time");
    let r = row(&s, "OVT-1");
    assert!(r.contains("waiting") && r.contains("over time"), "{r}");

    // Flagged once: the next tick raises nothing new and records one event.
    let out = s.ok(&["poll"]);
    assert!(!out.contains("OVT-1: over time"), "{out}");
    let over = |s: &Sessions| {
        s.env
            .events("OVT-1")
            .iter()
            .filter(|e| *e == "over_time")
            .count()
    };
    assert_eq!(over(&s), 1);
    // Activity resuming does not clear it (it would be raised again at once): it stays
    // until the session ends, and the hook is not refused for it.
    s.go("go");
    assert_eq!(s.hook_done(3).0, 0);
    let t = show(&s, "OVT-1");
    assert_eq!(t["activity"]["state"], "working", "{t}");
    let flags = t["activity"]["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{t}");
    assert_eq!(flags[0]["flag"], "over_time");
    s.ok(&["poll"]);
    assert_eq!(over(&s), 1);
    assert_eq!(
        show(&s, "OVT-1")["activity"]["flags"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
