//! `poll` against a fake Plane: what gets queued, reconciling the queue, overlapping polls.

mod common;

use std::time::{Duration, Instant};

use common::fake_plane::{Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV, OPS};
use common::json;
use common::sessions::{wait_for, TmuxGuard};
use serde_json::Value;

const LONG_HTML: &str =
    "<div><h2>Background</h2><p>Rotate the <strong>logs</strong> &amp; keep 7.</p>\
    <ul><li><p>first bullet</p></li><li><p>second bullet</p></li></ul>\
    <p>See <a href=\"https://example.com/spec\">the spec</a>.</p></div>";

/// CSLOG holds 250 work items (three pages of 100), OPS 120 (two pages). Triggered:
/// CSLOG-7 (state), CSLOG-150 (label), CSLOG-249 (state and label), OPS-3 (label),
/// OPS-101 (state). Not triggered: CSLOG-120 (another label), CSLOG-230 (another state).
fn two_projects() -> Plane {
    let mut cslog = Project::cslog();
    cslog.fill(1, 250);
    cslog
        .items
        .retain(|i| ![7, 120, 150, 230, 249].contains(&i["sequence_id"].as_u64().unwrap()));
    cslog.add(7, "Add log rotation", "Ready for Claude", &[], LONG_HTML);
    cslog.add(120, "Docs only", "Backlog", &["docs"], "<p>x</p>");
    cslog.add(
        150,
        "Labelled for Claude",
        "Backlog",
        &["bug", "claude"],
        "<p>Fix &lt;it&gt;</p>",
    );
    cslog.add(230, "Being worked on", "In Progress", &[], "<p>x</p>");
    cslog.add(
        249,
        "Both triggers",
        "Ready for Claude",
        &["claude"],
        "<p>b</p>",
    );
    cslog.item_mut(7)["created_at"] = "2026-05-02T11:14:22.481920+02:00".into();
    let mut ops = Project::other(OPS, "OPS", 0xa);
    ops.fill(1, 120);
    ops.items
        .retain(|i| ![3, 101].contains(&i["sequence_id"].as_u64().unwrap()));
    ops.add(3, "Ops by label", "Todo", &["claude"], "<p>ops three</p>");
    ops.add(
        101,
        "Ops by state",
        "Ready for Claude",
        &[],
        "<p>ops 101</p>",
    );
    Plane::new(vec![cslog, ops])
}

fn ids(state: &Value) -> Vec<String> {
    state["tickets"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn a_poll_queues_exactly_the_triggered_tickets_of_every_page_of_every_project() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG, OPS], "", "");
    let out = w.ok(&["poll"]);
    assert!(
        out.ends_with("5 queued, 0 completed, 0 sessions lost\n"),
        "{out}"
    );

    let state = w.env.state();
    assert_eq!(
        ids(&state),
        ["CSLOG-150", "CSLOG-249", "CSLOG-7", "OPS-101", "OPS-3"]
    );
    let t = &state["tickets"]["CSLOG-7"];
    assert_eq!(t["status"], "pending");
    assert_eq!(t["title"], "Add log rotation");
    assert_eq!(t["trigger_type"], "status_change");
    assert_eq!(t["url"], "https://plane.example/acme/browse/CSLOG-7/");
    assert_eq!(t["issue_id"], w.with(|p| p.project(CSLOG).item_id(7)));
    assert_eq!(t["project_id"], CSLOG);
    // Kept as the allow-list sanitiser leaves it: links gain rel="noopener noreferrer".
    assert_eq!(
        t["description_html"],
        LONG_HTML.replace(
            "<a href=\"https://example.com/spec\">",
            "<a href=\"https://example.com/spec\" rel=\"noopener noreferrer\">"
        )
    );
    // The text is made from the stored HTML: read it where scripts read it.
    assert!(
        t.get("description_text").is_none(),
        "the text is stored twice: {t}"
    );
    let shown = json(&w.ok(&["show", "CSLOG-7", "--json"]));
    let text = shown["description_text"].as_str().unwrap();
    for part in [
        "Background",
        "logs",
        "& keep 7.",
        "first bullet",
        "second bullet",
        "https://example.com/spec",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
    assert!(!text.contains('<') && !text.contains("&amp;"), "{text}");
    assert_eq!(t["plane_created_at"], "2026-05-02T11:14:22.481920+02:00");
    assert_eq!(t["priority"], "none");
    let t = &state["tickets"]["CSLOG-150"];
    assert_eq!(t["trigger_type"], "label");
    assert_eq!(t["labels"], serde_json::json!(["bug", "claude"]));
    let shown = json(&w.ok(&["show", "CSLOG-150", "--json"]));
    assert_eq!(shown["description_text"], "Fix <it>");
    assert_eq!(t["priority"], "high");
    assert_eq!(
        state["tickets"]["CSLOG-249"]["trigger_type"],
        "status_change"
    );
    assert_eq!(state["tickets"]["OPS-3"]["trigger_type"], "label");
    assert_eq!(
        state["tickets"]["OPS-101"]["url"],
        "https://plane.example/acme/browse/OPS-101/"
    );

    // Every page was read with per_page=100 and Plane's cursors, with the key.
    let requests = w.plane.requests();
    let pages: Vec<&str> = requests
        .iter()
        .filter(|r| r.url.contains(&format!("{CSLOG}/work-items/")))
        .map(|r| r.url.as_str())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages.iter().all(|u| u.contains("per_page=100")),
        "{pages:?}"
    );
    assert!(
        pages[1].contains("cursor=100:1:0") && pages[2].contains("cursor=100:2:0"),
        "{pages:?}"
    );
    assert_eq!(w.with(|p| p.count("GET", &format!("{OPS}/work-items/"))), 2);
    assert!(requests.iter().all(|r| r.header("x-api-key") == Some(KEY)));
    assert!(requests
        .iter()
        .all(|r| r.url.split('?').next().unwrap().ends_with('/')));

    // A second poll finds nothing new and leaves the state file alone.
    let bytes = w.env.state_bytes().unwrap();
    let mtime = std::fs::metadata(w.env.state_path())
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let out = w.ok(&["poll"]);
    assert_eq!(out, "0 queued, 0 completed, 0 sessions lost\n");
    assert_eq!(w.env.state_bytes().unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(w.env.state_path())
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
}

