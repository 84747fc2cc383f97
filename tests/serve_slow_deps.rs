//! serve while what it depends on hangs: a tmux that never returns, a session service that
//! accepts and never answers, another process holding the state lock. /health, /metrics and
//! the lists keep answering within a second throughout.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::server::Server;
use common::Env;

fn agent(limit: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(limit))
        .build()
        .into()
}

/// For `for_how_long`, keeps asking /health, /metrics and the pending list, each of which
/// must answer 200 within a second.
fn keeps_answering(s: &Server, for_how_long: Duration) {
    let client = agent(Duration::from_secs(1));
    let until = Instant::now() + for_how_long;
    let mut rounds = 0;
    while Instant::now() < until || rounds < 3 {
        for path in ["/health", "/metrics", "/api/pending-tickets"] {
            let started = Instant::now();
            let resp = client.get(&s.url(path)).call().unwrap_or_else(|e| {
                panic!(
                    "GET {path} gave no answer within 1 s (round {rounds}): {e}\n{}",
                    s.stderr()
                )
            });
            assert_eq!(resp.status(), 200, "GET {path}");
            assert!(started.elapsed() < Duration::from_secs(1), "GET {path}");
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A folder with a `tmux` that hangs, to put first on PATH.
fn hanging_tmux(env: &Env) -> String {
    let bin = env.path().join("hung-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tmux = bin.join("tmux");
    // Short enough that nothing is left behind for long if the server is killed first.
    std::fs::write(&tmux, "#!/bin/sh\nexec sleep 20\n").unwrap();
    common::sessions::make_executable(&tmux);
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn a_hanging_tmux_never_holds_health_metrics_or_lists() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    let path = hanging_tmux(&env);
    let s = env.serve(&[], &[("PATH", &path)]);
    let started = Instant::now();
    // An approve runs tmux and waits for it (up to its deadline) on one worker; the rest
    // goes on meanwhile.
    let approve = {
        let url = s.url("/api/approve/A-1");
        std::thread::spawn(move || {
            let started = Instant::now();
            let resp = agent(Duration::from_secs(20)).post(&url).send_empty();
            (resp.map(|r| r.status().as_u16()), started.elapsed())
        })
    };
    keeps_answering(&s, Duration::from_secs(3));
    let health = s.get("/health").json();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["sessions"]["available"], false, "{health}");
    assert!(health["state"]["age_secs"].is_number(), "{health}");
    let (status, took) = approve.join().unwrap();
    assert_eq!(status.ok(), Some(503), "approve with a hung tmux");
    assert!(took < Duration::from_secs(15), "approve took {took:?}");
    assert_eq!(env.ticket("A-1")["status"], "pending");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_silent_session_service_never_holds_health_metrics_or_lists() {
    // Accepts connections (the kernel does, from its backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let env = Env::for_serve(&format!(
        "sessions:\n  backend: service\n  service_url: {url}\n  service_project_id: p\n"
    ));
    env.add("A-1", "one");
    let s = env.serve(&[], &[]);
    keeps_answering(&s, Duration::from_secs(3));
    let health = s.get("/health").json();
    assert_eq!(health["sessions"]["available"], false, "{health}");
    drop(silent);
}

#[test]
fn health_answers_from_the_last_read_while_another_process_holds_the_state_lock() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    let s = env.serve(&[], &[]);
    assert_eq!(s.get("/health").json()["pending_count"], 1);
    // Change the file, then hold its lock as a writer would.
    env.add("A-2", "two");
    let lock_path = env.state_path().with_extension("json.lock");
    let lock_path = if lock_path.exists() {
        lock_path
    } else {
        // Wherever the store keeps it: the one lock file beside the state.
        std::fs::read_dir(env.state_path().parent().unwrap())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".lock"))
            .expect("a lock file beside the state")
    };
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    fs2::FileExt::lock_exclusive(&lock).unwrap();
    let client = agent(Duration::from_secs(1));
    for path in ["/health", "/metrics"] {
        let started = Instant::now();
        let mut resp = client
            .get(&s.url(path))
            .call()
            .unwrap_or_else(|e| panic!("{path} waited behind the lock: {e}"));
        assert_eq!(resp.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(1));
        let body = resp.body_mut().read_to_string().unwrap();
        if path == "/health" {
            // The file changed since it was read (A-2 was added): the last read, marked old.
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["pending_count"], 1, "{v}");
            assert!(v["state"]["stale"].is_string(), "{v}");
        }
    }
    let _ = fs2::FileExt::unlock(&lock);
    let fresh = s.get("/health").json();
    assert_eq!(fresh["pending_count"], 2, "{fresh}");
    assert_eq!(fresh["state"]["age_secs"], 0.0, "{fresh}");
}

#[test]
fn a_silent_plane_takes_at_most_half_the_workers() {
    use common::fake_plane::{Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};
    let mut project = Project::cslog();
    project.fill(1, 9);
    project.set_state(7, "Ready for Claude");
    let w = PlaneEnv::new(Plane::new(vec![project]), &[CSLOG], "", "");
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    w.ok(&["complete", "CSLOG-7", "a summary"]);
    w.env.add("A-1", "by hand");
    // From now on Plane accepts connections (the kernel does, from its backlog) and answers
    // nothing.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = std::fs::read_to_string(w.env.config_path()).unwrap();
    w.env.set_config(&config.replace(
        &w.plane.url,
        &format!("http://{}", silent.local_addr().unwrap()),
    ));
    let s = w
        .env
        .serve(&[], &[(KEY_ENV, KEY), ("PLANE_ORCH_RETRY_BASE_MS", "1")]);
    let updates: Vec<_> = (0..12)
        .map(|_| {
            let url = s.url("/api/update-plane/CSLOG-7");
            std::thread::spawn(move || {
                let started = Instant::now();
                let status = agent(Duration::from_secs(60))
                    .post(&url)
                    .send_empty()
                    .map(|r| r.status().as_u16())
                    .ok();
                (status, started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    keeps_answering(&s, Duration::from_secs(3));
    // The requests beyond Plane's share of the workers were told to come back.
    let busy = s.wait_for(Duration::from_secs(5), || {
        updates.iter().filter(|t| t.is_finished()).count() >= 8
    });
    assert!(busy, "requests waiting on Plane were not turned away");
    drop(s);
    let done: Vec<_> = updates.into_iter().map(|t| t.join().unwrap()).collect();
    // Turned away at once: 503 (no worker for Plane free), or 409 (the first request holds
    // the ticket's operation).
    let turned_away = done
        .iter()
        .filter(|(s, _)| matches!(s, Some(503 | 409)))
        .count();
    assert!(turned_away >= 8, "{done:?}");
    assert_eq!(w.env.ticket("CSLOG-7")["status"], "completed");
    drop(silent);
}
