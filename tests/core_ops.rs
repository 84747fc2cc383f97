//! Recorded operations: two callers at once never both act, and a run killed at a recorded
//! step is finished exactly once by the next.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_plane::{Fault, Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};
use serde_json::json;

const ON_UPDATE: &str = "  transitions:\n    on_update: done\n";

/// A world where CSLOG-1..=`n` were polled, approved and completed; Plane saves a comment
/// `save_delay` after checking its external id, as Plane does.
fn completed(n: u64, save_delay: Duration) -> PlaneEnv {
    let mut p = Project::cslog();
    p.fill(1, n);
    for seq in 1..=n {
        p.set_state(seq, "Ready for Claude");
    }
    let mut plane = Plane::new(vec![p]);
    plane.comment_save_delay = save_delay;
    let w = PlaneEnv::new(plane, &[CSLOG], ON_UPDATE, "");
    w.ok(&["poll"]);
    for seq in 1..=n {
        let id = format!("CSLOG-{seq}");
        w.ok(&["approve", &id, "--no-session"]);
        w.ok(&["complete", &id, "the summary"]);
    }
    w
}

fn spawn(w: &PlaneEnv, args: &[&str]) -> Child {
    let mut cmd = Command::new(common::bin_path());
    cmd.current_dir(w.env.path())
        .env_remove("PLANE_ORCH_CONFIG")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("TMUX_TMPDIR", w.env.path().join("tmux"))
        .env(KEY_ENV, KEY)
        .env("PLANE_ORCH_RETRY_BASE_MS", "1")
        .arg("--config")
        .arg(w.env.config_path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plane-orch")
}

fn comments_of(w: &PlaneEnv, seq: u64) -> Vec<serde_json::Value> {
    let iid = w.with(|p| p.project(CSLOG).item_id(seq));
    w.with(|p| {
        p.comments
            .iter()
            .filter(|c| c["issue"] == iid.as_str())
            .cloned()
            .collect()
    })
}

/// `n` update-plane runs of one ticket at once, `rounds` times: one comment each time, the
/// losers refused naming the winner.
fn race(n: usize, rounds: u64) {
    let w = completed(rounds, Duration::from_millis(700));
    for seq in 1..=rounds {
        let id = format!("CSLOG-{seq}");
        let children: Vec<Child> = (0..n).map(|_| spawn(&w, &["update-plane", &id])).collect();
        let pids: Vec<u32> = children.iter().map(Child::id).collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let winners: Vec<usize> = (0..n).filter(|&i| outs[i].status.success()).collect();
        assert_eq!(winners.len(), 1, "round {seq}: {outs:?}");
        let winner = pids[winners[0]];
        for (i, out) in outs.iter().enumerate().filter(|(i, _)| *i != winners[0]) {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(4), "round {seq} #{i}: {err}");
            assert!(
                err.contains(&format!("{id} is being updated in Plane by pid {winner} ")),
                "round {seq} #{i}: {err}"
            );
        }
        assert_eq!(comments_of(&w, seq).len(), 1, "round {seq}");
        assert_eq!(w.env.ticket(&id)["status"], "done");
    }
    assert_eq!(w.with(|p| p.comments.len()), rounds as usize);
}

#[test]
fn two_update_plane_runs_at_once_post_one_comment_and_the_loser_names_the_winner() {
    race(2, 20);
}

#[test]
fn eight_update_plane_runs_at_once_post_one_comment() {
    race(8, 20);
}

