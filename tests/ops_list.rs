//! `list` as a person and a script see it: aligned columns, fixed ages with PLANE_ORCH_NOW,
//! no colour codes when stdout is not a terminal.

mod common;

use common::Env;

/// Adds tickets, then pins their queue times so the ages in the table do not move.
fn env_with_tickets() -> Env {
    let env = Env::new();
    env.add("CSLOG-1", "Fix the login page");
    env.add(
        "CSLOG-22",
        &format!("A very long title {}", "word ".repeat(30)),
    );
    env.add("OPS-3", "Rotate the keys");
    env.ok(&["approve", "OPS-3", "--no-session"]);
    let mut state = env.state();
    let times = [
        ("CSLOG-1", "2026-01-01T11:59:18Z"),
        ("CSLOG-22", "2026-01-01T09:00:00Z"),
        ("OPS-3", "2025-12-29T12:00:00Z"),
    ];
    for (id, at) in times {
        state["tickets"][id]["queued_at"] = at.into();
    }
    std::fs::write(env.state_path(), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    env
}

#[test]
fn list_prints_aligned_columns_oldest_first_with_ages_and_counts() {
    let env = env_with_tickets();
    let out = env
        .cmd()
        .env("PLANE_ORCH_NOW", "2026-01-01T12:00:00Z")
        .env_remove("NO_COLOR")
        .arg("list")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let title = format!("A very long title {}", "word ".repeat(30));
    let cut: String = title.chars().take(59).collect::<String>() + "…";
    let expected = format!(
        "ID        STATUS   AGE  STATE  TITLE{pad}SESSION\n\
         CSLOG-22  pending  3h   -      {cut}  -\n\
         CSLOG-1   pending  42s  -      Fix the login page{pad2}-\n\
         OPS-3     active   3d   -      Rotate the keys{pad3}-\n\
         2 pending, 1 active\n",
        pad = " ".repeat(62 - 5),
        pad2 = " ".repeat(62 - 18),
        pad3 = " ".repeat(62 - 15),
    );
    assert_eq!(stdout, expected);
    assert!(
        !stdout.contains("\u{1b}["),
        "colour codes in a pipe: {stdout:?}"
    );
}

#[test]
fn list_of_an_empty_queue_prints_only_no_tickets() {
    let env = Env::new();
    assert_eq!(env.ok(&["list"]), "no tickets\n");
    assert_eq!(env.ok(&["list", "--status", "done"]), "no tickets\n");
    assert!(
        env.state_bytes().is_none(),
        "list must not create the state file"
    );
}

#[test]
fn list_json_is_a_bare_array_without_colour() {
    let env = env_with_tickets();
    let out = env
        .cmd()
        .env("CLICOLOR_FORCE", "1")
        .args(["list", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("\u{1b}["));
    let v = common::json(&stdout);
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    // Oldest first within a status.
    assert_eq!(ids, ["CSLOG-22", "CSLOG-1", "OPS-3"]);
}

#[test]
fn show_measures_its_age_against_plane_orch_now() {
    let env = env_with_tickets();
    let out = env
        .cmd()
        .env("PLANE_ORCH_NOW", "2026-01-01T12:00:00Z")
        .args(["show", "cslog-22"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("(3h ago)"), "{stdout}");
}
