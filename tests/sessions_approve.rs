//! approve with a session: worktree, branch, the worker and the agent's exact argv, and every
//! way approve can be refused or fail.

mod common;

use std::fs;

use common::sessions::{wait_for, Sessions};

#[test]
fn approve_starts_the_agent_in_its_own_worktree_with_the_exact_argv() {
    let s = Sessions::new();
    s.ok(&[
        "add",
        "CSLOG-7",
        "--title",
        "Fix the login",
        "--description",
        "The button does nothing.\nSecond line.",
        "--url",
        "https://plane.example/acme/CSLOG-7",
    ]);
    let out = s.ok(&["approve", "cslog-7"]);
    assert!(out.contains("session plane-CSLOG-7"), "{out}");
    assert!(s.tmux.has("plane-CSLOG-7"), "{:?}", s.tmux.sessions());

    let argv = s.agent_argv();
    let t = s.ticket("CSLOG-7");
    assert_eq!(t["status"], "active");
    let session = &t["session"];
    assert_eq!(session["name"], "plane-CSLOG-7");
    assert_eq!(session["backend"], "tmux");
    assert_eq!(session["branch"], "claude/cslog-7");
    assert!(session["started_at"].is_string());
    let uuid = session["agent_session"]
        .as_str()
        .expect("agent uuid")
        .to_string();
    assert_eq!(uuid.len(), 36);
    // The snapshot refers to the ticket's own text, stored once; readers see it whole.
    assert_eq!(
        t["approved_snapshot"],
        serde_json::json!({"url": t["url"].clone()})
    );
    let shown = common::json(&s.env.ok(&["show", "CSLOG-7", "--json"]));
    assert_eq!(shown["approved_snapshot"]["title"], "Fix the login");
    assert_eq!(
        shown["approved_snapshot"]["description_text"],
        shown["description_text"]
    );

    let claude_dir = s.env.path().join("data/claude");
    let prompt = argv.last().unwrap().clone();
    let expected: Vec<String> = [
        "--settings",
        &format!("{}/settings.json", claude_dir.display()),
        "--add-dir",
        &claude_dir.display().to_string(),
        "--session-id",
        &uuid,
        "-n",
        "CSLOG-7",
        "--permission-mode",
        "acceptEdits",
        "--",
        &prompt,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(argv, expected);
    assert!(prompt.contains("Fix the login"), "{prompt}");
    assert!(
        prompt.contains("The button does nothing.\nSecond line."),
        "{prompt}"
    );
    assert!(
        prompt.contains("https://plane.example/acme/CSLOG-7"),
        "{prompt}"
    );
    assert!(prompt.contains("/complete <summary>"), "{prompt}");

    let worktree = s.worktree("CSLOG-7").canonicalize().unwrap();
    assert_eq!(
        fs::read_to_string(s.fake.join("cwd")).unwrap().trim(),
        worktree.display().to_string()
    );
    assert_eq!(session["workdir"], worktree.display().to_string());
    assert_eq!(
        fs::read_to_string(s.fake.join("branch")).unwrap().trim(),
        "claude/cslog-7"
    );
    assert_eq!(
        fs::read_to_string(worktree.join(".env")).unwrap(),
        "SECRET=42\n"
    );
    assert_eq!(
        s.agent_env_var("PLANE_ORCH_TICKET").as_deref(),
        Some("CSLOG-7")
    );
    assert_eq!(s.agent_env_var("PLANE_ORCH_RESTART"), None);
    assert!(claude_dir
        .join(".claude/skills/complete/SKILL.md")
        .is_file());
    let settings: serde_json::Value =
        serde_json::from_slice(&fs::read(claude_dir.join("settings.json")).unwrap()).unwrap();
    let hook = settings["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    assert!(hook.ends_with("' hook prompt-submit"), "{hook}");
    let events = s.env.events("CSLOG-7");
    assert_eq!(events, ["queued", "approved"]);
}

#[test]
fn ticket_text_is_never_executed_and_reaches_the_agent_verbatim() {
    let s = Sessions::new();
    let title = "Title $(touch pwned) `touch pwned2` \"q\" 'q'; touch pwned3";
    let description =
        "line one $(touch pwned)\n`touch pwned2`; rm -rf nothing\n\"double\" 'single' $HOME";
    s.ok(&[
        "add",
        "SEC-1",
        "--title",
        title,
        "--description",
        description,
    ]);
    s.ok(&["approve", "SEC-1"]);
    let argv = s.agent_argv();
    let prompt = argv.last().unwrap();
    assert!(prompt.contains(title), "{prompt}");
    assert!(prompt.contains(description), "{prompt}");
    let worktree = s.worktree("SEC-1");
    for dir in [s.env.path(), worktree.as_path(), s.repo.as_path()] {
        for marker in ["pwned", "pwned2", "pwned3"] {
            assert!(
                !dir.join(marker).exists(),
                "{marker} made in {}",
                dir.display()
            );
        }
    }
}

#[test]
fn a_100_kb_description_reaches_the_agent_cut_at_64_kib() {
    let s = Sessions::new();
    let description: String = (0..100 * 1024)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).unwrap()))
        .collect();
    s.ok(&[
        "add",
        "BIG-1",
        "--title",
        "Big",
        "--description",
        &description,
    ]);
    s.ok(&["approve", "BIG-1"]);
    let argv = s.agent_argv();
    let prompt = argv.last().unwrap();
    assert!(prompt.contains(&description[..64 * 1024]));
    assert!(!prompt.contains(&description));
    assert!(prompt.contains("plane-orch show BIG-1"), "{prompt}");
}

