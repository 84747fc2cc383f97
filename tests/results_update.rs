//! What update-plane gives the reviewer: the branch's commits and diffstat in the comment, the
//! push before it, the review link once, and the warnings that stop it. Real sessions, a real
//! repository whose origin is a local bare repository, a fake Plane.

mod common;

use std::time::{Duration, Instant};

use common::fake_plane::Fault;
use common::json;
use common::results::{git, World};
use serde_json::json;

const REVIEW: &str =
    "  review_url: https://git.example/acme/app/compare/{base}...{branch}?expand=1&t={id}\n";

#[test]
fn the_comment_lists_the_commits_and_diffstat_and_the_link_is_added() {
    let w = World::new(REVIEW);
    let wt = w.approved(7);
    w.commit(&wt, "a.txt", "one\ntwo\nthree\n", "Add <a> & friends");
    w.commit(&wt, "b.txt", "b\n", "Add b");
    let t = w.ok(&["complete", "CSLOG-7", "Fixed the <thing>", "--json"]);
    let t = json(&t);
    // Looked at when completed: shown by the API shape too.
    let b = &t["branch"];
    assert_eq!(b["name"], "claude/cslog-7", "{t}");
    assert_eq!(b["commit_count"], 2);
    assert_eq!(b["files_changed"], 2);
    assert_eq!(b["insertions"], 4);
    assert_eq!(b["commits"][0]["subject"], "Add b");
    assert_eq!(b["unpushed"], 2);
    let shown = w.ok(&["show", "CSLOG-7"]);
    assert!(
        shown.contains("commits:   2 (2 files changed, +4 -0)"),
        "{shown}"
    );
    assert!(shown.contains("Add <a> & friends"), "{shown}");

    // Commits on no remote while push is off: refused, nothing sent.
    let err = w.fails(4, &["update-plane", "CSLOG-7"]);
    assert!(
        err.contains("on no remote") && err.contains("--force"),
        "{err}"
    );
    assert!(w.comments().is_empty());
    assert_eq!(w.ticket_status("CSLOG-7"), "completed");

    git(&w.s.repo, &["push", "-q", "origin", "claude/cslog-7"]);
    let out = w.ok(&["update-plane", "CSLOG-7"]);
    assert!(out.contains("link added"), "{out}");
    let comments = w.comments();
    assert_eq!(comments.len(), 1);
    let html = comments[0]["comment_html"].as_str().unwrap();
    assert!(html.starts_with("<p>Fixed the &lt;thing&gt;</p>"), "{html}");
    assert!(
        html.contains("<code>claude/cslog-7</code>: 2 commits, 2 files changed, +4 −0"),
        "{html}"
    );
    assert!(html.contains("Add &lt;a&gt; &amp; friends</li>"), "{html}");
    let url = "https://git.example/acme/app/compare/main...claude/cslog-7?expand=1&t=CSLOG-7";
    assert!(
        html.contains(&format!("href=\"{}\"", url.replace('&', "&amp;"))),
        "{html}"
    );
    let links = w.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["url"], url);
    assert_eq!(links[0]["title"], "Review claude/cslog-7");
    let t = w.s.ticket("CSLOG-7");
    assert_eq!(t["status"], "done");
    assert_eq!(t["plane_sync"]["link_id"], links[0]["id"]);
}

