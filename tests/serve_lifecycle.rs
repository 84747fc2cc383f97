//! The server as a process: silent clients, slow uploads, signals and background polls.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Env;

#[test]
fn silent_and_slow_clients_do_not_stall_the_others() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    let s = env.serve(&[], &[]);
    let connect = || TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    // More than there are workers: some say nothing, some stop halfway through their
    // headers, some send headers and only part of the body they announced.
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(connect());
        let mut half = connect();
        half.write_all(b"GET /api/pending-tickets HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        idle.push(half);
        let mut slow = connect();
        slow.write_all(
            b"POST /api/tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n{\"id\":",
        )
        .unwrap();
        idle.push(slow);
    }
    // tiny_http hands each connection to a thread of its pool; connections that arrive in
    // the very same instant as the hung ones can be queued behind them (see the report), so
    // the normal requests come a moment later, as they would from a dashboard.
    std::thread::sleep(Duration::from_millis(100));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(3)))
        .build()
        .into();
    for _ in 0..20 {
        let resp = agent
            .get(&s.url("/api/pending-tickets"))
            .call()
            .expect("answered while others hang");
        assert_eq!(resp.status(), 200);
    }
    let resp = agent
        .post(&s.url("/api/approve/A-1"))
        .send_empty()
        .expect("answered while others hang");
    assert_eq!(resp.status(), 200);
    assert_eq!(env.ticket("A-1")["status"], "active");
    drop(idle);
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_zero() {
    let env = Env::for_serve("");
    let mut s = env.serve(&[], &[]);
    let body = format!(
        r#"{{"id": "A-1", "title": "slow", "description": "{}"}}"#,
        "d".repeat(4000)
    );
    let (first, rest) = body.split_at(100);
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST /api/tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    conn.flush().unwrap();
    let taken = s.wait_for(Duration::from_secs(5), || {
        s.stderr().contains("POST /api/tickets: reading its body")
    });
    assert!(taken, "the request was not taken: {}", s.stderr());
    s.terminate();
    let stopping = s.wait_for(Duration::from_secs(5), || s.stderr().contains("stopping"));
    assert!(stopping, "SIGTERM was not noticed: {}", s.stderr());
    conn.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "{answer}\n{}",
        s.stderr()
    );
    let status = s.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", s.stderr());
    assert_eq!(env.ticket("A-1")["title"], "slow");
}

#[test]
fn sigterm_on_an_idle_server_exits_zero() {
    let env = Env::for_serve("");
    let mut s = env.serve(&[], &[]);
    assert_eq!(s.get("/health").status, 200);
    s.terminate();
    assert_eq!(s.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn background_polls_show_in_health() {
    let env = Env::for_serve("poll:\n  interval_secs: 1\n");
    let s = env.serve(&["--poll"], &[]);
    let polled = s.wait_for(Duration::from_secs(5), || {
        !s.get("/health").json()["plane"]["last_poll_at"].is_null()
    });
    assert!(polled, "no poll recorded; stderr: {}", s.stderr());
    let v = s.get("/health").json();
    assert_eq!(v["plane"]["configured"], false);
    assert!(v["plane"]["last_poll_ok"].is_boolean());
    let first = v["plane"]["last_poll_at"].as_str().unwrap().to_string();
    let ticked_again = s.wait_for(Duration::from_secs(5), || {
        s.get("/health").json()["plane"]["last_poll_at"].as_str() != Some(first.as_str())
    });
    assert!(ticked_again, "the poll did not repeat every second");
}

#[test]
fn without_poll_no_tick_runs() {
    let env = Env::for_serve("poll:\n  interval_secs: 1\n");
    let s = env.serve(&[], &[]);
    std::thread::sleep(Duration::from_millis(150));
    assert!(s.get("/health").json()["plane"]["last_poll_at"].is_null());
}

#[test]
fn requests_are_logged_at_debug_level() {
    let env = Env::for_serve("");
    let s = env.serve(&[], &[]);
    assert_eq!(s.get("/api/tickets").status, 200);
    let logged = s.wait_for(Duration::from_secs(3), || {
        s.stderr().contains("GET /api/tickets -> 200")
    });
    assert!(logged, "{}", s.stderr());
}

#[test]
fn the_shipped_config_starts_without_plane_credentials() {
    let env = Env::for_serve("");
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .expect("config.yaml");
    env.set_config(&shipped);
    let s = env.serve(&[], &[]);
    let v = s.get("/health").json();
    assert_eq!(v["plane"]["configured"], false);
    assert_eq!(v["state"]["ok"], true);
}
