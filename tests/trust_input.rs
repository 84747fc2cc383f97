//! Hostile input that is not text: ids from Plane that are paths, pages that never end, config
//! files that are bombs or FIFOs.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_plane::{Endless, Limiter, Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};
use common::{bin_path, Env};
use serde_json::json;

#[test]
fn a_work_item_whose_ids_are_not_plane_ids_is_never_queued() {
    let mut p = Project::cslog();
    p.add(1, "Good one", "Ready for Claude", &[], "<p>ok</p>");
    p.add_hostile(2, "Traversal", "id", json!("../../../users/me"));
    p.add_hostile(3, "Negative", "sequence_id", json!(-3));
    p.add_hostile(4, "Zero", "sequence_id", json!(0));
    p.add_hostile(5, "Text sequence", "sequence_id", json!("5/../../x"));
    p.add_hostile(6, "Numeric id", "id", json!(42));
    p.add_hostile(7, "Bad project", "project", json!("../projects/other"));
    p.add_hostile(8, "Bad state", "state", json!("x/../../y"));
    let w = PlaneEnv::new(Plane::new(vec![p]), &[CSLOG], "", "");
    let out = w.run(&["poll"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("1 queued"), "{stdout}");
    let state = w.env.state();
    let ids: Vec<&String> = state["tickets"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["CSLOG-1"]);
    for name in [
        "Traversal",
        "Negative",
        "Zero",
        "Text sequence",
        "Numeric id",
        "Bad project",
    ] {
        assert!(
            stderr.contains(&format!("{name:?}")),
            "no warning names {name}: {stderr}"
        );
    }
    assert!(stderr.contains("../../../users/me"), "{stderr}");
    // None of them reached a request path.
    for r in w.plane.requests() {
        assert!(!r.url.contains(".."), "{} {}", r.method, r.url);
        assert!(!r.url.contains("users/me") || r.url.ends_with("/api/v1/users/me/"));
    }
}

#[test]
fn a_project_whose_identifier_cannot_start_an_id_is_skipped() {
    let mut p = Project::other("1b2c3d4e-0000-4000-8000-00000000c0c0", "../X", 0xc);
    p.add(1, "In a bad project", "Ready for Claude", &[], "<p>x</p>");
    let good = {
        let mut c = Project::cslog();
        c.add(1, "Good", "Ready for Claude", &[], "<p>ok</p>");
        c
    };
    let w = PlaneEnv::new(
        Plane::new(vec![good, p]),
        &[CSLOG, "1b2c3d4e-0000-4000-8000-00000000c0c0"],
        "",
        "",
    );
    let out = w.run(&["poll"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Skipped like an unreadable project: the others are polled, the poll says it failed.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"../X\"") && stderr.contains("skipped"),
        "{stderr}"
    );
    let state = w.env.state();
    let ids: Vec<&String> = state["tickets"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["CSLOG-1"]);
}

/// A poll (`args`) against pages that never end ends within 10 s with exit 1, and the state
/// file is as it was.
fn endless_poll_fails_cleanly(how: Endless, args: &[&str]) {
    let mut p = Project::cslog();
    p.add(1, "Queued before", "Ready for Claude", &[], "<p>a</p>");
    let w = PlaneEnv::new(Plane::new(vec![p]), &[CSLOG], "", "");
    w.ok(&["poll"]);
    let before = w.env.state_bytes().unwrap();
    if args.contains(&"--dry-run") {
        // Without a rate ledger a dry run keeps none (it creates no file).
        let _ = std::fs::remove_file(w.env.path().join("data/pending-tickets.json.plane-rate"));
    }
    w.with(|plane| {
        plane.endless = Some(how);
        // 2,000 pages in a few seconds: far above Plane's own rate, which is not studied here.
        plane.limiter = Limiter::new(1_000_000, Duration::from_secs(60));
        let p = plane.project(CSLOG);
        p.add(2, "Would be queued", "Ready for Claude", &[], "<p>b</p>");
        p.set_state(1, "Backlog"); // would drop CSLOG-1
    });
    let start = Instant::now();
    let mut child = Command::new(bin_path())
        .current_dir(w.env.path())
        .env_remove("PLANE_ORCH_CONFIG")
        .env_remove("RUST_LOG")
        .env(KEY_ENV, KEY)
        // Plane's rate is not what is studied here: a 10 ms window lets 2,000 pages through
        // at once (the budget's own ledger stays small).
        .env("PLANE_ORCH_RATE_WINDOW_MS", "10")
        .arg("--config")
        .arg(w.env.config_path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("poll against endless pages ({how:?}) still ran after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nothing read from this list is used"),
        "{stderr}"
    );
    // Nothing of what was read is merged: no ticket queued, none dropped.
    assert_eq!(w.env.state_bytes().unwrap(), before);
}

#[test]
fn a_repeated_cursor_ends_the_poll_cleanly() {
    endless_poll_fails_cleanly(Endless::RepeatCursor, &["poll"]);
}

#[test]
fn pages_that_never_end_stop_at_the_cap_cleanly() {
    // A dry run reads Plane the same way but writes no rate ledger, whose file updates (two
    // per request) would make 2,000 pages take longer than this test may.
    endless_poll_fails_cleanly(Endless::NewCursor, &["poll", "--dry-run"]);
}

/// Runs `plane-orch --config PATH list`; it must exit 2 within a second, naming `expect`.
fn refused_at_once(path: &std::path::Path, expect: &str) {
    let start = Instant::now();
    let mut child = Command::new(bin_path())
        .arg("--config")
        .arg(path)
        .arg("list")
        .env_remove("PLANE_ORCH_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} still not refused after 5 s", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(2), "{}: {stderr}", path.display());
    assert!(stderr.contains(expect), "{}: {stderr}", path.display());
    // Refused, not worked through: a bomb would take minutes. The bound leaves room for a
    // debug build on a busy machine.
    assert!(
        took < Duration::from_secs(3),
        "{} took {took:?}",
        path.display()
    );
}

#[test]
fn config_bombs_fifos_and_giant_files_are_refused_at_once() {
    let env = Env::new();
    let dir = env.path();

    let nested = dir.join("nested.yaml");
    let depth = 100_000;
    std::fs::write(
        &nested,
        format!(
            "plane:\n  project_ids: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    )
    .unwrap();
    refused_at_once(&nested, "nest deeper than");

    let maps = dir.join("maps.yaml");
    std::fs::write(&maps, format!("triggers: {}\n", "{a: ".repeat(50_000))).unwrap();
    refused_at_once(&maps, "nest deeper than");

    // Ten levels of ten aliases each: ten billion strings if expanded.
    let mut bomb = String::from(
        "triggers:\n  a0: &a0 [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(",");
        bomb.push_str(&format!("  a{i}: &a{i} [{refs}]\n"));
    }
    bomb.push_str("plane:\n  project_ids: *a9\n");
    let aliases = dir.join("aliases.yaml");
    std::fs::write(&aliases, bomb).unwrap();
    refused_at_once(&aliases, "invalid config file");

    let giant = dir.join("giant.yaml");
    std::fs::write(&giant, format!("# {}\n", "x".repeat(1024 * 1024))).unwrap();
    refused_at_once(&giant, "larger than 256 KiB");

    let fifo = dir.join("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    refused_at_once(&fifo, "not a regular file");

    refused_at_once(dir, "not a regular file");
    refused_at_once(std::path::Path::new("/dev/zero"), "not a regular file");
}