#[test]
fn push_on_puts_the_branch_on_the_remote_before_the_comment() {
    let w = World::new(&format!("  push: true\n{REVIEW}"));
    let wt = w.approved(7);
    let head = w.commit(&wt, "a.txt", "a\n", "Add a");
    w.ok(&["complete", "CSLOG-7", "done"]);
    // The comment fails: the push has happened already, and is on the remote.
    w.plane.with(|p| {
        p.faults.push(Fault::new(
            "POST",
            "/comments/",
            500,
            json!({"error": "down"}),
        ));
    });
    w.fails(1, &["update-plane", "CSLOG-7"]);
    assert_eq!(
        w.on_remote("claude/cslog-7").as_deref(),
        Some(head.as_str())
    );
    assert!(w.comments().is_empty());
    assert_eq!(w.ticket_status("CSLOG-7"), "completed");

    w.plane.with(|p| p.faults.clear());
    w.ok(&["update-plane", "CSLOG-7"]);
    assert_eq!(w.comments().len(), 1);
    let events = w.s.env.events("CSLOG-7");
    let pushed = events.iter().position(|e| e == "branch_pushed").unwrap();
    let posted = events.iter().position(|e| e == "plane_comment").unwrap();
    assert!(pushed < posted, "{events:?}");
    assert_eq!(events.iter().filter(|e| *e == "branch_pushed").count(), 1);
    assert!(w.comments()[0]["comment_html"]
        .as_str()
        .unwrap()
        .contains("(pushed)"));
}

#[test]
fn a_rejected_push_posts_nothing() {
    let w = World::new(&format!("  push: true\n{REVIEW}"));
    let wt = w.approved(7);
    w.commit(&wt, "a.txt", "a\n", "Add a");
    // The remote has a different claude/cslog-7: a push that is not forced is refused.
    let other = w.s.env.path().join("other");
    git(
        w.s.env.path(),
        &["clone", "-q", &w.origin.display().to_string(), "other"],
    );
    git(&other, &["checkout", "-q", "-b", "claude/cslog-7"]);
    w.commit(&other, "z.txt", "z\n", "Someone else's work");
    git(&other, &["push", "-q", "origin", "claude/cslog-7"]);
    let theirs = w.on_remote("claude/cslog-7").unwrap();

    w.ok(&["complete", "CSLOG-7", "done"]);
    let err = w.fails(1, &["update-plane", "CSLOG-7"]);
    assert!(err.contains("refused"), "{err}");
    assert_eq!(w.on_remote("claude/cslog-7").unwrap(), theirs);
    assert!(w.comments().is_empty());
    assert!(w.links().is_empty());
    assert_eq!(
        w.plane
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        0
    );
    let t = w.s.ticket("CSLOG-7");
    assert_eq!(t["status"], "completed");
    assert!(t["last_error"].as_str().unwrap().contains("refused"));
}

