//! The HTTP API's endpoints over real HTTP: shapes, statuses, and the state they leave.

mod common;

use common::{json, Env};
use serde_json::Value;

const TEN_KEYS: [&str; 10] = [
    "id",
    "uuid",
    "project_id",
    "title",
    "description",
    "trigger_type",
    "summary",
    "created_at",
    "updated_at",
    "completed_at",
];

const OUR_KEYS: [&str; 12] = [
    "status",
    "url",
    "priority",
    "labels",
    "description_text",
    "session",
    "waiting",
    "activity",
    "cost",
    "approved_at",
    "done_at",
    "last_error",
];

fn assert_api_ticket(v: &Value) {
    for key in TEN_KEYS.iter().chain(&OUR_KEYS) {
        assert!(v.get(*key).is_some(), "{key} missing from {v}");
    }
    assert!(v["id"].is_string() && v["title"].is_string() && v["description"].is_string());
    assert!(v["created_at"].is_string() && v["updated_at"].is_string());
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn pending_and_completed_lists_are_bare_arrays_of_api_tickets() {
    let env = Env::for_serve("");
    env.add("CSLOG-1", "First");
    env.add("CSLOG-2", "Second");
    env.ok(&["approve", "CSLOG-2", "--no-session"]);
    env.ok(&["complete", "CSLOG-2", "did it"]);
    let s = env.serve(&[], &[]);

    let pending = s.get("/api/pending-tickets");
    assert_eq!(pending.status, 200);
    assert!(pending
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let list = pending.json();
    let list = list.as_array().expect("a bare array");
    assert_eq!(list.len(), 1);
    assert_api_ticket(&list[0]);
    assert_eq!(list[0]["id"], "CSLOG-1");
    assert_eq!(list[0]["description"], "<p></p>");
    assert_eq!(list[0]["trigger_type"], "manual");
    assert!(list[0]["uuid"].is_null() && list[0]["completed_at"].is_null());

    let completed = s.get("/api/completed-tickets").json();
    let completed = completed.as_array().expect("a bare array");
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["id"], "CSLOG-2");
    assert_eq!(completed[0]["summary"], "did it");
    assert!(completed[0]["completed_at"].is_string());
}

#[test]
fn tickets_can_be_listed_by_status_and_a_bad_status_is_refused() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    env.ok(&["approve", "A-2", "--no-session"]);
    let s = env.serve(&[], &[]);
    let ids = |path: &str| s.ids(path);
    assert_eq!(ids("/api/tickets"), ["A-1", "A-2"]);
    assert_eq!(ids("/api/tickets?status=active"), ["A-2"]);
    assert_eq!(ids("/api/tickets?status=pending"), ["A-1"]);
    assert_eq!(ids("/api/tickets?status=all"), ["A-1", "A-2"]);
    assert!(ids("/api/tickets?status=done").is_empty());
    s.get("/api/tickets?status=bogus")
        .assert_error(400, "invalid");
}

#[test]
fn one_ticket_comes_with_its_events_or_404() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.ok(&["approve", "A-1", "--no-session"]);
    let s = env.serve(&[], &[]);
    let v = s.get("/api/tickets/a-1").json();
    assert_api_ticket(&v);
    assert_eq!(v["status"], "active");
    let events: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["queued", "approved"]);
    assert_eq!(v["approved_snapshot"]["title"], "one");

    let missing = s.get("/api/tickets/A-404");
    missing.assert_error(404, "not_found");
    assert!(missing.json()["detail"].as_str().unwrap().contains("A-404"));
    s.get("/api/tickets/not%20an%20id")
        .assert_error(400, "invalid");
}