#[test]
fn update_plane_through_the_api_and_the_cli_at_once_posts_one_comment() {
    let rounds = 6;
    let w = completed(rounds, Duration::from_millis(700));
    let s = w.env.serve(&[], &[(KEY_ENV, KEY)]);
    for seq in 1..=rounds {
        let id = format!("CSLOG-{seq}");
        let path = format!("/api/update-plane/{id}");
        let (api, cli) = std::thread::scope(|scope| {
            let a = scope.spawn(|| s.post(&path, None));
            let b = scope.spawn(|| s.post(&path, None));
            // Mixed rounds: every other one has a CLI caller too.
            let c = (seq % 2 == 0).then(|| spawn(&w, &["update-plane", &id]));
            let answers = [a.join().unwrap(), b.join().unwrap()];
            (answers, c.map(|c| c.wait_with_output().unwrap()))
        });
        let ok = api.iter().filter(|a| a.status == 200).count()
            + usize::from(cli.as_ref().is_some_and(|o| o.status.success()));
        assert_eq!(
            ok,
            1,
            "round {seq}: {:?} {cli:?}",
            api.iter().map(|a| &a.body).collect::<Vec<_>>()
        );
        for a in api.iter().filter(|a| a.status != 200) {
            a.assert_error(409, "conflict");
            assert!(
                a.body.contains("being updated in Plane by pid"),
                "{}",
                a.body
            );
        }
        if let Some(o) = cli.filter(|o| !o.status.success()) {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(4), "{err}");
            assert!(err.contains("being updated in Plane by pid"), "{err}");
        }
        assert_eq!(comments_of(&w, seq).len(), 1, "round {seq}");
    }
}