#[test]
fn poll_json_prints_the_report() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG, OPS], "", "");
    let report = json(&w.ok(&["poll", "--json"]));
    assert_eq!(report["queued"], 5);
    assert_eq!(report["completed"], 0);
    assert_eq!(report["sessions_lost"], 0);
    assert_eq!(report["skipped"], false);
    assert_eq!(report["queued_ids"].as_array().unwrap().len(), 5);
}

#[test]
fn a_removed_ticket_is_queued_again_only_after_it_left_the_trigger_and_came_back() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG], "", "");
    w.ok(&["poll"]);
    w.ok(&["remove", "CSLOG-7"]);
    let issue = w.with(|p| p.project(CSLOG).item_id(7));
    assert!(w.env.state()["dismissed"].get(&issue).is_some());

    // Still triggered: not queued again.
    assert!(w.ok(&["poll"]).starts_with("0 queued"));
    assert!(w.env.state()["tickets"].get("CSLOG-7").is_none());

    // It leaves the trigger: the dismissal is forgotten, nothing queued.
    w.with(|p| p.project(CSLOG).set_state(7, "Backlog"));
    assert!(w.ok(&["poll"]).contains("0 queued"));
    assert!(w.env.state()["dismissed"].get(&issue).is_none());
    assert!(w.env.state()["tickets"].get("CSLOG-7").is_none());

    // Re-triggered: queued again.
    w.with(|p| p.project(CSLOG).set_state(7, "Ready for Claude"));
    assert!(w.ok(&["poll"]).contains("1 queued"));
    assert_eq!(w.env.ticket("CSLOG-7")["status"], "pending");
}

#[test]
fn a_done_ticket_is_never_queued_again() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG], "", "");
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    w.ok(&["complete", "CSLOG-7", "rotated the logs"]);
    w.ok(&["update-plane", "CSLOG-7"]);
    assert_eq!(w.env.ticket("CSLOG-7")["status"], "done");
    // Still in the trigger state in Plane, and even after leaving and re-entering it.
    assert!(w.ok(&["poll"]).starts_with("0 queued"));
    w.with(|p| p.project(CSLOG).set_state(7, "Backlog"));
    w.ok(&["poll"]);
    w.with(|p| p.project(CSLOG).set_state(7, "Ready for Claude"));
    assert!(w.ok(&["poll"]).starts_with("0 queued"));
    assert_eq!(w.env.ticket("CSLOG-7")["status"], "done");
}

#[test]
fn a_pending_ticket_that_left_every_trigger_is_dropped_and_an_edited_one_is_updated() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG], "", "");
    w.ok(&["poll"]);
    w.with(|p| {
        let c = p.project(CSLOG);
        c.set_labels(150, &["bug"]);
        c.item_mut(249)["name"] = "Both triggers, renamed".into();
        c.item_mut(249)["description_html"] = "<p>new <em>text</em></p>".into();
    });
    let out = w.ok(&["poll"]);
    assert!(out.contains("dropped pending CSLOG-150"), "{out}");
    assert!(out.contains("left every trigger"), "{out}");
    let state = w.env.state();
    assert!(state["tickets"].get("CSLOG-150").is_none());
    let t = &state["tickets"]["CSLOG-249"];
    assert_eq!(t["title"], "Both triggers, renamed");
    let shown = json(&w.ok(&["show", "CSLOG-249", "--json"]));
    assert_eq!(shown["description_text"], "new *text*");
    let events: Vec<&str> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["queued", "title_changed", "description_changed"]);

    // Dropped, not dismissed: back in a trigger, it is queued again.
    w.with(|p| p.project(CSLOG).set_labels(150, &["claude"]));
    assert!(w.ok(&["poll"]).contains("1 queued"));
}