#[test]
fn posting_a_ticket_adds_it_and_errors_change_nothing() {
    let env = Env::for_serve("");
    let s = env.serve(&[], &[]);
    let created = s.post(
        "/api/tickets",
        Some(r#"{"id": "cslog-test", "title": "By API", "description": "a <b> c", "url": "https://x.example/1"}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let v = created.json();
    assert_api_ticket(&v);
    assert_eq!(v["id"], "CSLOG-TEST");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["description"], "<p>a &lt;b&gt; c</p>");
    assert_eq!(env.ticket("CSLOG-TEST")["title"], "By API");

    let before = env.state_bytes();
    s.post(
        "/api/tickets",
        Some(r#"{"id": "CSLOG-TEST", "title": "again"}"#),
    )
    .assert_error(409, "conflict");
    s.post("/api/tickets", Some("{not json"))
        .assert_error(400, "invalid");
    s.post("/api/tickets", Some(r#"{"title": "no id"}"#))
        .assert_error(400, "invalid");
    s.post("/api/tickets", Some(r#"{"id": "../x", "title": "t"}"#))
        .assert_error(400, "invalid");
    s.post("/api/tickets", Some(r#"{"id": "A-9", "title": "  "}"#))
        .assert_error(400, "invalid");
    assert_eq!(env.state_bytes(), before);
}

#[test]
fn approve_answers_the_seeds_shape_and_the_ticket_becomes_active() {
    let env = Env::for_serve("");
    env.add("CSLOG-7", "Approve me");
    let s = env.serve(&[], &[]);
    let a = s.post("/api/approve/cslog-7", None);
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(
        keys(&v),
        ["created_at", "session_id", "ticket", "ticket_id"],
        "{v}"
    );
    assert_eq!(v["ticket_id"], "CSLOG-7");
    assert!(v["created_at"].is_string());
    // session_id names the session, running when the answer arrives.
    assert_eq!(v["session_id"], "plane-CSLOG-7");
    assert!(env.tmux_has_session("plane-CSLOG-7"));
    assert_eq!(v["ticket"]["session"]["name"], "plane-CSLOG-7");
    assert_eq!(v["ticket"]["session"]["alive"], true);
    assert_api_ticket(&v["ticket"]);
    assert_eq!(v["ticket"]["status"], "active");
    assert_eq!(env.ticket("CSLOG-7")["status"], "active");
}

#[test]
fn approve_answers_503_when_the_session_cannot_start_and_the_ticket_stays_pending() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    std::fs::remove_file(env.path().join("worker.sh")).unwrap();
    let s = env.serve(&[], &[]);
    let a = s.post("/api/approve/A-1", None);
    a.assert_error(503, "session_error");
    assert!(
        a.json()["detail"].as_str().unwrap().contains("worker"),
        "{}",
        a.body
    );
    let t = env.ticket("A-1");
    assert_eq!(t["status"], "pending");
    assert!(t["last_error"].is_string(), "{t}");
    assert!(!env.tmux_has_session("plane-A-1"));
}

#[test]
fn approve_at_the_session_cap_is_a_409_naming_the_limit() {
    let env = Env::for_serve("");
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.set_config(&config.replace("automation:\n", "automation:\n  max_active_sessions: 1\n"));
    env.add("A-1", "one");
    env.add("A-2", "two");
    let s = env.serve(&[], &[]);
    assert_eq!(s.post("/api/approve/A-1", None).status, 200);
    let refused = s.post("/api/approve/A-2", None);
    refused.assert_error(409, "conflict");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("max_active_sessions is 1"),
        "{}",
        refused.body
    );
    assert_eq!(env.ticket("A-2")["status"], "pending");
    assert!(!env.tmux_has_session("plane-A-2"));
}

#[test]
fn approve_refuses_unknown_repeated_and_invalid_tickets() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.ok(&["approve", "A-1", "--no-session"]);
    let s = env.serve(&[], &[]);
    let before = env.state_bytes();
    s.post("/api/approve/A-2", None)
        .assert_error(404, "not_found");
    let again = s.post("/api/approve/A-1", None);
    again.assert_error(409, "conflict");
    assert!(again.json()["detail"]
        .as_str()
        .unwrap()
        .contains("already active"));
    s.post("/api/approve/a%3Bb", None)
        .assert_error(400, "invalid");
    assert_eq!(env.state_bytes(), before);
}

#[test]
fn an_id_that_decodes_to_a_path_is_refused_before_anything_happens() {
    let env = Env::for_serve("");
    let s = env.serve(&[], &[]);
    let answer = s.raw(
        b"POST /api/approve/..%2F..%2Fetc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains(r#""detail":"invalid ticket id"#),
        "{answer}"
    );
    assert!(env.state_bytes().is_none(), "nothing may be written");
}

#[test]
fn complete_records_the_summary_and_refuses_bad_requests() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    env.ok(&["approve", "A-1", "--no-session"]);
    let s = env.serve(&[], &[]);
    let before = env.state_bytes();
    s.post("/api/complete/A-1", Some(r#"{"summary": "  "}"#))
        .assert_error(400, "invalid");
    s.post("/api/complete/A-1", Some(""))
        .assert_error(400, "invalid");
    s.post("/api/complete/A-1", Some("{}"))
        .assert_error(400, "invalid");
    s.post("/api/complete/A-3", Some(r#"{"summary": "x"}"#))
        .assert_error(404, "not_found");
    s.post("/api/complete/A-2", Some(r#"{"summary": "x"}"#))
        .assert_error(409, "conflict");
    assert_eq!(env.state_bytes(), before);

    let done = s.post(
        "/api/complete/a-1",
        Some(r#"{"summary": "Fixed the <bug>"}"#),
    );
    assert_eq!(done.status, 200, "{}", done.body);
    let v = done.json();
    assert_api_ticket(&v);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["summary"], "Fixed the <bug>");
    assert_eq!(env.ticket("A-1")["summary"], "Fixed the <bug>");
    let last = env.events("A-1").pop().unwrap();
    assert_eq!(last, "completed");
}

#[test]
fn update_plane_without_plane_is_a_502_and_the_ticket_stays_completed() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    env.ok(&["approve", "A-1", "--no-session"]);
    env.ok(&["complete", "A-1", "done it"]);
    let s = env.serve(&[], &[]);
    let failed = s.post("/api/update-plane/A-1", None);
    failed.assert_error(502, "plane_error");
    assert!(failed.json()["detail"].as_str().unwrap().contains("Plane"));
    assert_eq!(env.ticket("A-1")["status"], "completed");
    s.post("/api/update-plane/A-1", Some(r#"{"summary": "new"}"#))
        .assert_error(502, "plane_error");
    s.post("/api/update-plane/A-1", Some("{oops"))
        .assert_error(400, "invalid");
    s.post("/api/update-plane/A-9", None)
        .assert_error(404, "not_found");
    s.post("/api/update-plane/A-2", None)
        .assert_error(409, "conflict");
    // The person's edited summary is kept for the retry, and the old one in an event.
    assert_eq!(env.ticket("A-1")["summary"], "new");
    assert_eq!(env.ticket("A-1")["status"], "completed");
    assert!(env.events("A-1").contains(&"summary_replaced".to_string()));
}

#[test]
fn delete_answers_a_json_body_and_forgets_the_ticket() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    let s = env.serve(&[], &[]);
    let d = s.delete("/api/tickets/a-1?kill_session=true");
    assert_eq!(d.status, 200, "{}", d.body);
    let v = d.json();
    assert_eq!(v, json(r#"{"status": "deleted", "ticket_id": "A-1"}"#));
    assert!(env.ticket("A-1").is_null());
    s.delete("/api/tickets/A-1").assert_error(404, "not_found");
    s.delete("/api/tickets/..").assert_error(400, "invalid");
}

#[test]
fn an_api_approval_shows_in_the_cli_at_once_and_the_other_way_round() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    let s = env.serve(&[], &[]);
    // Read once so the server has the state cached before the CLI changes it.
    assert_eq!(
        s.get("/api/pending-tickets")
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    assert_eq!(s.post("/api/approve/A-1", None).status, 200);
    let listed = json(&env.ok(&["list", "--json"]));
    let status_of = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["status"].clone())
    };
    assert_eq!(status_of("A-1"), Some("active".into()));

    env.ok(&["approve", "A-2", "--no-session"]);
    assert_eq!(s.get("/api/tickets/A-2").json()["status"], "active");
    assert!(s
        .get("/api/pending-tickets")
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn fifty_concurrent_approvals_of_one_ticket_give_one_success() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    let s = env.serve(&[], &[]);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| scope.spawn(|| s.post("/api/approve/A-1", None).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|c| **c == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|c| **c == 409).count(),
        49,
        "{statuses:?}"
    );
    assert_eq!(env.events("A-1"), ["queued", "approved"]);
    // One session, under the name the answer gave.
    let sessions = std::process::Command::new("tmux")
        .args(["list-sessions", "-F", "#{session_name}"])
        .env_remove("TMUX")
        .env("TMUX_TMPDIR", env.tmux_tmpdir())
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&sessions.stdout).to_string();
    assert_eq!(names.lines().collect::<Vec<_>>(), ["plane-A-1"], "{names}");
    assert_eq!(env.ticket("A-1")["session"]["name"], "plane-A-1");
}

#[test]
fn health_answers_on_both_paths_with_counts() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    env.ok(&["approve", "A-2", "--no-session"]);
    let s = env.serve(&[], &[]);
    for path in ["/health", "/orchestrator/health"] {
        let h = s.get(path);
        assert_eq!(h.status, 200);
        let v = h.json();
        for key in [
            "status",
            "tmux_service",
            "pending_count",
            "active_count",
            "completed_count",
            "version",
            "state",
            "plane",
            "sessions",
        ] {
            assert!(v.get(key).is_some(), "{key} missing from {v}");
        }
        assert_eq!(v["pending_count"], 1);
        assert_eq!(v["active_count"], 1);
        assert_eq!(v["completed_count"], 0);
        assert_eq!(v["state"]["ok"], true);
        assert_eq!(
            v["state"]["path"],
            env.state_path().display().to_string().as_str()
        );
        assert_eq!(v["plane"]["configured"], false);
        assert!(v["plane"]["last_poll_at"].is_null());
        assert_eq!(v["sessions"]["backend"], "tmux");
        assert_eq!(v["sessions"]["available"], v["tmux_service"]);
        let want = if v["tmux_service"] == true {
            "healthy"
        } else {
            "degraded"
        };
        assert_eq!(v["status"], want);
    }
}

#[test]
fn a_damaged_state_file_degrades_health_and_fails_reads_naming_the_file() {
    let env = Env::for_serve("");
    std::fs::create_dir_all(env.path().join("data")).unwrap();
    std::fs::write(env.state_path(), "{oops").unwrap();
    let s = env.serve(&[], &[]);
    let h = s.get("/health");
    assert_eq!(h.status, 200);
    let v = h.json();
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["state"]["ok"], false);
    let list = s.get("/api/pending-tickets");
    list.assert_error(500, "internal");
    let detail = list.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains(&env.state_path().display().to_string()),
        "{detail}"
    );
    s.post("/api/approve/A-1", None)
        .assert_error(500, "internal");
    assert_eq!(std::fs::read_to_string(env.state_path()).unwrap(), "{oops");
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let env = Env::for_serve("");
    let s = env.serve(&[], &[]);
    s.get("/api/nothing").assert_error(404, "not_found");
    // `/` is the dashboard (tests/ui_dashboard.rs); a path beside it is not.
    s.get("/nothing").assert_error(404, "not_found");
    s.get("/ui").assert_error(404, "not_found");
    s.get("/api/approve/A-1/x").assert_error(404, "not_found");
    let wrong = s.request("PUT", "/api/tickets", &[], Some(b"{}"));
    wrong.assert_error(405, "invalid");
    let allow = wrong.header("allow").expect("Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let wrong = s.get("/api/approve/A-1");
    wrong.assert_error(405, "invalid");
    assert_eq!(wrong.header("allow").as_deref(), Some("POST, OPTIONS"));
}

#[test]
fn bodies_over_64_kib_are_413_and_bad_json_400() {
    let env = Env::for_serve("");
    let s = env.serve(&[], &[]);
    let big = format!(
        r#"{{"id": "A-1", "title": "t", "description": "{}"}}"#,
        "x".repeat(65 * 1024)
    );
    s.post("/api/tickets", Some(&big))
        .assert_error(413, "too_large");
    // A chunked body declares no length: it is cut off while read.
    let mut raw = b"POST /api/tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..70 {
        raw.extend_from_slice(b"400\r\n");
        raw.extend_from_slice(&[b'x'; 1024]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let answer = s.raw(&raw);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    s.post("/api/complete/A-1", Some("[1,"))
        .assert_error(400, "invalid");
    assert!(env.state_bytes().is_none());
}

#[test]
fn metrics_count_tickets_and_approvals_and_reads_reuse_the_parsed_state() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    let s = env.serve(&[], &[]);
    assert_eq!(s.post("/api/approve/A-1", None).status, 200);
    assert_eq!(s.post("/api/approve/A-1", None).status, 409);
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let sample = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
            .parse()
            .unwrap()
    };
    let text = m.body;
    assert_eq!(
        sample(&text, r#"plane_orch_tickets{status="pending"}"#),
        1.0
    );
    assert_eq!(sample(&text, r#"plane_orch_tickets{status="active"}"#), 1.0);
    assert_eq!(
        sample(&text, r#"plane_orch_approvals_total{outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"plane_orch_approvals_total{outcome="refused"}"#),
        1.0
    );
    assert!(text.contains("# TYPE plane_orch_poll_duration_seconds summary"));

    let loads = sample(&text, "plane_orch_state_loads_total");
    for _ in 0..5 {
        assert_eq!(s.get("/api/pending-tickets").status, 200);
    }
    let text = s.get("/metrics").body;
    assert_eq!(sample(&text, "plane_orch_state_loads_total"), loads);
}

#[test]
fn health_follows_the_session_service() {
    // A fake tmux-session-service answering /health.
    let fake = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = fake.server_addr().to_ip().unwrap().port();
    let fake = std::sync::Arc::new(fake);
    let serving = std::sync::Arc::clone(&fake);
    std::thread::spawn(move || {
        for rq in serving.incoming_requests() {
            let body =
                r#"{"ok": true, "tmuxAvailable": true, "tmuxVersion": "tmux 3.3a", "error": null}"#;
            let _ = rq.respond(tiny_http::Response::from_string(body));
        }
    });
    let env = Env::for_serve(&format!(
        "sessions:\n  backend: service\n  service_url: http://127.0.0.1:{port}\n"
    ));
    let s = env.serve(&[], &[]);
    let v = s.get("/health").json();
    assert_eq!(v["status"], "healthy", "{v}");
    assert_eq!(v["tmux_service"], true);
    assert_eq!(v["sessions"]["backend"], "service");
    fake.unblock();

    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let env = Env::for_serve(&format!(
        "sessions:\n  backend: service\n  service_url: http://127.0.0.1:{closed_port}\n"
    ));
    let s = env.serve(&[], &[]);
    let h = s.get("/health");
    assert_eq!(h.status, 200);
    let v = h.json();
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["tmux_service"], false);
    assert_eq!(v["sessions"]["available"], false);
    assert_eq!(v["state"]["ok"], true);
}

#[test]
fn a_large_list_arrives_whole_from_its_file_and_from_memory_alike() {
    // Forty tickets of 8 KiB each: an answer well past the size sent from a file.
    let env = Env::for_serve("");
    let text = "All work and no play. ".repeat(400);
    for i in 1..=40 {
        env.ok(&[
            "add",
            &format!("CSLOG-{i}"),
            "--title",
            "Large",
            "--description",
            &text,
        ]);
    }
    let answer = |config_extra: &str| {
        env.set_config(&format!(
            "automation:\n  worktrees: false\n  worker: worker.sh\n{config_extra}"
        ));
        let s = env.serve(&[], &[]);
        let first = s.get("/api/pending-tickets");
        // The second is the kept answer, the one sent from its file when that is on.
        let again = s.get("/api/pending-tickets");
        assert_eq!((first.status, again.status), (200, 200));
        assert_eq!(first.body, again.body);
        first.body
    };
    let from_file = answer("");
    let from_memory = answer("api:\n  sendfile: false\n");
    assert!(from_file.len() > 256 * 1024, "{}", from_file.len());
    assert_eq!(from_file, from_memory);
    let v: Value = serde_json::from_str(&from_file).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(40));
    assert!(v[0]["description"].as_str().unwrap().contains("no play"));
}
