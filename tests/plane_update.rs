//! `update-plane` and the Plane state move on approve, against a fake Plane.

mod common;

use common::fake_plane::{Fault, Plane, PlaneEnv, Project, CSLOG};
use common::json;
use serde_json::json;

fn one_project() -> Plane {
    let mut p = Project::cslog();
    p.fill(1, 9);
    p.set_state(7, "Ready for Claude");
    Plane::new(vec![p])
}

/// A world where CSLOG-7 was polled, approved and completed with `summary`.
fn completed(plane_extra: &str, summary: &str) -> PlaneEnv {
    let w = PlaneEnv::new(one_project(), &[CSLOG], plane_extra, "");
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    w.ok(&["complete", "CSLOG-7", summary]);
    w
}

#[test]
fn update_plane_posts_the_summary_escaped_moves_the_state_and_marks_done() {
    let w = completed(
        "  transitions:\n    on_update: done\n",
        "<script>alert(1)</script> & fixed\n\nsecond paragraph",
    );
    let out = w.ok(&["update-plane", "CSLOG-7"]);
    assert!(out.contains("CSLOG-7 is done"), "{out}");
    let comments = w.with(|p| p.comments.clone());
    assert_eq!(comments.len(), 1);
    let html = comments[0]["comment_html"].as_str().unwrap();
    assert!(html.starts_with("<p>&lt;script&gt;alert(1)&lt;"), "{html}");
    assert!(
        html.contains("&amp; fixed</p><p>second paragraph</p>"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert_eq!(comments[0]["external_source"], "plane-orch");
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(
        comments[0]["external_id"],
        format!("CSLOG-7:{}", t["run_id"].as_str().unwrap())
    );
    assert_eq!(t["status"], "done");
    assert_eq!(t["plane_sync"]["comment_id"], comments[0]["id"]);
    assert!(t["plane_sync"]["state_updated_at"].is_string());
    let done = w.with(|p| p.project(CSLOG).state_id("Done"));
    assert_eq!(
        w.with(|p| p.project(CSLOG).item_mut(7)["state"].clone()),
        done
    );
    let patch = w
        .plane
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(patch.json(), json!({ "state": done }));

    // Done is final: a second run is a conflict and sends nothing.
    let sent = w.plane.requests().len();
    let err = w.fails(4, &["update-plane", "CSLOG-7"]);
    assert!(err.contains("done"), "{err}");
    assert_eq!(w.plane.requests().len(), sent);
}

#[test]
fn a_failed_state_change_keeps_the_ticket_completed_and_a_retry_posts_no_second_comment() {
    let w = completed("  transitions:\n    on_update: In Progress\n", "fixed it");
    w.with(|p| {
        p.faults.push(Fault::new(
            "PATCH",
            "/work-items/",
            500,
            json!({"error": "Something went wrong please try again later"}),
        ));
    });
    let err = w.fails(1, &["update-plane", "CSLOG-7"]);
    assert!(err.contains("500"), "{err}");
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "completed");
    assert!(t["last_error"].as_str().unwrap().contains("500"));
    assert!(t["plane_sync"]["comment_posted_at"].is_string());
    assert!(t["plane_sync"]["state_updated_at"].is_null());

    w.with(|p| p.faults.clear());
    w.ok(&["update-plane", "CSLOG-7"]);
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "done");
    assert!(t["last_error"].is_null());
    assert_eq!(w.with(|p| p.comments.len()), 1);
    assert_eq!(w.with(|p| p.count("POST", "/comments/")), 1);
}

#[test]
fn plane_answering_409_to_the_comment_counts_as_already_posted() {
    let w = completed("", "fixed it");
    w.with(|p| {
        p.faults.push(Fault::new(
            "POST",
            "/comments/",
            409,
            json!({"error": "Work item comment with the same external id and external source already exists", "id": "c-existing"}),
        ));
    });
    w.ok(&["update-plane", "CSLOG-7"]);
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "done");
    assert_eq!(t["plane_sync"]["comment_id"], "c-existing");
    assert!(t["plane_sync"]["state_updated_at"].is_null());
    assert_eq!(w.with(|p| p.count("PATCH", "")), 0);
}

#[test]
fn dry_run_sends_nothing_and_prints_the_plan() {
    let w = completed("  transitions:\n    on_update: Done\n", "a & b");
    let sent = w.plane.requests().len();
    let before = w.env.state_bytes().unwrap();
    let out = w.ok(&["update-plane", "CSLOG-7", "--dry-run"]);
    assert!(out.contains("post the summary as a comment"), "{out}");
    assert!(out.contains("<p>a &amp; b</p>"), "{out}");
    assert!(
        out.contains("move the work item to state \"Done\""),
        "{out}"
    );
    assert_eq!(w.plane.requests().len(), sent);
    assert_eq!(w.env.state_bytes().unwrap(), before);
    let report = json(&w.ok(&["update-plane", "CSLOG-7", "--dry-run", "--json"]));
    assert_eq!(report["status"], "dry_run");
    assert_eq!(report["comment_posted"], false);
    assert_eq!(report["ticket"]["status"], "completed");
}

