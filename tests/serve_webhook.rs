//! Plane's webhooks into `serve`: signed deliveries of the recorded shape make the poller
//! fetch the one work item at once; bad signatures, replays, the key's own changes and
//! unwatched projects change nothing.

mod common;

use std::time::{Duration, Instant};

use common::fake_plane::{Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};
use common::server::Server;

const SECRET_ENV: &str = "PLANE_WEBHOOK_SECRET";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/plane/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn secret() -> String {
    fixture("webhook-secret.txt").trim().to_string()
}

/// CSLOG with CSLOG-7 in Backlog: nothing triggered until the webhook's change.
fn world() -> (PlaneEnv, Server) {
    let mut p = Project::cslog();
    p.fill(1, 9);
    let w = PlaneEnv::new(
        Plane::new(vec![p]),
        &[CSLOG],
        "",
        "poll:\n  interval_secs: 3600\n",
    );
    let s = w.env.serve(
        &["--poll"],
        &[
            (KEY_ENV, KEY),
            (SECRET_ENV, &secret()),
            ("PLANE_ORCH_RETRY_BASE_MS", "1"),
        ],
    );
    let polled = s.wait_for(Duration::from_secs(15), || {
        s.get("/health").json()["plane"]["last_poll_ok"] == true
    });
    assert!(polled, "no first poll: {}", s.stderr());
    (w, s)
}

fn deliver(s: &Server, body: &str, signature: Option<&str>) -> common::server::Answer {
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("User-Agent", "Autopilot"),
        ("X-Plane-Event", "issue"),
        ("X-Plane-Delivery", "0b9e3c1a-5d2f-4e6a-8b7c-9d0e1f2a3b4c"),
    ];
    if let Some(sig) = signature {
        headers.push(("X-Plane-Signature", sig));
    }
    s.request("POST", "/webhooks/plane", &headers, Some(body.as_bytes()))
}

#[test]
fn the_recorded_bodies_are_signed_the_way_plane_signs_them() {
    for name in [
        "webhook-issue-updated",
        "webhook-issue-own",
        "webhook-issue-unwatched",
    ] {
        let body = fixture(&format!("{name}.json"));
        // Python's json.dumps, as Plane's webhook task sends it: ", " and ": ", ASCII only.
        assert!(body.starts_with(r#"{"event": "issue", "action": "updated""#));
        assert!(body.is_ascii() && body.contains(r"\u2014"), "{name}");
        let recorded = fixture(&format!("{name}.signature"));
        assert_eq!(
            plane_orch::server::sign_webhook(secret().as_bytes(), body.as_bytes()),
            recorded.trim(),
            "{name}"
        );
    }
}

#[test]
fn a_signed_issue_event_queues_its_ticket_within_a_second_by_fetching_that_item_only() {
    let (w, s) = world();
    let item = w.with(|p| p.project(CSLOG).item_id(7));
    let lists_before = w.with(|p| p.count("GET", "/work-items/?"));
    let requests_before = w.with(|p| p.requests.len());
    w.with(|p| p.project(CSLOG).set_state(7, "Ready for Claude"));
    let started = Instant::now();
    let a = deliver(
        &s,
        &fixture("webhook-issue-updated.json"),
        Some(fixture("webhook-issue-updated.signature").trim()),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["status"], "accepted");
    let queued = s.wait_for(Duration::from_secs(1), || {
        s.ids("/api/pending-tickets") == ["CSLOG-7"]
    });
    assert!(
        queued,
        "not queued within a second of the webhook: {}",
        s.stderr()
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(w.env.ticket("CSLOG-7")["trigger_type"], "status_change");
    // That one item was fetched; no page of the project's list was read again.
    assert_eq!(
        w.with(|p| p.count("GET", &format!("/work-items/{item}/"))),
        1
    );
    assert_eq!(w.with(|p| p.count("GET", "/work-items/?")), lists_before);
    // The project's states and labels were known from the first poll: one request in all.
    assert_eq!(w.with(|p| p.requests.len()), requests_before + 1);

    // The same body again is a replay: ignored, nothing fetched.
    let a = deliver(
        &s,
        &fixture("webhook-issue-updated.json"),
        Some(fixture("webhook-issue-updated.signature").trim()),
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["status"], "ignored");
    assert!(a.json()["reason"].as_str().unwrap().contains("replay"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        w.with(|p| p.count("GET", &format!("/work-items/{item}/"))),
        1
    );
    let health = s.get("/health").json();
    assert_eq!(health["plane"]["webhooks"]["accepted"], 1, "{health}");
    assert_eq!(health["plane"]["webhooks"]["ignored"], 1, "{health}");
}

#[test]
fn a_bad_or_missing_signature_gets_401_and_triggers_nothing() {
    let (w, s) = world();
    w.with(|p| p.project(CSLOG).set_state(7, "Ready for Claude"));
    let body = fixture("webhook-issue-updated.json");
    let before = w.with(|p| p.requests.len());
    let wrong = plane_orch::server::sign_webhook(b"plane_wh_not_the_secret", body.as_bytes());
    for sig in [Some(wrong.as_str()), None, Some("not hex")] {
        let a = deliver(&s, &body, sig);
        assert_eq!(a.status, 401, "{}", a.body);
        assert_eq!(a.json()["error"]["code"], "unauthorized");
    }
    // The right signature over a changed body is wrong too.
    let tampered = body.replace("Add log rotation", "Add log rotatioN");
    let a = deliver(
        &s,
        &tampered,
        Some(fixture("webhook-issue-updated.signature").trim()),
    );
    assert_eq!(a.status, 401);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.with(|p| p.requests.len()), before, "Plane was asked");
    assert!(s.ids("/api/pending-tickets").is_empty());
    // Logged once, not once per delivery.
    assert_eq!(
        s.stderr().matches("refused a webhook delivery to").count(),
        1,
        "{}",
        s.stderr()
    );
    assert_eq!(s.get("/health").json()["plane"]["webhooks"]["refused"], 4);
}

#[test]
fn the_key_s_own_changes_and_unwatched_projects_are_ignored() {
    let (w, s) = world();
    let item = w.with(|p| p.project(CSLOG).item_id(7));
    w.with(|p| p.project(CSLOG).set_state(7, "Ready for Claude"));
    for name in ["webhook-issue-own", "webhook-issue-unwatched"] {
        let a = deliver(
            &s,
            &fixture(&format!("{name}.json")),
            Some(fixture(&format!("{name}.signature")).trim()),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.json()["status"], "ignored", "{name}: {}", a.body);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        w.with(|p| p.count("GET", &format!("/work-items/{item}/"))),
        0
    );
    assert!(s.ids("/api/pending-tickets").is_empty());
}