#[test]
fn no_commits_warns_and_force_posts_anyway() {
    let w = World::new("");
    w.approved(7);
    w.ok(&["complete", "CSLOG-7", "nothing to change"]);
    let err = w.fails(4, &["update-plane", "CSLOG-7"]);
    assert!(err.contains("has no commits"), "{err}");
    assert!(w.comments().is_empty());
    let out = w.run(&["update-plane", "CSLOG-7", "--force"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no commits"));
    assert_eq!(w.comments().len(), 1);
    // No review page and a remote that is not a web page: no link.
    assert!(w.links().is_empty());
}

#[test]
fn the_link_is_added_once_when_update_plane_is_retried() {
    let w = World::with(
        &format!("  push: true\n{REVIEW}"),
        "  transitions:\n    on_update: Done\n",
    );
    let wt = w.approved(7);
    w.commit(&wt, "a.txt", "a\n", "Add a");
    w.ok(&["complete", "CSLOG-7", "done"]);
    w.plane.with(|p| {
        p.faults.push(Fault::new(
            "PATCH",
            "/work-items/",
            500,
            json!({"error": "down"}),
        ));
    });
    w.fails(1, &["update-plane", "CSLOG-7"]);
    assert_eq!(w.links().len(), 1);
    w.plane.with(|p| p.faults.clear());
    w.ok(&["update-plane", "CSLOG-7"]);
    assert_eq!(w.links().len(), 1);
    assert_eq!(w.comments().len(), 1);
    assert_eq!(w.plane.with(|p| p.count("POST", "/links/")), 1);
    assert_eq!(w.ticket_status("CSLOG-7"), "done");
}

/// `update-plane CSLOG-7` started and left running, its output dropped, for a test to kill.
fn update_plane_in_background(w: &World) -> std::process::Child {
    w.std_cmd()
        .args(["update-plane", "CSLOG-7"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn the_link_is_added_once_when_update_plane_is_killed_after_plane_added_it() {
    let w = World::new(REVIEW);
    let wt = w.approved(7);
    w.commit(&wt, "a.txt", "a\n", "Add a");
    git(&w.s.repo, &["push", "-q", "origin", "claude/cslog-7"]);
    w.ok(&["complete", "CSLOG-7", "done"]);
    // The first /links/ request (the look) is quick; the second (the add) answers slowly,
    // and the run is killed while Plane adds the link.
    w.plane.with(|p| {
        p.slow_once.push(("/links/".into(), Duration::ZERO));
        p.slow_once
            .push(("/links/".into(), Duration::from_millis(1500)));
    });
    let mut child = update_plane_in_background(&w);
    let end = Instant::now() + Duration::from_secs(20);
    while w.plane.with(|p| p.count("POST", "/links/")) == 0 {
        assert!(Instant::now() < end, "the link was never asked for");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    while w.links().is_empty() {
        assert!(Instant::now() < end, "the fake never added the link");
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = w.s.ticket("CSLOG-7");
    assert!(t["plane_sync"]["comment_posted_at"].is_string());
    assert!(t["plane_sync"]["link_added_at"].is_null());

    w.ok(&["update-plane", "CSLOG-7"]);
    assert_eq!(w.links().len(), 1);
    assert_eq!(w.plane.with(|p| p.count("POST", "/links/")), 1);
    assert_eq!(w.comments().len(), 1);
    let t = w.s.ticket("CSLOG-7");
    assert_eq!(t["status"], "done");
    assert_eq!(t["plane_sync"]["link_id"], w.links()[0]["id"]);
}

#[test]
fn the_api_shows_the_branch_and_update_plane_warns_unless_forced() {
    use common::fake_plane::{KEY, KEY_ENV};
    let w = World::new("");
    w.approved(7);
    w.ok(&["complete", "CSLOG-7", "nothing changed"]);
    let s = w.s.env.serve(&[], &[(KEY_ENV, KEY)]);
    let t = s.get("/api/tickets/CSLOG-7").json();
    assert_eq!(t["branch"]["name"], "claude/cslog-7", "{t}");
    assert_eq!(t["branch"]["commit_count"], 0);
    assert_eq!(t["branch"]["uncommitted"], 0);
    // The old keys are all still there.
    for key in ["id", "uuid", "summary", "session", "status"] {
        assert!(t.get(key).is_some(), "{key} missing: {t}");
    }

    let refused = s.post("/api/update-plane/CSLOG-7", None);
    refused.assert_error(409, "conflict");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("has no commits"),
        "{}",
        refused.json()
    );
    assert!(w.comments().is_empty());

    let forced = s.post("/api/update-plane/CSLOG-7", Some(r#"{"force": true}"#));
    let v = forced.json();
    assert_eq!(forced.status, 200, "{v}");
    assert!(
        v["warnings"][0].as_str().unwrap().contains("no commits"),
        "{v}"
    );
    assert_eq!(v["ticket"]["status"], "done");
    assert_eq!(w.comments().len(), 1);
}

#[test]
fn a_retry_after_a_forced_post_needs_no_force_and_posts_nothing_twice() {
    let w = World::with("", "  transitions:\n    on_update: Done\n");
    w.approved(7);
    w.ok(&["complete", "CSLOG-7", "nothing changed"]);
    w.plane.with(|p| {
        p.faults.push(Fault::new(
            "PATCH",
            "/work-items/",
            500,
            json!({"error": "down"}),
        ));
    });
    w.fails(1, &["update-plane", "CSLOG-7", "--force"]);
    assert_eq!(w.comments().len(), 1);
    w.plane.with(|p| p.faults.clear());
    w.ok(&["update-plane", "CSLOG-7"]);
    assert_eq!(w.comments().len(), 1);
    assert_eq!(w.ticket_status("CSLOG-7"), "done");
}

#[test]
fn a_push_that_hangs_is_given_up_and_posts_nothing() {
    let w = World::new("  push: true\n");
    let wt = w.approved(7);
    w.commit(&wt, "a.txt", "a\n", "Add a");
    w.ok(&["complete", "CSLOG-7", "done"]);
    // The remote's receive-pack never answers.
    git(
        &w.s.repo,
        &["config", "remote.origin.receivepack", "sleep 5; false"],
    );
    let started = Instant::now();
    let out = w
        .cmd()
        .env("PLANE_ORCH_PUSH_TIMEOUT_SECS", "1")
        .args(["update-plane", "CSLOG-7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not finish within 1s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(w.comments().is_empty());
    assert_eq!(w.ticket_status("CSLOG-7"), "completed");
}

#[test]
fn dry_run_lists_the_push_the_link_and_the_warnings_and_sends_nothing() {
    let w = World::new(&format!("  push: true\n{REVIEW}"));
    let wt = w.approved(7);
    w.commit(&wt, "a.txt", "a\n", "Add a");
    w.ok(&["complete", "CSLOG-7", "done"]);
    let before = w.s.env.state_bytes();
    let out = w.ok(&["update-plane", "CSLOG-7", "--dry-run"]);
    assert!(
        out.contains("push claude/cslog-7 to origin (never forced)"),
        "{out}"
    );
    assert!(out.contains("add the link https://git.example/"), "{out}");
    assert!(!out.contains("warning"), "{out}");
    assert_eq!(w.s.env.state_bytes(), before);
    assert!(w.on_remote("claude/cslog-7").is_none());
    assert!(w.plane.requests().iter().all(|r| r.method == "GET"));

    // Push off: the unpushed commit is a warning in the plan.
    let text = std::fs::read_to_string(w.s.env.config_path()).unwrap();
    std::fs::write(
        w.s.env.config_path(),
        text.replace("push: true", "push: false"),
    )
    .unwrap();
    let out = w.ok(&["update-plane", "CSLOG-7", "--dry-run"]);
    assert!(
        out.contains("warning (stops the run unless --force)"),
        "{out}"
    );
    assert!(out.contains("on no remote"), "{out}");
}

#[test]
fn update_plane_killed_while_it_pushes_pushes_and_posts_once_on_the_next_run() {
    let w = World::new("  push: true\n");
    let wt = w.approved(7);
    let head = w.commit(&wt, "a.txt", "a\n", "Add a");
    w.ok(&["complete", "CSLOG-7", "done"]);
    // The remote's receive-pack says it started, then takes its time.
    let started = w.s.env.path().join("push-started");
    git(
        &w.s.repo,
        &[
            "config",
            "remote.origin.receivepack",
            &format!("touch '{}'; sleep 2; git-receive-pack", started.display()),
        ],
    );
    let mut child = update_plane_in_background(&w);
    let end = Instant::now() + Duration::from_secs(20);
    while !started.exists() {
        assert!(Instant::now() < end, "the push never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    git(
        &w.s.repo,
        &["config", "--unset", "remote.origin.receivepack"],
    );
    // Added by hand, the ticket was linked to its work item first: that step was recorded.
    let show = w.ok(&["show", "CSLOG-7"]);
    assert!(
        show.contains("operation: interrupted: update_plane after linked"),
        "{show}"
    );
    assert!(w.comments().is_empty());
    assert_eq!(w.ticket_status("CSLOG-7"), "completed");

    // Whether or not the orphaned push landed, the next run pushes (or finds it pushed) and
    // posts once.
    w.ok(&["update-plane", "CSLOG-7"]);
    assert_eq!(
        w.on_remote("claude/cslog-7").as_deref(),
        Some(head.as_str())
    );
    assert_eq!(w.comments().len(), 1);
    let events = w.s.env.events("CSLOG-7");
    assert_eq!(
        events.iter().filter(|e| *e == "branch_pushed").count(),
        1,
        "{events:?}"
    );
    assert_eq!(events.iter().filter(|e| *e == "plane_comment").count(), 1);
    assert_eq!(w.ticket_status("CSLOG-7"), "done");
}