#[test]
fn approving_twice_is_a_conflict_and_starts_one_session() {
    let s = Sessions::new();
    s.ok(&["add", "TWO-1", "--title", "Twice"]);
    s.ok(&["approve", "TWO-1"]);
    let err = s.fails(4, &["approve", "TWO-1"]);
    assert!(err.contains("already active"), "{err}");
    assert_eq!(s.tmux.sessions(), ["plane-TWO-1"]);
    assert_eq!(s.env.events("TWO-1"), ["queued", "approved"]);
}

#[test]
fn the_session_cap_is_a_conflict_naming_the_limit() {
    let s = Sessions::with_config("  max_active_sessions: 1\n", "");
    s.ok(&["add", "CAP-1", "--title", "one"]);
    s.ok(&["add", "CAP-2", "--title", "two"]);
    s.ok(&["approve", "CAP-1"]);
    let err = s.fails(4, &["approve", "CAP-2"]);
    assert!(err.contains("max_active_sessions is 1"), "{err}");
    assert_eq!(s.ticket("CAP-2")["status"], "pending");
    assert_eq!(s.tmux.sessions(), ["plane-CAP-1"]);
    // A ticket approved without a session does not count against the cap.
    s.ok(&["add", "CAP-3", "--title", "three"]);
    s.ok(&["approve", "CAP-3", "--no-session"]);
    assert_eq!(s.ticket("CAP-3")["session"], serde_json::Value::Null);
}

