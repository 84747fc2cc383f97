//! How plane-orch talks to Plane: retries, failures, keys, old servers.

mod common;

use common::fake_plane::{Fault, Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};
use serde_json::json;

fn one_project() -> Plane {
    let mut p = Project::cslog();
    p.fill(1, 5);
    p.set_state(2, "Ready for Claude");
    Plane::new(vec![p])
}

#[test]
fn a_429_is_retried_after_retry_after_and_the_poll_then_succeeds() {
    let mut plane = one_project();
    plane.faults.push(Fault::rate_limited(0).times(2));
    let w = PlaneEnv::new(plane, &[CSLOG], "", "");
    let out = w.ok(&["poll"]);
    assert!(out.contains("1 queued, "), "{out}");
    // The first request was answered 429 twice, then sent a third time.
    let first = &w.plane.requests()[0].url;
    assert_eq!(
        w.plane
            .requests()
            .iter()
            .filter(|r| &r.url == first)
            .count(),
        3
    );
    assert_eq!(w.env.ticket("CSLOG-2")["status"], "pending");
}

#[test]
fn plane_failing_every_time_exits_1_and_leaves_the_queue_unchanged() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    w.ok(&["poll"]);
    let before = w.env.state_bytes().unwrap();
    w.with(|p| {
        p.project(CSLOG).set_state(3, "Ready for Claude");
        p.project(CSLOG).set_state(2, "Backlog");
        p.faults.push(Fault::new(
            "GET",
            "/work-items/",
            500,
            json!({"error": "Something went wrong please try again later"}),
        ));
    });
    let err = w.fails(1, &["poll"]);
    assert!(err.contains("500") && err.contains("4 times"), "{err}");
    assert!(err.contains("Something went wrong"), "{err}");
    assert_eq!(w.env.state_bytes().unwrap(), before);
    assert_eq!(w.with(|p| p.count("GET", "/work-items/")), 1 + 4);
}

#[test]
fn a_4xx_is_not_retried_and_plane_s_message_is_shown() {
    let mut plane = one_project();
    plane.faults.push(Fault::new(
        "GET",
        "/labels/",
        400,
        json!({"detail": "Invalid cursor parameter."}),
    ));
    let w = PlaneEnv::new(plane, &[CSLOG], "", "");
    let err = w.fails(1, &["poll"]);
    assert!(
        err.contains("400") && err.contains("Invalid cursor parameter."),
        "{err}"
    );
    assert_eq!(w.with(|p| p.count("GET", "/labels/")), 1);
}

#[test]
fn a_bad_key_exits_1_naming_the_key_s_env_var_and_never_showing_the_key() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    let out = w
        .env
        .cmd()
        .env(KEY_ENV, "plane_api_00000000000000000000000000000000")
        .args(["-vvv", "poll"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(KEY_ENV) && err.contains("403"), "{err}");
    assert!(err.contains("Given API token is not valid"), "{err}");
    assert!(
        !err.contains("plane_api_0000"),
        "the key was printed: {err}"
    );
    assert!(w.env.state_bytes().is_none());
}

#[test]
fn the_key_never_appears_even_in_trace_logs() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    // PlaneEnv::run checks stdout, stderr and the log file for the key.
    let out = w.run(&["-vvv", "poll"]);
    assert!(out.status.success());
    assert!(w
        .plane
        .requests()
        .iter()
        .all(|r| r.header("x-api-key") == Some(KEY)));
}

#[test]
fn a_project_the_key_cannot_see_is_an_error_naming_it_and_the_others_are_polled() {
    let missing = "00000000-0000-4000-8000-000000000000";
    let w = PlaneEnv::new(one_project(), &[CSLOG, missing], "", "");
    let err = w.fails(1, &["poll"]);
    assert!(err.contains(missing) && err.contains("404"), "{err}");
    assert!(err.contains("plane.project_ids"), "{err}");
    assert_eq!(w.env.ticket("CSLOG-2")["status"], "pending");
}