/// Spawns `args` and waits until the fake has seen one more request `method` whose url
/// contains `part` than before.
fn spawn_until_request(w: &PlaneEnv, args: &[&str], method: &str, part: &str) -> Child {
    let before = w.with(|p| p.count(method, part));
    let child = spawn(w, args);
    let start = Instant::now();
    while w.with(|p| p.count(method, part)) == before {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no {method} {part}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn update_plane_killed_while_its_comment_is_saved_is_finished_once_by_the_next_run() {
    // Plane saves the comment after the process is gone: it landed, unrecorded.
    let w = completed(1, Duration::from_millis(1500));
    let child = spawn_until_request(&w, &["update-plane", "CSLOG-1"], "POST", "/comments/");
    kill(child);
    std::thread::sleep(Duration::from_millis(1700));
    assert_eq!(comments_of(&w, 1).len(), 1);
    let show = w.ok(&["show", "CSLOG-1"]);
    assert!(
        show.contains("operation: interrupted: update_plane before any step"),
        "{show}"
    );
    assert!(w.ok(&["list"]).contains("(update_plane unfinished)"));
    let doctor = w.run(&["doctor"]);
    let doctor = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor.contains("CSLOG-1 interrupted: update_plane before any step"),
        "{doctor}"
    );

    let out = w.ok(&["update-plane", "CSLOG-1"]);
    assert!(out.contains("CSLOG-1 is done"), "{out}");
    assert_eq!(comments_of(&w, 1).len(), 1, "a second comment was posted");
    assert_eq!(w.with(|p| p.count("POST", "/comments/")), 1);
    assert_eq!(w.with(|p| p.count("PATCH", "/work-items/")), 1);
    let t = w.env.ticket("CSLOG-1");
    assert_eq!(t["status"], "done");
    assert!(t.get("op").is_none(), "{t}");
    assert_eq!(t["plane_sync"]["comment_id"], comments_of(&w, 1)[0]["id"]);
    // The lease of a done ticket is not left behind.
    assert!(!w.env.path().join("data/locks/CSLOG-1.lock").exists());
}

#[test]
fn update_plane_killed_after_its_comment_moves_the_state_once_and_posts_nothing_more() {
    let w = completed(1, Duration::ZERO);
    w.with(|p| {
        p.slow_once
            .push(("/states/".into(), Duration::from_secs(10)))
    });
    let child = spawn_until_request(&w, &["update-plane", "CSLOG-1"], "GET", "/states/");
    kill(child);
    let show = w.ok(&["show", "CSLOG-1"]);
    assert!(
        show.contains("operation: interrupted: update_plane after comment posted"),
        "{show}"
    );
    let t = w.env.ticket("CSLOG-1");
    assert_eq!(t["op"]["kind"], "update_plane");
    assert_eq!(t["op"]["steps"][0]["step"], "comment_posted");
    // /health lists it too, but only to a caller with the token.
    let token = "health-token";
    let s = w
        .env
        .serve(&[], &[(KEY_ENV, KEY), ("PLANE_ORCH_API_TOKEN", token)]);
    let open = s.get("/health").json();
    assert!(open.get("interrupted").is_none(), "{open}");
    let bearer = format!("Bearer {token}");
    let health = s
        .request("GET", "/health", &[("Authorization", &bearer)], None)
        .json();
    assert_eq!(
        health["interrupted"],
        json!([{
            "id": "CSLOG-1",
            "kind": "update_plane",
            "status": "interrupted: update_plane after comment posted",
        }]),
        "{health}"
    );

    w.ok(&["update-plane", "CSLOG-1"]);
    assert_eq!(w.with(|p| p.count("POST", "/comments/")), 1);
    assert_eq!(w.with(|p| p.count("PATCH", "/work-items/")), 1);
    assert_eq!(comments_of(&w, 1).len(), 1);
    assert_eq!(w.env.ticket("CSLOG-1")["status"], "done");
    // Finished: nothing is interrupted any more.
    let health = s
        .request("GET", "/health", &[("Authorization", &bearer)], None)
        .json();
    assert_eq!(health["interrupted"], json!([]), "{health}");
}

/// The lease files below data/locks, by name.
fn lease_files(w: &PlaneEnv) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(w.env.path().join("data/locks"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("CSLOG-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `items` work items in CSLOG, those of `ready` in the trigger state, an approve moving a
/// ticket to In Progress; polled once, so the ready ones are queued.
fn polled_ready(items: u64, ready: std::ops::RangeInclusive<u64>) -> PlaneEnv {
    let mut p = Project::cslog();
    p.fill(1, items);
    for seq in ready {
        p.set_state(seq, "Ready for Claude");
    }
    let w = PlaneEnv::new(
        Plane::new(vec![p]),
        &[CSLOG],
        "  transitions:\n    on_approve: In Progress\n",
        "",
    );
    w.ok(&["poll"]);
    w
}

#[test]
fn lease_files_of_done_removed_and_dropped_tickets_are_not_left_behind() {
    let w = polled_ready(4, 1..=4);
    // Every ticket gets a lease file from an operation tried on it (refused or not).
    for seq in 1..=4 {
        w.run(&["update-plane", &format!("CSLOG-{seq}")]);
    }
    assert_eq!(
        lease_files(&w),
        [
            "CSLOG-1.lock",
            "CSLOG-2.lock",
            "CSLOG-3.lock",
            "CSLOG-4.lock"
        ]
    );

    // Done.
    w.ok(&["approve", "CSLOG-1", "--no-session"]);
    w.ok(&["complete", "CSLOG-1", "the summary"]);
    w.ok(&["update-plane", "CSLOG-1"]);
    assert_eq!(w.env.ticket("CSLOG-1")["status"], "done");
    // Removed, with and without its session.
    w.ok(&["remove", "CSLOG-2"]);
    w.ok(&["remove", "CSLOG-3", "--kill-session"]);
    // Dropped by poll: it left every trigger in Plane.
    w.with(|p| p.project(CSLOG).set_state(4, "Backlog"));
    let out = w.ok(&["poll"]);
    assert!(out.contains("dropped pending CSLOG-4"), "{out}");
    assert_eq!(lease_files(&w), Vec::<String>::new());

    // Queued again, the ticket's operations still exclude each other on a fresh lease file.
    w.with(|p| p.project(CSLOG).set_state(4, "Ready for Claude"));
    w.ok(&["poll"]);
    w.with(|p| {
        p.slow_once
            .push(("/states/".into(), Duration::from_secs(10)))
    });
    let slow = spawn_until_request(
        &w,
        &["approve", "CSLOG-4", "--no-session"],
        "GET",
        "/states/",
    );
    let err = w.fails(4, &["remove", "CSLOG-4"]);
    assert!(
        err.contains("CSLOG-4 is having its Plane state moved by pid"),
        "{err}"
    );
    kill(slow);
}

#[test]
fn a_corrected_summary_after_the_comment_was_posted_edits_that_comment() {
    let w = completed(1, Duration::ZERO);
    let fault = Fault::new("PATCH", "/work-items/", 500, json!({"error": "boom"}));
    w.with(|p| p.faults.push(fault));
    // The comment lands, the state move fails: the ticket stays completed.
    w.fails(1, &["update-plane", "CSLOG-1"]);
    w.with(|p| p.faults.clear());
    assert_eq!(w.env.ticket("CSLOG-1")["status"], "completed");
    assert_eq!(comments_of(&w, 1).len(), 1);

    let s = w.env.serve(&[], &[(KEY_ENV, KEY)]);
    let answer = s.post(
        "/api/update-plane/CSLOG-1",
        Some(r#"{"summary": "the corrected summary"}"#),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["comment_edited"], true);
    let comments = comments_of(&w, 1);
    assert_eq!(comments.len(), 1, "{comments:?}");
    let html = comments[0]["comment_html"].as_str().unwrap();
    assert!(html.contains("the corrected summary"), "{html}");
    assert!(!html.contains("the summary<"), "{html}");
    assert_eq!(w.with(|p| p.count("POST", "/comments/")), 1);
    let t = w.env.ticket("CSLOG-1");
    assert_eq!(t["status"], "done");
    assert!(w
        .env
        .events("CSLOG-1")
        .contains(&"plane_comment_edited".to_string()));
}

#[test]
fn a_failed_on_approve_state_move_is_retried_by_poll_until_it_lands() {
    let w = polled_ready(3, 2..=2);
    let fault = Fault::new("PATCH", "/work-items/", 500, json!({"error": "boom"}));
    w.with(|p| p.faults.push(fault));
    w.ok(&["approve", "CSLOG-2", "--no-session"]);
    w.with(|p| p.faults.clear());
    let t = w.env.ticket("CSLOG-2");
    assert_eq!(t["status"], "active");
    assert_eq!(t["op"]["kind"], "move_state", "{t}");
    assert!(t["plane_sync"]["approve_state_set_at"].is_null());

    w.ok(&["poll"]);
    let t = w.env.ticket("CSLOG-2");
    assert!(t.get("op").is_none(), "{t}");
    assert!(t["plane_sync"]["approve_state_set_at"].is_string());
    assert!(t["last_error"].is_null(), "{t}");
    let in_progress = w.with(|p| p.project(CSLOG).state_id("In Progress"));
    assert_eq!(
        w.with(|p| p.project(CSLOG).item_mut(2)["state"].clone()),
        in_progress
    );
    // Landed: later polls move nothing.
    let patches = w.with(|p| p.count("PATCH", "/work-items/"));
    w.ok(&["poll"]);
    assert_eq!(w.with(|p| p.count("PATCH", "/work-items/")), patches);
}

#[test]
fn approve_killed_during_its_plane_state_move_is_moved_once_by_the_next_poll() {
    let w = polled_ready(2, 2..=2);
    // The move's PATCH is held long enough to kill the approve waiting on it.
    w.with(|p| {
        p.slow_once
            .push(("/work-items/".into(), Duration::from_secs(2)))
    });
    let child = spawn_until_request(
        &w,
        &["approve", "CSLOG-2", "--no-session"],
        "PATCH",
        "/work-items/",
    );
    kill(child);
    let t = w.env.ticket("CSLOG-2");
    assert_eq!(t["status"], "active", "{t}");
    assert_eq!(t["op"]["kind"], "move_state", "{t}");
    let show = w.ok(&["show", "CSLOG-2"]);
    assert!(
        show.contains("operation: interrupted: move_state"),
        "{show}"
    );

    w.ok(&["poll"]);
    let t = w.env.ticket("CSLOG-2");
    assert!(t.get("op").is_none(), "{t}");
    assert!(t["plane_sync"]["approve_state_set_at"].is_string(), "{t}");
    let in_progress = w.with(|p| p.project(CSLOG).state_id("In Progress"));
    assert_eq!(
        w.with(|p| p.project(CSLOG).item_mut(2)["state"].clone()),
        in_progress
    );
    let count = |name: &str| {
        w.env
            .events("CSLOG-2")
            .iter()
            .filter(|e| *e == name)
            .count()
    };
    assert_eq!(count("approved"), 1);
    assert_eq!(count("plane_state"), 1);
    // Landed: later polls move nothing.
    let patches = w.with(|p| p.count("PATCH", "/work-items/"));
    w.ok(&["poll"]);
    assert_eq!(w.with(|p| p.count("PATCH", "/work-items/")), patches);
    assert_eq!(count("plane_state"), 1);
}
