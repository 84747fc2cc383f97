//! The log file: state-changing commands append timestamped lines; reading commands and
//! commands refused before they start leave no file.

mod common;

use common::fake_plane::{Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};
use common::Env;

fn log_text(env: &Env) -> String {
    std::fs::read_to_string(env.path().join("data/orchestrator.log")).expect("log file exists")
}

fn is_rfc3339_line(line: &str, level: &str) -> bool {
    let mut parts = line.split_whitespace();
    let stamp = parts.next().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(stamp).is_ok() && parts.next() == Some(level)
}

#[test]
fn add_appends_a_timestamped_info_line_to_the_log_file() {
    let env = Env::new();
    env.add("CSLOG-1", "One");
    env.ok(&["approve", "CSLOG-1", "--no-session"]);
    let log = log_text(&env);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(is_rfc3339_line(lines[0], "INFO"), "{log}");
    assert!(
        lines[0].ends_with("CSLOG-1: queued by hand as pending"),
        "{log}"
    );
    assert!(lines[1].contains("CSLOG-1: approved"), "{log}");
}

#[test]
fn a_failed_state_change_is_recorded_in_the_log_file_and_printed_once() {
    let env = Env::new();
    env.add("CSLOG-1", "One");
    let stderr = env.fails(4, &["add", "CSLOG-1", "--title", "Again"]);
    assert_eq!(stderr.matches("exists already").count(), 1, "{stderr}");
    let log = log_text(&env);
    let last = log.lines().last().unwrap();
    assert!(is_rfc3339_line(last, "ERROR"), "{log}");
    assert!(last.contains("CSLOG-1 exists already"), "{log}");
}

#[test]
fn quiet_keeps_stderr_clean_while_the_file_still_records() {
    let env = Env::new();
    let out = env
        .cmd()
        .env("RUST_LOG", "")
        .args(["-q", "add", "CSLOG-1", "--title", "One"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log_text(&env).contains("queued by hand"));
}

#[test]
fn verbose_shows_info_on_stderr() {
    let env = Env::new();
    let out = env
        .cmd()
        .args(["-v", "add", "CSLOG-1", "--title", "One"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("queued by hand"));
}

#[test]
fn rust_log_overrides_the_file_level() {
    let env = Env::with_config("log:\n  level: error\n");
    env.add("CSLOG-1", "One");
    let path = env.path().join("data/orchestrator.log");
    let quiet = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(!quiet.contains("queued"), "{quiet}");
    let out = env
        .cmd()
        .env("RUST_LOG", "info")
        .args(["add", "CSLOG-2", "--title", "Two"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(log_text(&env).contains("CSLOG-2: queued"));
}

#[test]
fn the_log_goes_where_log_path_says_and_its_folder_is_made() {
    let env = Env::with_config("log:\n  path: logs/deep/plane-orch.log\n");
    env.add("CSLOG-1", "One");
    let text = std::fs::read_to_string(env.path().join("logs/deep/plane-orch.log")).unwrap();
    assert!(text.contains("CSLOG-1: queued"));
    assert!(!env.path().join("data/orchestrator.log").exists());
}

#[test]
fn a_bad_id_creates_no_file_at_all() {
    let env = Env::new();
    let stderr = env.fails(2, &["add", "../x", "--title", "Bad"]);
    assert!(stderr.contains("invalid ticket id"), "{stderr}");
    env.fails(2, &["approve", "A-1;rm"]);
    assert_eq!(env.files(), Vec::<String>::new());
}

#[test]
fn reading_commands_leave_no_log_file() {
    let env = Env::new();
    env.ok(&["list"]);
    env.fails(3, &["show", "CSLOG-9"]);
    assert_eq!(env.files(), Vec::<String>::new());
}

#[test]
fn an_unwritable_log_path_is_a_warning_not_a_failure() {
    let env = Env::with_config("log:\n  path: config.yaml/orchestrator.log\n");
    let out = env
        .cmd()
        .args(["add", "CSLOG-1", "--title", "One"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the log file"), "{stderr}");
    assert!(env.ticket("CSLOG-1").is_object());
}

#[test]
fn a_poll_against_plane_logs_timestamped_info_lines_and_never_the_key() {
    let mut project = Project::cslog();
    project.fill(1, 3);
    project.add(7, "Add log rotation", "Ready for Claude", &[], "<p>x</p>");
    let w = PlaneEnv::new(Plane::new(vec![project]), &[CSLOG], "", "");
    w.ok(&["poll"]);
    w.ok(&["poll"]);
    let log = log_text(&w.env);
    assert!(!log.contains(KEY), "the API key appeared in the log");
    let info: Vec<&str> = log.lines().filter(|l| is_rfc3339_line(l, "INFO")).collect();
    assert_eq!(
        info.iter()
            .filter(|l| l.contains("Plane project CSLOG") && l.ends_with(": 4 work items"))
            .count(),
        2,
        "one line per poll about what Plane held:\n{log}"
    );
    assert!(
        info.iter()
            .any(|l| l.ends_with("queued CSLOG-7: Add log rotation")),
        "{log}"
    );
    let ticks: Vec<&&str> = info.iter().filter(|l| l.contains(" poll: ")).collect();
    assert_eq!(ticks.len(), 2, "one summary per poll:\n{log}");
    assert!(
        ticks[0].ends_with(
            "poll: 1 queued, 0 completed, 0 sessions lost, 0 dropped, 0 flagged, 0 edited in Plane"
        ),
        "{log}"
    );
    assert!(ticks[1].contains("poll: 0 queued"), "{log}");
    assert_eq!(
        log.lines().count(),
        info.len(),
        "a healthy poll logs no warnings:\n{log}"
    );
}

#[test]
fn a_poll_refused_by_plane_logs_the_error_without_the_key() {
    let w = PlaneEnv::new(Plane::new(vec![Project::cslog()]), &[CSLOG], "", "");
    let wrong = "plane_api_0000_not_the_key_0000";
    let out = w.cmd().env(KEY_ENV, wrong).arg("poll").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PLANE_API_KEY"), "{stderr}");
    let log = log_text(&w.env);
    let last = log.lines().last().unwrap_or_default();
    assert!(is_rfc3339_line(last, "ERROR"), "{log}");
    assert!(
        last.contains("refused the API key in PLANE_API_KEY"),
        "{log}"
    );
    for text in [
        &log,
        &stderr.to_string(),
        &String::from_utf8_lossy(&out.stdout).to_string(),
    ] {
        assert!(
            !text.contains(wrong) && !text.contains(KEY),
            "a key was written: {text}"
        );
    }
}

#[test]
fn a_poll_without_plane_still_logs_its_tick() {
    let env = Env::new();
    env.ok(&["poll"]);
    let log = log_text(&env);
    assert!(
        log.lines().any(|l| is_rfc3339_line(l, "INFO")
            && l.ends_with("poll: 0 queued, 0 completed, 0 sessions lost, 0 dropped, 0 flagged, 0 edited in Plane (Plane not read: not configured)")),
        "{log}"
    );
}
