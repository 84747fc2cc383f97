//! The local lifecycle: add, approve --no-session, complete, remove, and every refusal.

mod common;

use common::{json, Env};

#[test]
fn a_ticket_goes_from_pending_to_completed_with_each_summary_source() {
    let env = Env::new();
    for (id, title) in [("CSLOG-1", "one"), ("cslog-2", "two"), ("CsLoG-3", "three")] {
        env.add(id, title);
    }
    let listed = json(&env.ok(&["list", "--json"]));
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["CSLOG-1", "CSLOG-2", "CSLOG-3"]);
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "pending"));

    for id in ["CSLOG-1", "CSLOG-2", "CSLOG-3"] {
        env.ok(&["approve", id, "--no-session"]);
        assert_eq!(env.ticket(id)["status"], "active");
    }

    env.ok(&["complete", "CSLOG-1", "fixed it from the argument"]);

    let file = env.path().join("summary.txt");
    std::fs::write(&file, "fixed it\nfrom a file\n").unwrap();
    env.ok(&["complete", "CSLOG-2", "--file", file.to_str().unwrap()]);

    let out = env
        .cmd()
        .args(["complete", "CSLOG-3", "-"])
        .write_stdin("fixed it from stdin\n")
        .output()
        .unwrap();
    assert!(out.status.success());

    let summaries = [
        (
            "CSLOG-1",
            "fixed it from the argument",
            "summary from the command line",
        ),
        ("CSLOG-2", "fixed it\nfrom a file", "summary from a file"),
        (
            "CSLOG-3",
            "fixed it from stdin",
            "summary from standard input",
        ),
    ];
    for (id, summary, detail) in summaries {
        let shown = json(&env.ok(&["show", id, "--json"]));
        assert_eq!(shown["status"], "completed");
        assert_eq!(shown["summary"], summary);
        assert!(shown["completed_at"].is_string());
        assert_eq!(shown["approved_snapshot"]["title"], env.ticket(id)["title"]);
        let events: Vec<&str> = shown["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(events, ["queued", "approved", "completed"]);
        assert_eq!(shown["events"][2]["detail"], detail);
        assert_eq!(env.events(id), ["queued", "approved", "completed"]);
    }
    let completed = json(&env.ok(&["list", "--status", "completed", "--json"]));
    assert_eq!(completed.as_array().unwrap().len(), 3);
    let pending = json(&env.ok(&["list", "--status", "pending", "--json"]));
    assert_eq!(pending, serde_json::json!([]));
}

#[test]
fn a_hand_added_ticket_keeps_its_text_escaped_in_html() {
    let env = Env::new();
    env.ok(&[
        "add",
        "X-1",
        "--title",
        "Title",
        "--description",
        "a <b> & c",
        "--url",
        "https://example.test/x",
    ]);
    let t = json(&env.ok(&["show", "X-1", "--json"]));
    assert_eq!(t["description"], "<p>a &lt;b&gt; &amp; c</p>");
    assert_eq!(t["description_text"], "a <b> & c");
    assert_eq!(t["trigger_type"], "manual");
    assert_eq!(t["url"], "https://example.test/x");
    assert!(t["uuid"].is_null());
}

#[test]
fn adding_an_existing_ticket_is_a_conflict() {
    let env = Env::new();
    env.add("X-1", "first");
    let before = env.state_bytes();
    let err = env.fails(4, &["add", "x-1", "--title", "second"]);
    assert!(err.contains("X-1 exists already"), "{err}");
    assert_eq!(env.state_bytes(), before);
}

#[test]
fn bad_input_to_add_is_refused_with_exit_2() {
    let env = Env::new();
    env.fails(2, &["add", "X-1", "--title", "   "]);
    env.fails(
        2,
        &["add", "X-1", "--title", "t", "--url", "javascript:alert(1)"],
    );
    assert!(env.state_bytes().is_none());
}

#[test]
fn an_empty_summary_is_refused_and_changes_nothing() {
    let env = Env::new();
    env.add("X-1", "t");
    env.ok(&["approve", "X-1", "--no-session"]);
    let before = env.state_bytes();
    let err = env.fails(2, &["complete", "X-1", "  \n "]);
    assert!(err.contains("summary is empty"), "{err}");
    env.fails(2, &["complete", "X-1"]);
    let empty = env.path().join("empty.txt");
    std::fs::write(&empty, "\n").unwrap();
    env.fails(2, &["complete", "X-1", "--file", empty.to_str().unwrap()]);
    assert_eq!(env.state_bytes(), before);
    assert_eq!(env.ticket("X-1")["status"], "active");
}

#[test]
fn a_missing_summary_file_fails_naming_it() {
    let env = Env::new();
    env.add("X-1", "t");
    env.ok(&["approve", "X-1", "--no-session"]);
    let err = env.fails(1, &["complete", "X-1", "--file", "nope.txt"]);
    assert!(err.contains("nope.txt"), "{err}");
    assert_eq!(env.ticket("X-1")["status"], "active");
}