#[test]
fn a_base_url_ending_in_api_v1_works_with_a_warning() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    let config = std::fs::read_to_string(w.env.config_path()).unwrap();
    let url = w.plane.url.clone();
    w.env
        .set_config(&config.replace(&url, &format!("{url}/api/v1/")));
    let out = w.run(&["poll"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("ends in /api/v1") && err.contains("plane.base_url"),
        "{err}"
    );
    assert_eq!(w.env.ticket("CSLOG-2")["status"], "pending");
    assert!(w
        .plane
        .requests()
        .iter()
        .all(|r| r.url.starts_with("/api/v1/") && !r.url.contains("/api/v1/api/")));
}

#[test]
fn a_doubled_api_path_in_a_404_is_explained() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    let config = std::fs::read_to_string(w.env.config_path()).unwrap();
    let url = w.plane.url.clone();
    w.env
        .set_config(&config.replace(&url, &format!("{url}/api")));
    let err = w.fails(1, &["poll"]);
    assert!(err.contains("\"/api\" is in it twice"), "{err}");
    assert!(err.contains("Plane's origin"), "{err}");
    assert!(!err.contains("check plane.workspace_slug"), "{err}");
}

#[test]
fn an_old_plane_without_work_items_is_read_through_issues() {
    let mut plane = one_project();
    plane.legacy = true;
    let w = PlaneEnv::new(plane, &[CSLOG], "", "");
    assert!(w.ok(&["poll"]).contains("1 queued, "));
    // One try at work-items/, then issues/ for the rest of the run.
    assert_eq!(w.with(|p| p.count("GET", "/work-items/")), 1);
    assert_eq!(w.with(|p| p.count("GET", "/issues/")), 1);
    w.ok(&["approve", "CSLOG-2", "--no-session"]);
    w.ok(&["complete", "CSLOG-2", "done"]);
    w.ok(&["update-plane", "CSLOG-2"]);
    assert_eq!(w.with(|p| p.count("POST", "/issues/")), 1);
    assert_eq!(w.with(|p| p.comments.len()), 1);
}

#[test]
fn a_redirect_is_reported_rather_than_followed() {
    let mut plane = one_project();
    let mut fault = Fault::new("GET", "/states/", 301, json!(null));
    fault
        .headers
        .push(("Location".into(), "/elsewhere/".into()));
    plane.faults.push(fault);
    let w = PlaneEnv::new(plane, &[CSLOG], "", "");
    let err = w.fails(1, &["poll"]);
    assert!(
        err.contains("redirect") && err.contains("plane.base_url"),
        "{err}"
    );
}

#[test]
fn completion_files_are_still_handled_when_plane_fails_and_the_error_says_so() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    w.env.add("CSLOG-TEST", "by hand");
    w.ok(&["approve", "CSLOG-TEST", "--no-session"]);
    let dir = w.env.path().join("data/completions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("completion-CSLOG-TEST.txt"), "done by file").unwrap();
    w.with(|p| {
        p.faults
            .push(Fault::new("GET", "/states/", 503, json!({"error": "down"})))
    });
    let err = w.fails(1, &["poll"]);
    assert!(err.contains("503") && err.contains("CSLOG-TEST"), "{err}");
    assert_eq!(w.env.ticket("CSLOG-TEST")["status"], "completed");
    assert_eq!(w.env.state()["tickets"].as_object().unwrap().len(), 1);
}

#[test]
fn a_request_that_times_out_is_sent_again() {
    let mut plane = one_project();
    plane
        .slow_once
        .push(("/states/".into(), std::time::Duration::from_millis(1500)));
    let w = PlaneEnv::new(plane, &[CSLOG], "  timeout_secs: 1\n", "");
    let out = w.ok(&["poll"]);
    assert!(out.contains("1 queued, "), "{out}");
    assert_eq!(w.with(|p| p.count("GET", "/states/")), 2);
}
