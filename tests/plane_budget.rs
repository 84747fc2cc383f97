//! The shared rate budget against a fake Plane that limits like Plane does (a sliding window
//! per key, scaled down so tests stay short): processes sharing a key never meet a 429, run
//! close to the fastest the limit allows, and never wait while the budget has room.

mod common;

use std::time::{Duration, Instant};

use common::fake_plane::{Limiter, Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};

/// Plane's limit, 60 requests a window; the window scaled from a minute down to this.
const LIMIT: usize = 60;
const WINDOW: Duration = Duration::from_secs(3);

fn big_project() -> Plane {
    let mut p = Project::cslog();
    p.fill(1, 250);
    p.set_state(7, "Ready for Claude");
    let mut plane = Plane::new(vec![p]);
    plane.limiter = Limiter::new(LIMIT, WINDOW);
    plane
}

fn limited_env(plane: Plane, plane_extra: &str) -> PlaneEnv {
    PlaneEnv::new(plane, &[CSLOG], plane_extra, "")
}

/// The binary for `dir` and its config, with the key and the scaled-down window.
fn cmd(dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(common::bin_path());
    c.current_dir(dir)
        .env_remove("PLANE_ORCH_CONFIG")
        .env_remove("RUST_LOG")
        .env(KEY_ENV, KEY)
        .env("PLANE_ORCH_RETRY_BASE_MS", "1")
        .env("PLANE_ORCH_RATE_WINDOW_MS", WINDOW.as_millis().to_string())
        .env("NO_COLOR", "1")
        .arg("--config")
        .arg(dir.join("config.yaml"));
    c
}

#[test]
fn the_fake_limits_like_plane_with_plane_s_headers() {
    // The shapes of tests/fixtures/plane/rate-limited.headers.txt and rate-limit-trace.txt.
    let recorded = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/plane/rate-limited.headers.txt"
    ))
    .unwrap();
    assert!(recorded.contains("Retry-After: 55") && !recorded.contains("X-RateLimit"));
    let mut plane = big_project();
    plane.limiter = Limiter::new(3, Duration::from_secs(60));
    let fake = common::fake_plane::FakePlane::start(plane);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let get = || {
        agent
            .get(format!("{}/api/v1/users/me/", fake.url))
            .header("X-API-Key", KEY)
            .call()
            .unwrap()
    };
    for left in ["2", "1", "0"] {
        let r = get();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["X-RateLimit-Remaining"], left);
        let reset: u64 = r.headers()["X-RateLimit-Reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!((now + 59..=now + 61).contains(&reset), "{reset} {now}");
    }
    let mut r = get();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&wait), "{wait}");
    assert!(r.headers().get("X-RateLimit-Remaining").is_none());
    assert_eq!(
        r.body_mut().read_to_string().unwrap(),
        r#"{"error_code":5900,"error_message":"RATE_LIMIT_EXCEEDED"}"#
    );
    assert_eq!(fake.with(|p| p.limiter.throttled), 1);
}

#[test]
fn fourteen_polls_by_three_processes_at_once_share_the_budget_and_meet_no_429() {
    // 14 back-to-back polls of a 250-item project, split over 3 processes running together.
    const SHARES: [usize; 3] = [5, 5, 4];
    let w = limited_env(big_project(), "");
    // The ledger a poll or serve of this setup made before (a dry run creates no file).
    std::fs::create_dir_all(w.env.path().join("data")).unwrap();
    std::fs::write(
        w.env.path().join("data/pending-tickets.json.plane-rate"),
        "{}",
    )
    .unwrap();
    let started = Instant::now();
    let workers: Vec<_> = SHARES
        .iter()
        .map(|&polls| {
            let dir = w.env.path().to_path_buf();
            std::thread::spawn(move || {
                // Dry runs read Plane exactly as polls do but take no poll lock, so the three
                // processes really send at the same time.
                let mut stderr = String::new();
                for _ in 0..polls {
                    let out = cmd(&dir).args(["poll", "--dry-run"]).output().unwrap();
                    let err = String::from_utf8_lossy(&out.stderr).into_owned();
                    assert!(out.status.success(), "{err}");
                    stderr.push_str(&err);
                }
                stderr
            })
        })
        .collect();
    let stderr: Vec<String> = workers.into_iter().map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    let requests = w.with(|p| p.requests.len());
    // project, states, labels and three pages of 100 per poll.
    assert_eq!(requests, 14 * 6);
    assert_eq!(w.with(|p| p.limiter.throttled), 0, "Plane answered 429");
    // The floor: requests ÷ the rate (60 a window).
    #[allow(clippy::cast_precision_loss)]
    let floor = WINDOW.as_secs_f64() * requests as f64 / LIMIT as f64;
    assert!(
        elapsed.as_secs_f64() <= floor * 1.1,
        "{requests} requests took {elapsed:?}; the floor is {floor:.2} s"
    );
    // Waiting was said, with how long.
    let all = stderr.join("");
    assert!(
        all.contains("rate budget is spent") && all.contains("waiting"),
        "{all}"
    );
    eprintln!("{requests} requests by 3 processes in {elapsed:?} (floor {floor:.2} s)");
}

#[test]
fn an_approve_with_budget_left_never_waits() {
    let w = limited_env(
        big_project(),
        "  transitions:\n    on_approve: \"In Progress\"\n",
    );
    let out = cmd(w.env.path()).arg("poll").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 58 of 60 used, mostly by another process: two are left, as many as approve needs.
    let ledger = w.env.path().join("data/pending-tickets.json.plane-rate");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut sent: Vec<serde_json::Value> = (0..52)
        .map(|i| serde_json::json!({"at": now_ms, "id": format!("other-{i}")}))
        .collect();
    let before: Vec<serde_json::Value> =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&ledger).unwrap()).unwrap()
            ["sent"]
            .as_array()
            .unwrap()
            .clone();
    assert_eq!(before.len(), 6, "a poll records its 6 requests");
    sent.extend(before);
    std::fs::write(&ledger, serde_json::json!({"sent": sent}).to_string()).unwrap();
    let started = Instant::now();
    let out = cmd(w.env.path())
        .args(["approve", "CSLOG-7", "--no-session"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("waiting"), "{err}");
    assert!(took < WINDOW / 2, "approve took {took:?}");
    assert_eq!(w.env.ticket("CSLOG-7")["status"], "active");
    assert!(w.env.ticket("CSLOG-7")["last_error"].is_null());
    assert_eq!(w.with(|p| p.count("PATCH", "/work-items/")), 1);
    assert_eq!(w.with(|p| p.limiter.throttled), 0);
}

#[test]
fn a_429_is_waited_out_and_blocks_the_other_processes_too() {
    let mut plane = big_project();
    plane
        .faults
        .push(common::fake_plane::Fault::rate_limited(1).times(1));
    let w = limited_env(plane, "");
    let started = Instant::now();
    let out = cmd(w.env.path()).arg("poll").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(w.env.ticket("CSLOG-7")["status"], "pending");
    // Another process met a 429 (Retry-After 2): this one waits for it too, and says so.
    let ledger = w.env.path().join("data/pending-tickets.json.plane-rate");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    std::fs::write(
        &ledger,
        serde_json::json!({"sent": [], "blocked_until": now_ms + 1500}).to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let out = cmd(w.env.path())
        .args(["poll", "--dry-run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(
        err.contains("rate budget is spent") && err.contains("waiting"),
        "{err}"
    );
    assert_eq!(w.with(|p| p.limiter.throttled), 0);
}