#[test]
fn two_processes_racing_to_approve_start_exactly_one_session() {
    let s = Sessions::new();
    s.ok(&["add", "RACE-1", "--title", "Race"]);
    let children: Vec<_> = (0..4)
        .map(|_| {
            s.std_cmd()
                .args(["approve", "RACE-1"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|mut c| c.wait().unwrap().code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 4).count(), 3, "{codes:?}");
    assert_eq!(s.tmux.sessions(), ["plane-RACE-1"]);
    assert_eq!(s.env.events("RACE-1"), ["queued", "approved"]);
}

#[test]
fn tmux_missing_keeps_the_ticket_pending_and_a_retry_reuses_the_worktree() {
    let s = Sessions::new();
    s.ok(&["add", "MISS-1", "--title", "No tmux"]);
    // A PATH with git but no tmux.
    let only_git = s.env.path().join("only-git");
    fs::create_dir_all(&only_git).unwrap();
    let git = which("git");
    std::os::unix::fs::symlink(git, only_git.join("git")).unwrap();
    let out = s
        .cmd()
        .env("PATH", &only_git)
        .args(["approve", "MISS-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tmux"), "{err}");
    assert!(err.contains("stays pending"), "{err}");
    let t = s.ticket("MISS-1");
    assert_eq!(t["status"], "pending");
    assert!(t["last_error"].as_str().unwrap().contains("tmux"));
    assert_eq!(s.env.events("MISS-1"), ["queued", "approve_failed"]);
    let worktree = s.worktree("MISS-1");
    assert!(worktree.join(".git").exists());
    fs::write(worktree.join("work-in-progress"), "kept").unwrap();

    s.ok(&["approve", "MISS-1"]);
    let t = s.ticket("MISS-1");
    assert_eq!(t["status"], "active");
    assert_eq!(t["last_error"], serde_json::Value::Null);
    assert_eq!(
        fs::read_to_string(worktree.join("work-in-progress")).unwrap(),
        "kept"
    );
    s.agent_argv();
    assert!(s.tmux.has("plane-MISS-1"));
}

#[test]
fn an_existing_branch_is_reused() {
    let s = Sessions::new();
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&s.repo)
        .args(["branch", "claude/old-1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    s.ok(&["add", "OLD-1", "--title", "Old branch"]);
    s.ok(&["approve", "OLD-1"]);
    s.agent_argv();
    assert_eq!(
        fs::read_to_string(s.fake.join("branch")).unwrap().trim(),
        "claude/old-1"
    );
    assert_eq!(s.ticket("OLD-1")["session"]["branch"], "claude/old-1");
}

#[test]
fn trust_is_added_to_claude_config_keeping_every_other_key() {
    let s = Sessions::new();
    let config = s.claude_config.join(".claude.json");
    fs::write(
        &config,
        r#"{"numStartups": 7, "theme": "dark", "projects": {"/elsewhere": {"allowedTools": ["Bash"], "hasTrustDialogAccepted": false}}}"#,
    )
    .unwrap();
    s.ok(&["add", "TRUST-1", "--title", "Trust"]);
    s.ok(&["approve", "TRUST-1"]);
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&config).unwrap()).unwrap();
    assert_eq!(doc["numStartups"], 7);
    assert_eq!(doc["theme"], "dark");
    assert_eq!(doc["projects"]["/elsewhere"]["allowedTools"][0], "Bash");
    assert_eq!(
        doc["projects"]["/elsewhere"]["hasTrustDialogAccepted"],
        false
    );
    let worktree = s.worktree("TRUST-1").canonicalize().unwrap();
    assert_eq!(
        doc["projects"][worktree.display().to_string()]["hasTrustDialogAccepted"],
        true
    );
}

#[test]
fn without_trust_worktrees_claude_config_is_left_alone() {
    let s = Sessions::with_config("  trust_worktrees: false\n", "");
    s.ok(&["add", "NOTRUST-1", "--title", "No trust"]);
    s.ok(&["approve", "NOTRUST-1"]);
    s.agent_argv();
    assert_eq!(
        std::fs::read_to_string(s.claude_config.join(".claude.json")).unwrap(),
        common::sessions::CLAUDE_JSON_SET_UP
    );
}

#[test]
fn a_worker_that_does_not_exist_is_reported_and_the_ticket_stays_pending() {
    let s = Sessions::with_config("", "");
    s.write_config("", "");
    let text = fs::read_to_string(s.env.config_path())
        .unwrap()
        .replace("claude-ticket-worker", "no-such-worker");
    s.env.set_config(&text);
    s.ok(&["add", "W-1", "--title", "Worker"]);
    let err = s.fails(1, &["approve", "W-1"]);
    assert!(err.contains("automation.worker"), "{err}");
    assert_eq!(s.ticket("W-1")["status"], "pending");
    wait_for("no session", || s.tmux.sessions().is_empty());
}

#[test]
fn a_session_of_the_same_name_already_running_is_reported() {
    let s = Sessions::new();
    let out = s
        .tmux
        .tmux(&["new-session", "-d", "-s", "plane-DUP-1", "sleep 60"]);
    assert!(out.status.success());
    s.ok(&["add", "DUP-1", "--title", "Duplicate"]);
    let err = s.fails(1, &["approve", "DUP-1"]);
    assert!(err.contains("already runs"), "{err}");
    assert!(err.contains("tmux kill-session -t plane-DUP-1"), "{err}");
    let t = s.ticket("DUP-1");
    assert_eq!(t["status"], "pending");
    assert!(t["last_error"]
        .as_str()
        .unwrap()
        .contains("duplicate session"));
    s.tmux.tmux(&["kill-session", "-t", "=plane-DUP-1"]);
    s.ok(&["approve", "DUP-1"]);
    assert_eq!(s.ticket("DUP-1")["status"], "active");
}

fn which(name: &str) -> std::path::PathBuf {
    std::env::var("PATH")
        .unwrap()
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not on PATH"))
}
