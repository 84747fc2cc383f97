//! `serve` together with a fake Plane: background polls and the update-plane endpoint.

mod common;

use std::time::Duration;

use common::fake_plane::{Fault, Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};

fn one_project() -> Plane {
    let mut p = Project::cslog();
    p.fill(1, 9);
    p.set_state(7, "Ready for Claude");
    Plane::new(vec![p])
}

#[test]
fn serve_poll_queues_tickets_from_plane_and_health_shows_the_poll() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "poll:\n  interval_secs: 1\n");
    let s = w.env.serve(&["--poll"], &[(KEY_ENV, KEY)]);
    let polled = s.wait_for(Duration::from_secs(15), || {
        s.get("/health").json()["plane"]["last_poll_ok"] == true
    });
    assert!(polled, "no successful poll: {}", s.stderr());
    let health = s.get("/health").json();
    assert_eq!(health["plane"]["configured"], true);
    assert!(health["plane"]["last_poll_at"].is_string(), "{health}");
    let pending = s.get("/api/pending-tickets").json();
    let ids: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["CSLOG-7"]);
    assert_eq!(pending[0]["trigger_type"], "status_change");
    assert_eq!(pending[0]["uuid"], w.with(|p| p.project(CSLOG).item_id(7)));
    assert_eq!(w.env.ticket("CSLOG-7")["status"], "pending");
    assert!(!s.stderr().contains(KEY), "the key reached serve's stderr");
}

#[test]
fn serve_poll_shows_a_failed_poll_in_health_and_keeps_serving() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "poll:\n  interval_secs: 1\n");
    w.with(|p| {
        p.faults.push(Fault::new(
            "GET",
            "/states/",
            500,
            serde_json::json!({"error": "boom"}),
        ))
    });
    let s = w.env.serve(
        &["--poll"],
        &[(KEY_ENV, KEY), ("PLANE_ORCH_RETRY_BASE_MS", "1")],
    );
    let failed = s.wait_for(Duration::from_secs(15), || {
        s.get("/health").json()["plane"]["last_poll_ok"] == false
    });
    assert!(failed, "no failed poll: {}", s.stderr());
    assert_eq!(s.get("/health").status, 200);
    assert_eq!(s.get("/api/pending-tickets").json(), serde_json::json!([]));
    assert!(
        w.env.state_bytes().is_none(),
        "a failed poll wrote the state file"
    );
}