#[test]
fn an_active_ticket_closed_in_plane_is_flagged_once_and_keeps_its_text() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG], "", "");
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    w.with(|p| {
        let c = p.project(CSLOG);
        c.set_state(7, "Done");
        c.item_mut(7)["name"] = "Renamed while active".into();
    });
    let out = w.ok(&["poll"]);
    assert!(out.contains("flagged active CSLOG-7"), "{out}");
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "active");
    assert!(t["plane_closed_at"].is_string());
    assert_eq!(t["title"], "Add log rotation");
    assert_eq!(
        w.env.events("CSLOG-7"),
        ["queued", "approved", "title_changed", "plane_closed"]
    );

    let bytes = w.env.state_bytes().unwrap();
    let out = w.ok(&["poll"]);
    assert!(!out.contains("flagged"), "{out}");
    assert_eq!(w.env.state_bytes().unwrap(), bytes);
}

#[test]
fn dry_run_reads_plane_writes_nothing_and_says_what_it_would_do() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG], "", "");
    let out = w.ok(&["poll", "--dry-run"]);
    assert!(out.contains("dry run"), "{out}");
    assert!(out.contains("queued CSLOG-7"), "{out}");
    assert!(out.contains("3 queued"), "{out}");
    assert_eq!(w.env.files(), Vec::<String>::new());
}

#[test]
fn a_trigger_name_no_state_has_is_a_config_error_naming_it_and_the_project() {
    let w = PlaneEnv::new(
        two_projects(),
        &[CSLOG],
        "  trigger:\n    states: [\"Ready for Robots\"]\n",
        "",
    );
    let err = w.fails(2, &["poll"]);
    assert!(
        err.contains("\"Ready for Robots\"") && err.contains("CSLOG"),
        "{err}"
    );
    assert!(err.contains("plane.trigger.states"), "{err}");
    assert!(w.env.state_bytes().is_none());
}

#[test]
fn a_poll_that_watches_plane_without_its_key_fails_with_exit_2() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG], "", "");
    // A completion file is still handled: local work does not wait for Plane.
    w.env.add("CSLOG-1", "Local");
    w.env.ok(&["approve", "CSLOG-1", "--no-session"]);
    let dir = w.env.path().join("data/completions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("completion-CSLOG-1.txt"), "done by file").unwrap();
    let err = w.env.fails(2, &["--quiet", "poll"]);
    assert!(
        err.contains("watches Plane") && err.contains(KEY_ENV) && err.contains("env file"),
        "{err}"
    );
    assert_eq!(w.env.ticket("CSLOG-1")["status"], "completed");
    assert!(w.plane.requests().is_empty());
}

