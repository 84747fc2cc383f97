//! approve and restart killed while their worktree is made, or right after their session
//! started before it was recorded: the interruption shows, and the next run ends with exactly
//! one session.

mod common;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::sessions::{make_executable, wait_for, Sessions};

/// A `tmux` first on PATH that, while `stall` exists, waits after starting a session: the
/// session runs, and the plane-orch that started it has not heard back yet.
fn stalling_tmux(s: &Sessions) -> std::path::PathBuf {
    let stall = s.env.path().join("stall");
    let script = format!(
        "#!/bin/sh\n/usr/bin/tmux \"$@\"\nrc=$?\nfor a in \"$@\"; do\n  if [ \"$a\" = new-session ] && [ -f '{}' ]; then sleep 20; fi\ndone\nexit $rc\n",
        stall.display()
    );
    let tmux = s.bin_dir.join("tmux");
    std::fs::write(&tmux, script).unwrap();
    make_executable(&tmux);
    stall
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Starts `args` with the stall on and kills it once the session `name` runs.
fn kill_after_session_start(s: &Sessions, stall: &Path, args: &[&str], name: &str) {
    std::fs::write(stall, "").unwrap();
    let child = s.std_cmd().args(args).spawn().unwrap();
    wait_for("the session to start", || s.tmux.has(name));
    std::thread::sleep(Duration::from_millis(200));
    kill(child);
    std::fs::remove_file(stall).unwrap();
}

#[test]
fn approve_killed_after_its_session_started_is_finished_with_one_fresh_session() {
    let s = Sessions::new();
    s.agent_will_hold();
    let stall = stalling_tmux(&s);
    s.ok(&["add", "KA-1", "--title", "t"]);
    kill_after_session_start(&s, &stall, &["approve", "KA-1"], "plane-KA-1");

    let t = s.ticket("KA-1");
    assert_eq!(t["status"], "pending");
    assert_eq!(t["op"]["kind"], "approve", "{t}");
    let left = t["op"]["steps"][0]["value"].as_str().unwrap().to_string();
    assert!(left.starts_with("tmux plane-KA-1 "), "{left}");
    let show = s.ok(&["show", "KA-1"]);
    assert!(
        show.contains("operation: interrupted: approve after session starting"),
        "{show}"
    );
    assert!(s.tmux.has("plane-KA-1"), "the left session is gone already");

    let out = s.ok(&["approve", "KA-1"]);
    assert!(out.contains("session plane-KA-1"), "{out}");
    let t = s.ticket("KA-1");
    assert_eq!(t["status"], "active");
    assert!(t.get("op").is_none(), "{t}");
    let uuid = t["session"]["agent_session"].as_str().unwrap();
    assert!(
        !left.ends_with(uuid),
        "the new session reuses the left conversation"
    );
    let sessions: Vec<String> = s
        .tmux
        .sessions()
        .into_iter()
        .filter(|n| n.contains("KA-1"))
        .collect();
    assert_eq!(sessions, ["plane-KA-1"]);
    // The one running is the new one: its agent got the new conversation id.
    wait_for("the new agent", || s.agent_argv().iter().any(|a| a == uuid));
    let approvals = s
        .env
        .events("KA-1")
        .into_iter()
        .filter(|e| e == "approved")
        .count();
    assert_eq!(approvals, 1);
}

#[test]
fn restart_killed_after_its_session_started_is_finished_once() {
    let s = Sessions::new();
    s.agent_will_hold();
    let stall = stalling_tmux(&s);
    s.ok(&["add", "KR-1", "--title", "t"]);
    s.ok(&["approve", "KR-1"]);
    let uuid = s.ticket("KR-1")["session"]["agent_session"]
        .as_str()
        .unwrap()
        .to_string();
    s.tmux.tmux(&["kill-session", "-t", "=plane-KR-1"]);
    kill_after_session_start(&s, &stall, &["restart", "KR-1"], "plane-KR-1");

    let show = s.ok(&["show", "KR-1"]);
    assert!(
        show.contains("operation: interrupted: restart after session starting"),
        "{show}"
    );
    // The session the killed restart started is stopped and one started again.
    s.ok(&["restart", "KR-1"]);
    let t = s.ticket("KR-1");
    assert_eq!(t["status"], "active");
    assert!(t.get("op").is_none(), "{t}");
    assert_eq!(t["session"]["agent_session"], uuid.as_str());
    assert!(s.tmux.has("plane-KR-1"));
    let restarts = s
        .env
        .events("KR-1")
        .into_iter()
        .filter(|e| e == "session_restarted")
        .count();
    assert_eq!(restarts, 1);
    // A second restart while it runs is refused.
    let err = s.fails(4, &["restart", "KR-1"]);
    assert!(err.contains("still running"), "{err}");
}

/// A `git` first on PATH that, while `stall` exists, waits after `worktree add` has made the
/// worktree (touching `reached` first): the worktree is there, approve has not heard back.
fn stalling_git(s: &Sessions) -> (std::path::PathBuf, std::path::PathBuf) {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    let real = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(!real.is_empty(), "no git on PATH");
    let stall = s.env.path().join("stall-git");
    let reached = s.env.path().join("git-stalled");
    let script = format!(
        "#!/bin/sh\n'{real}' \"$@\"\nrc=$?\nif [ -f '{stall}' ]; then\n  case \" $* \" in *' worktree add '*) : > '{reached}'; sleep 20;; esac\nfi\nexit $rc\n",
        stall = stall.display(),
        reached = reached.display(),
    );
    let git = s.bin_dir.join("git");
    std::fs::write(&git, script).unwrap();
    make_executable(&git);
    (stall, reached)
}

#[test]
fn approve_killed_while_its_worktree_is_made_is_finished_with_one_session() {
    let s = Sessions::new();
    s.agent_will_hold();
    let (stall, reached) = stalling_git(&s);
    s.ok(&["add", "KW-1", "--title", "t"]);
    std::fs::write(&stall, "").unwrap();
    let child = s.std_cmd().args(["approve", "KW-1"]).spawn().unwrap();
    wait_for("the worktree step", || reached.exists());
    kill(child);
    std::fs::remove_file(&stall).unwrap();

    let t = s.ticket("KW-1");
    assert_eq!(t["status"], "pending");
    assert_eq!(t["op"]["kind"], "approve", "{t}");
    assert_eq!(t["op"]["steps"][0]["step"], "session_starting", "{t}");
    let show = s.ok(&["show", "KW-1"]);
    assert!(
        show.contains("operation: interrupted: approve after session starting"),
        "{show}"
    );
    assert!(!s.tmux.has("plane-KW-1"), "no session was started yet");
    let worktree = s.worktree("KW-1");
    assert!(worktree.join(".git").exists(), "git made the worktree");

    let out = s.ok(&["approve", "KW-1"]);
    assert!(out.contains("session plane-KW-1"), "{out}");
    let t = s.ticket("KW-1");
    assert_eq!(t["status"], "active");
    assert!(t.get("op").is_none(), "{t}");
    // The worktree the killed run made is the one the session works in.
    let workdir = t["session"]["workdir"].as_str().unwrap_or_default();
    assert_eq!(
        Path::new(workdir).canonicalize().unwrap(),
        worktree.canonicalize().unwrap(),
        "{t}"
    );
    let sessions: Vec<String> = s
        .tmux
        .sessions()
        .into_iter()
        .filter(|n| n.contains("KW-1"))
        .collect();
    assert_eq!(sessions, ["plane-KW-1"]);
    let uuid = t["session"]["agent_session"].as_str().unwrap();
    wait_for("the agent", || s.agent_argv().iter().any(|a| a == uuid));
    let approvals = s
        .env
        .events("KW-1")
        .into_iter()
        .filter(|e| e == "approved")
        .count();
    assert_eq!(approvals, 1);
}

#[test]
fn restart_killed_while_its_worktree_is_made_again_is_finished_once() {
    let s = Sessions::new();
    s.agent_will_hold();
    let (stall, reached) = stalling_git(&s);
    s.ok(&["add", "KRW-1", "--title", "t"]);
    s.ok(&["approve", "KRW-1"]);
    let uuid = s.ticket("KRW-1")["session"]["agent_session"]
        .as_str()
        .unwrap()
        .to_string();
    s.tmux.tmux(&["kill-session", "-t", "=plane-KRW-1"]);
    // Its worktree deleted by hand: restart makes it again, and is killed while git does.
    std::fs::remove_dir_all(s.worktree("KRW-1")).unwrap();
    std::fs::write(&stall, "").unwrap();
    let child = s.std_cmd().args(["restart", "KRW-1"]).spawn().unwrap();
    wait_for("the worktree step", || reached.exists());
    kill(child);
    std::fs::remove_file(&stall).unwrap();

    let show = s.ok(&["show", "KRW-1"]);
    assert!(
        show.contains("operation: interrupted: restart after session starting"),
        "{show}"
    );
    assert!(!s.tmux.has("plane-KRW-1"));
    s.ok(&["restart", "KRW-1"]);
    let t = s.ticket("KRW-1");
    assert_eq!(t["status"], "active");
    assert!(t.get("op").is_none(), "{t}");
    assert_eq!(t["session"]["agent_session"], uuid.as_str());
    assert!(s.worktree("KRW-1").join(".git").exists());
    let sessions: Vec<String> = s
        .tmux
        .sessions()
        .into_iter()
        .filter(|n| n.contains("KRW-1"))
        .collect();
    assert_eq!(sessions, ["plane-KRW-1"]);
    let restarts = s
        .env
        .events("KRW-1")
        .into_iter()
        .filter(|e| e == "session_restarted")
        .count();
    assert_eq!(restarts, 1);
}