#[test]
fn a_hand_added_ticket_plane_does_not_have_fails_clearly_and_stays_completed() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    // CSLOG-99: Plane answers 404; CSLOG-TEST cannot be a Plane id (Plane would answer 500).
    for id in ["CSLOG-99", "CSLOG-TEST"] {
        w.env.add(id, "made by hand");
        w.ok(&["approve", id, "--no-session"]);
        w.ok(&["complete", id, "done"]);
        let err = w.fails(1, &["update-plane", id]);
        assert!(
            err.contains("not a Plane work item; remove it or fix the id"),
            "{err}"
        );
        let t = w.env.ticket(id);
        assert_eq!(t["status"], "completed");
        assert!(t["last_error"]
            .as_str()
            .unwrap()
            .contains("not a Plane work item"));
    }
    let urls: Vec<String> = w.plane.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(urls, ["/api/v1/workspaces/acme/work-items/CSLOG-99/"]);
    assert_eq!(w.with(|p| p.comments.len()), 0);
}

#[test]
fn a_hand_added_ticket_plane_has_is_found_by_its_readable_id() {
    let w = PlaneEnv::new(one_project(), &[CSLOG], "", "");
    w.env.add("CSLOG-3", "made by hand");
    w.ok(&["approve", "CSLOG-3", "--no-session"]);
    w.ok(&["complete", "CSLOG-3", "done by hand"]);
    w.ok(&["update-plane", "CSLOG-3"]);
    let issue = w.with(|p| p.project(CSLOG).item_id(3));
    let comments = w.with(|p| p.comments.clone());
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["issue"], issue);
    let t = w.env.ticket("CSLOG-3");
    assert_eq!(t["status"], "done");
    assert_eq!(t["issue_id"], issue);
}

#[test]
fn approve_with_on_approve_moves_the_plane_state() {
    let w = PlaneEnv::new(
        one_project(),
        &[CSLOG],
        "  transitions:\n    on_approve: in progress\n",
        "",
    );
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    let in_progress = w.with(|p| p.project(CSLOG).state_id("In Progress"));
    let patches: Vec<_> = w
        .plane
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].json(), json!({ "state": in_progress }));
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "active");
    assert!(t["plane_sync"]["approve_state_set_at"].is_string());
    assert!(t["last_error"].is_null());
}

#[test]
fn a_failed_state_move_on_approve_leaves_the_ticket_active_with_last_error() {
    let w = PlaneEnv::new(
        one_project(),
        &[CSLOG],
        "  transitions:\n    on_approve: In Progress\n",
        "",
    );
    w.ok(&["poll"]);
    w.with(|p| {
        p.faults.push(Fault::new(
            "PATCH",
            "/work-items/",
            400,
            json!({"state": ["Invalid pk - object does not exist."]}),
        ));
    });
    let out = w.run(&["approve", "CSLOG-7", "--no-session"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("In Progress") && err.contains("400"), "{err}");
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "active");
    assert!(t["last_error"].as_str().unwrap().contains("400"));
    assert!(w.env.events("CSLOG-7").contains(&"plane_error".to_string()));
}

#[test]
fn a_work_item_deleted_in_plane_finishes_the_ticket_as_done_with_the_deletion_recorded() {
    let w = completed("  transitions:\n    on_update: done\n", "fixed it");
    let item = w.with(|p| p.project(CSLOG).item_id(7));
    w.with(|p| p.deleted.push(item.clone()));
    let out = w.ok(&["update-plane", "CSLOG-7"]);
    assert!(out.contains("deleted in Plane"), "{out}");
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "done");
    assert!(t["last_error"].is_null());
    let deleted: Vec<&serde_json::Value> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "plane_item_deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "{t}");
    assert!(deleted[0]["detail"]
        .as_str()
        .unwrap()
        .contains("the work item was deleted in Plane"));
    // Plane deletes softly: the comment landed, the state move met the 404, once.
    assert!(t["plane_sync"]["comment_posted_at"].is_string());
    assert_eq!(w.with(|p| p.count("PATCH", "/work-items/")), 1);
    // Nothing left to retry.
    w.fails(4, &["update-plane", "CSLOG-7"]);
}

#[test]
fn a_state_move_on_approve_of_a_deleted_item_says_it_was_deleted() {
    let w = PlaneEnv::new(
        one_project(),
        &[CSLOG],
        "  transitions:\n    on_approve: In Progress\n",
        "",
    );
    w.ok(&["poll"]);
    let item = w.with(|p| p.project(CSLOG).item_id(7));
    w.with(|p| p.deleted.push(item));
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "active");
    assert!(
        t["last_error"]
            .as_str()
            .unwrap()
            .contains("the work item was deleted in Plane"),
        "{t}"
    );
}