#[test]
fn polling_without_plane_configured_warns_and_succeeds() {
    let w = PlaneEnv::new(two_projects(), &[], "", "");
    let out = w.cmd().arg("poll").output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not configured") && err.contains("plane.project_ids is empty"),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 queued, 0 completed, 0 sessions lost\n"
    );
    // --quiet: nothing at all when nothing went wrong.
    let out = w.cmd().args(["--quiet", "poll"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert!(w.plane.requests().is_empty());
}

#[test]
fn two_polls_at_once_one_runs_and_the_other_exits_at_once_saying_so() {
    let mut plane = two_projects();
    plane.delay = Duration::from_millis(150);
    let w = PlaneEnv::new(plane, &[CSLOG], "", "");
    let spawn = || {
        let mut cmd = std::process::Command::new(common::bin_path());
        cmd.current_dir(w.env.path())
            .env(KEY_ENV, KEY)
            .env_remove("RUST_LOG")
            .args(["--config", w.env.config_path().to_str().unwrap(), "poll"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let first = spawn();
    // The first one holds the poll lock once it has sent its first request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.plane.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first poll never reached Plane"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = spawn().wait_with_output().unwrap();
    assert!(second.status.success());
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(said.contains("another poll is running"), "{said}");
    let first = first.wait_with_output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("3 queued"));
    assert_eq!(ids(&w.env.state()).len(), 3);
}

/// Kills the spawned process when the test ends, even on failure.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn poll_loop_keeps_ticking_and_a_failed_tick_does_not_end_it() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG], "", "");
    // The first tick fails (500 on every try), the next ones work.
    w.with(|p| {
        p.faults.push(
            common::fake_plane::Fault::new(
                "GET",
                "/states/",
                500,
                serde_json::json!({"error": "x"}),
            )
            .times(4),
        );
    });
    let child = std::process::Command::new(common::bin_path())
        .current_dir(w.env.path())
        .env(KEY_ENV, KEY)
        .env("PLANE_ORCH_RETRY_BASE_MS", "1")
        .args(["--config", w.env.config_path().to_str().unwrap()])
        .args(["poll", "--loop", "--interval", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Kill(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ticks = w.with(|p| p.count("GET", "/labels/"));
        if ticks >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the loop did not tick twice");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.env.state_bytes().is_none() {
        assert!(Instant::now() < deadline, "the loop never queued anything");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ids(&w.env.state()).len(), 3);
}

#[test]
fn a_poll_in_a_pipe_draws_no_progress_line() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG, OPS], "", "");
    let out = w.run(&["poll"]);
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains('\x1b'),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_poll_at_a_terminal_shows_projects_and_pages_then_clears_the_line() {
    let w = PlaneEnv::new(two_projects(), &[CSLOG, OPS], "", "");
    let tmux = TmuxGuard::new();
    let raw = w.env.path().join("terminal.out");
    // The pane is the terminal; a short pause lets pipe-pane start recording first.
    let script = format!(
        "sleep 0.5; env {KEY_ENV}={KEY} NO_COLOR=1 '{}' --config '{}' poll; sleep 30",
        common::bin_path().display(),
        w.env.config_path().display()
    );
    let started = tmux.tmux(&[
        "new-session",
        "-d",
        "-s",
        "poll",
        "-x",
        "150",
        "-y",
        "20",
        &script,
    ]);
    assert!(started.status.success(), "{started:?}");
    let piped = tmux.tmux(&[
        "pipe-pane",
        "-t",
        "=poll:",
        &format!("cat > '{}'", raw.display()),
    ]);
    assert!(piped.status.success(), "{piped:?}");
    wait_for("the poll to finish", || {
        std::fs::read_to_string(&raw).is_ok_and(|t| t.contains("sessions lost"))
    });
    let seen = std::fs::read_to_string(&raw).unwrap();
    assert!(seen.contains("Plane project CSLOG"), "{seen:?}");
    assert!(seen.contains("page 1"), "{seen:?}");
    // Each step redraws the line, and the last clears it before the report.
    assert!(seen.contains("\r\x1b[2K"), "{seen:?}");
    assert!(!seen.contains(KEY), "the key reached the terminal");
}

#[test]
fn one_unreadable_project_of_three_is_skipped_the_other_two_are_queued_and_poll_exits_1() {
    // A project deleted in Plane (or private, and the key's user removed from it): 404.
    let gone = "7e57ab1e-0000-4000-8000-0000000000ff";
    let w = PlaneEnv::new(two_projects(), &[CSLOG, gone, OPS], "", "");
    // A pending ticket of that project, queued when it could still be read.
    w.env.add("GONE-1", "old");
    let mut state = w.env.state();
    let t = &mut state["tickets"]["GONE-1"];
    t["trigger_type"] = "label".into();
    t["issue_id"] = "7e57ab1e-2222-4000-8000-000000000001".into();
    t["project_id"] = gone.into();
    std::fs::write(w.env.state_path(), serde_json::to_vec(&state).unwrap()).unwrap();
    let out = w.run(&["poll", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report["queued"], 5, "{report}");
    let failed = report["failed_projects"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["project_id"], gone);
    assert!(
        failed[0]["error"].as_str().unwrap().contains("404"),
        "{report}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(gone) && err.contains("could not be read"),
        "{err}"
    );
    let state = w.env.state();
    let mut queued = ids(&state);
    queued.sort();
    assert_eq!(
        queued,
        [
            "CSLOG-150",
            "CSLOG-249",
            "CSLOG-7",
            "GONE-1",
            "OPS-101",
            "OPS-3"
        ],
        "the unread project's ticket must stay"
    );
    assert_eq!(w.env.ticket("GONE-1")["status"], "pending");
    let log = std::fs::read_to_string(w.env.path().join("data/orchestrator.log")).unwrap();
    assert!(
        log.contains(&format!("Plane project {gone} skipped")),
        "{log}"
    );

    // The text output names it too, and a second poll changes nothing more.
    let out = w.run(&["poll"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("skipped Plane project {gone}")),
        "{stdout}"
    );
    assert!(stdout.contains("0 queued"), "{stdout}");
}
