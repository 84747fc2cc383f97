//! Commands whose reader goes away early (`plane-orch list | head -1`) end quietly with
//! status 0, like Unix tools: no panic, no message.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;

/// An env whose state holds `n` pending tickets (copies of one added by hand), so a list is
/// far larger than a pipe holds.
fn env_with(n: usize) -> Env {
    let env = Env::new();
    env.add(
        "A-1",
        "a ticket with a title long enough to fill a line of the table",
    );
    let mut state = env.state();
    let one = state["tickets"]["A-1"].clone();
    let tickets = state["tickets"].as_object_mut().unwrap();
    for i in 2..=n {
        let mut t = one.clone();
        t["id"] = format!("A-{i}").into();
        tickets.insert(format!("A-{i}"), t);
    }
    std::fs::write(env.state_path(), serde_json::to_vec(&state).unwrap()).unwrap();
    env
}

/// Runs `args`, reads one line of stdout, closes it, and returns (exit code, stderr).
fn first_line_then_close(env: &Env, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = std::process::Command::new(common::bin_path())
        .current_dir(env.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .arg("--config")
        .arg(env.config_path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The reader is dropped here: the pipe is closed with most of the output unread.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "{args:?} did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr, line)
}

#[test]
fn list_into_a_closed_pipe_exits_zero_and_says_nothing() {
    let env = env_with(3000);
    for args in [
        &["list"][..],
        &["list", "--json"][..],
        &["list", "--status", "all"][..],
    ] {
        let (code, stderr, first) = first_line_then_close(&env, args);
        assert!(!first.is_empty(), "{args:?} printed nothing");
        assert_eq!(code, Some(0), "{args:?}: stderr {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn list_piped_into_head_in_a_shell_exits_zero() {
    let env = env_with(3000);
    let bin = common::bin_path();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' --config '{}' list | head -1",
            bin.display(),
            env.config_path().display()
        ))
        .current_dir(env.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}