#[test]
fn every_forbidden_transition_exits_4_and_leaves_the_file_byte_identical() {
    let env = Env::new();
    env.add("P-1", "pending");
    env.add("A-1", "active");
    env.ok(&["approve", "A-1", "--no-session"]);
    env.add("C-1", "completed");
    env.ok(&["approve", "C-1", "--no-session"]);
    env.ok(&["complete", "C-1", "done"]);
    let before = env.state_bytes().unwrap();
    let refused: [&[&str]; 5] = [
        &["complete", "P-1", "too early"],
        &["approve", "A-1", "--no-session"],
        &["approve", "C-1", "--no-session"],
        &["complete", "C-1", "again"],
        &["add", "A-1", "--title", "again"],
    ];
    for args in refused {
        let err = env.fails(4, args);
        assert!(err.starts_with("error: "), "{err}");
        assert_eq!(
            env.state_bytes().unwrap(),
            before,
            "{args:?} changed the file"
        );
    }
    let err = env.fails(4, &["approve", "A-1", "--no-session"]);
    assert!(err.contains("already active"), "{err}");
    let err = env.fails(4, &["complete", "P-1", "x"]);
    assert!(
        err.contains("P-1 is pending") && err.contains("must be active"),
        "{err}"
    );
}

#[test]
fn a_done_ticket_can_be_neither_approved_nor_completed() {
    let env = Env::new();
    env.add("D-1", "done");
    env.ok(&["approve", "D-1", "--no-session"]);
    env.ok(&["complete", "D-1", "summary"]);
    // Mark it done by hand: the Plane write-back is not part of this test.
    let mut state = env.state();
    state["tickets"]["D-1"]["status"] = "done".into();
    std::fs::write(env.state_path(), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    let before = env.state_bytes().unwrap();
    env.fails(4, &["approve", "D-1", "--no-session"]);
    env.fails(4, &["complete", "D-1", "again"]);
    assert_eq!(env.state_bytes().unwrap(), before);
    let all = json(&env.ok(&["list", "--status", "all", "--json"]));
    assert_eq!(all[0]["status"], "done");
    let default = json(&env.ok(&["list", "--json"]));
    assert_eq!(default, serde_json::json!([]));
}

#[test]
fn unknown_tickets_exit_3_and_change_nothing() {
    let env = Env::new();
    env.add("X-1", "t");
    let before = env.state_bytes();
    for args in [
        vec!["show", "X-2"],
        vec!["approve", "X-2", "--no-session"],
        vec!["complete", "X-2", "summary"],
        vec!["remove", "X-2"],
    ] {
        let err = env.fails(3, &args);
        assert!(err.contains("unknown ticket X-2"), "{err}");
    }
    assert_eq!(env.state_bytes(), before);
}

#[test]
fn bad_ids_exit_2_and_create_no_file_at_all() {
    let long = "A".repeat(200);
    let bad = [
        "../x",
        "A-1;rm -rf /",
        "",
        &long,
        "ÄB-1",
        "CSLOG-",
        "-12",
        "a/b-1",
        "A-1 ",
    ];
    for id in bad {
        let env = Env::new();
        for args in [
            vec!["show", id],
            vec!["add", id, "--title", "t"],
            vec!["approve", id, "--no-session"],
            vec!["complete", id, "summary"],
            vec!["remove", id],
        ] {
            let out = env.run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("error"), "{args:?}: {err}");
        }
        assert_eq!(
            env.files(),
            Vec::<String>::new(),
            "{id:?} left files behind"
        );
    }
}

#[test]
fn remove_drops_the_ticket_whatever_its_status() {
    let env = Env::new();
    env.add("X-1", "t");
    env.add("X-2", "t");
    env.ok(&["approve", "X-2", "--no-session"]);
    let out = env.ok(&["remove", "x-1"]);
    assert!(out.contains("X-1 removed"), "{out}");
    let removed = json(&env.ok(&["remove", "X-2", "--json"]));
    assert_eq!(removed["id"], "X-2");
    assert_eq!(removed["status"], "active");
    assert_eq!(env.state()["tickets"], serde_json::json!({}));
    env.fails(3, &["remove", "X-1"]);
}

#[test]
fn remove_remembers_the_plane_issue_so_polling_does_not_requeue_it() {
    let env = Env::new();
    env.add("X-1", "t");
    let mut state = env.state();
    state["tickets"]["X-1"]["issue_id"] = "46da531b-cc25-430e-a1d1-d974f9bc1a73".into();
    std::fs::write(env.state_path(), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    env.ok(&["remove", "X-1"]);
    let dismissed = &env.state()["dismissed"];
    assert!(
        dismissed["46da531b-cc25-430e-a1d1-d974f9bc1a73"].is_string(),
        "{dismissed}"
    );
}

#[test]
fn list_prints_a_table_with_counts() {
    let env = Env::new();
    env.add("X-1", "first ticket");
    env.add("X-2", "second ticket");
    env.ok(&["approve", "X-2", "--no-session"]);
    let out = env.ok(&["list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID"), "{out}");
    assert!(
        lines[1].starts_with("X-1") && lines[1].contains("pending"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("X-2") && lines[2].contains("active"),
        "{out}"
    );
    assert_eq!(lines.last().unwrap(), &"1 pending, 1 active");
    assert!(!out.contains('\x1b'));
}