#[test]
fn update_plane_through_the_api_posts_one_comment_and_marks_the_ticket_done() {
    let w = PlaneEnv::new(
        one_project(),
        &[CSLOG],
        "  transitions:\n    on_update: done\n",
        "",
    );
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    w.ok(&["complete", "CSLOG-7", "first summary"]);
    let s = w.env.serve(&[], &[(KEY_ENV, KEY)]);
    let answer = s.post(
        "/api/update-plane/CSLOG-7",
        Some(r#"{"summary": "edited <b>summary</b> & more"}"#),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let v = answer.json();
    assert_eq!(v["status"], "updated");
    assert_eq!(v["ticket_id"], "CSLOG-7");
    assert_eq!(v["comment_posted"], true);
    assert_eq!(v["state_updated"], true);
    assert_eq!(v["ticket"]["status"], "done");
    assert_eq!(v["ticket"]["summary"], "edited <b>summary</b> & more");

    let comments = w.with(|p| p.comments.clone());
    assert_eq!(comments.len(), 1);
    let html = comments[0]["comment_html"].as_str().unwrap();
    assert!(
        html.contains("edited &lt;b&gt;summary&lt;/b&gt; &amp; more"),
        "{html}"
    );
    assert!(!html.contains("first summary"), "{html}");
    let events = w.env.events("CSLOG-7");
    assert!(
        events.contains(&"summary_replaced".to_string()),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap(), "done");

    // Repeating it is a conflict and posts nothing more.
    s.post("/api/update-plane/CSLOG-7", None)
        .assert_error(409, "conflict");
    assert_eq!(w.with(|p| p.comments.len()), 1);

    // Done tickets are read from the file when asked for, and counted everywhere.
    let ids = |path: &str| s.ids(path);
    assert_eq!(ids("/api/tickets?status=done"), ["CSLOG-7"]);
    assert_eq!(ids("/api/tickets?status=all"), ["CSLOG-7"]);
    assert_eq!(ids("/api/tickets"), Vec::<String>::new());
    let one = s.get("/api/tickets/cslog-7");
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["status"], "done");
    assert_eq!(
        one.json()["events"].as_array().unwrap().last().unwrap()["event"],
        "done"
    );
    assert_eq!(s.get("/health").json()["done_count"], 1);
    let metrics = s.get("/metrics").body;
    assert!(
        metrics.contains("plane_orch_tickets{status=\"done\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("plane_orch_session_duration_seconds_count 1"),
        "{metrics}"
    );
}

#[test]
fn update_plane_through_the_api_reports_a_plane_failure_as_502_and_keeps_the_ticket() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    w.ok(&["complete", "CSLOG-7", "summary"]);
    w.with(|p| {
        p.faults.push(Fault::new(
            "POST",
            "/comments/",
            500,
            serde_json::json!({"error": "down"}),
        ))
    });
    let s = w
        .env
        .serve(&[], &[(KEY_ENV, KEY), ("PLANE_ORCH_RETRY_BASE_MS", "1")]);
    let answer = s.post("/api/update-plane/CSLOG-7", None);
    answer.assert_error(502, "plane_error");
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "completed");
    assert!(t["last_error"].is_string(), "{t}");
    assert_eq!(w.with(|p| p.comments.len()), 0);
    // Someone waits for the answer: one attempt, no retries.
    assert_eq!(w.with(|p| p.count("POST", "/comments/")), 1);
}

#[test]
fn update_plane_through_the_api_with_the_budget_spent_fails_at_once_instead_of_waiting() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    w.ok(&["complete", "CSLOG-7", "summary"]);
    // Other processes used the whole minute's budget just now.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let sent: Vec<serde_json::Value> = (0..60)
        .map(|i| serde_json::json!({"at": now_ms, "id": format!("cron-{i}")}))
        .collect();
    std::fs::write(
        w.env.path().join("data/pending-tickets.json.plane-rate"),
        serde_json::json!({ "sent": sent }).to_string(),
    )
    .unwrap();
    let before = w.with(|p| p.requests.len());
    let s = w.env.serve(&[], &[(KEY_ENV, KEY)]);
    let started = std::time::Instant::now();
    let answer = s.post("/api/update-plane/CSLOG-7", None);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    answer.assert_error(502, "plane_error");
    assert!(answer.body.contains("rate budget"), "{}", answer.body);
    assert_eq!(w.with(|p| p.requests.len()), before, "Plane was asked");
    assert_eq!(w.env.ticket("CSLOG-7")["status"], "completed");
}

#[test]
fn health_names_a_project_the_last_poll_could_not_read_and_the_others_are_queued() {
    let missing = "00000000-0000-4000-8000-0000000000aa";
    let w = PlaneEnv::new(
        one_project(),
        &[missing, CSLOG],
        "",
        "poll:\n  interval_secs: 1\n",
    );
    let s = w.env.serve(&["--poll"], &[(KEY_ENV, KEY)]);
    let polled = s.wait_for(Duration::from_secs(15), || {
        s.get("/health").json()["plane"]["last_poll_ok"] == false
    });
    assert!(polled, "no poll: {}", s.stderr());
    let health = s.get("/health").json();
    let failed = health["plane"]["failed_projects"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{health}");
    assert_eq!(failed[0]["project_id"], missing);
    assert!(
        health["plane"]["last_poll_error"]
            .as_str()
            .unwrap()
            .contains(missing),
        "{health}"
    );
    assert_eq!(health["plane"]["rate_budget"]["limit_per_minute"], 60);
    assert_eq!(s.ids("/api/pending-tickets"), ["CSLOG-7"]);
    assert!(s
        .stderr()
        .contains(&format!("Plane project {missing} skipped")));
}
