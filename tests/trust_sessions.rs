//! What a session is given, on real tmux: no secrets, the one Claude config, a binary path
//! that stays valid, a prompt that fits, and private files.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::bin_path;
use common::sessions::{make_executable, read_nul_list, worker_path, Sessions};

/// Starts the test's tmux server the way a person's shell would: with `extra` in its
/// environment (the server keeps it as its global environment).
fn start_server_from_a_shell(s: &Sessions, extra: &[(&str, &str)]) {
    let out = Command::new("tmux")
        .args(["new-session", "-d", "-s", "keeper", "sleep 600"])
        .env("TMUX_TMPDIR", s.tmux.tmpdir())
        .env_remove("TMUX")
        .env("PATH", &s.path)
        .env("FAKE_CLAUDE_DIR", &s.fake)
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A worker that records its own environment, then runs the real one.
fn recording_worker(s: &Sessions) -> PathBuf {
    let path = s.env.path().join("recording-worker");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nenv -0 > \"$FAKE_CLAUDE_DIR/worker-env.tmp\"\nmv \"$FAKE_CLAUDE_DIR/worker-env.tmp\" \"$FAKE_CLAUDE_DIR/worker-env\"\nexec '{}' \"$@\"\n",
            worker_path().display()
        ),
    )
    .unwrap();
    make_executable(&path);
    s.env.set_config(&format!(
        "automation:\n  repo_path: {}\n  worker: {}\n",
        s.repo.display(),
        path.display()
    ));
    path
}

fn has_var(env: &[String], name: &str) -> bool {
    env.iter().any(|e| e.starts_with(&format!("{name}=")))
}

#[test]
fn secrets_reach_neither_the_worker_nor_the_agent_even_from_a_server_that_holds_them() {
    let s = Sessions::new();
    start_server_from_a_shell(
        &s,
        &[
            ("PLANE_API_KEY", "key-from-the-shell"),
            ("PLANE_ORCH_API_TOKEN", "token-from-the-shell"),
        ],
    );
    recording_worker(&s);
    s.ok(&["add", "SEC-1", "--title", "Secrets"]);
    s.agent_will_hold();
    let out = s
        .cmd()
        .env("PLANE_API_KEY", "key-of-plane-orch")
        .env("PLANE_ORCH_API_TOKEN", "token-of-plane-orch")
        .args(["approve", "SEC-1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.agent_argv();
    let worker_env = read_nul_list(&s.fake.join("worker-env"));
    let agent_env = s.agent_env();
    assert!(has_var(&worker_env, "PLANE_ORCH_TICKET"), "{worker_env:?}");
    for name in ["PLANE_API_KEY", "PLANE_ORCH_API_TOKEN"] {
        assert!(!has_var(&worker_env, name), "the worker got {name}");
        assert!(!has_var(&agent_env, name), "the agent got {name}");
    }
    let joined = agent_env.join("\n") + &worker_env.join("\n");
    assert!(!joined.contains("-from-the-shell") && !joined.contains("-of-plane-orch"));
    // A window the person opens later in that session does not get them either.
    let shown = s
        .tmux
        .tmux(&["show-environment", "-t", "=plane-SEC-1", "PLANE_API_KEY"]);
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout).trim(),
        "-PLANE_API_KEY"
    );
}

#[test]
fn the_agent_reads_the_claude_config_the_trust_entry_went_to() {
    let s = Sessions::new();
    let other = s.env.path().join("servers-claude-config");
    fs::create_dir_all(&other).unwrap();
    start_server_from_a_shell(&s, &[("CLAUDE_CONFIG_DIR", other.to_str().unwrap())]);
    s.ok(&["add", "CFG-1", "--title", "Config"]);
    s.ok(&["approve", "CFG-1"]);
    s.agent_argv();
    assert_eq!(
        s.agent_env_var("CLAUDE_CONFIG_DIR").map(PathBuf::from),
        Some(s.claude_config.clone())
    );
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(s.claude_config.join(".claude.json")).unwrap()).unwrap();
    let workdir = fs::canonicalize(s.worktree("CFG-1")).unwrap();
    assert_eq!(
        written["projects"][workdir.display().to_string()]["hasTrustDialogAccepted"],
        true
    );
    assert!(!other.join(".claude.json").exists());

    // Without CLAUDE_CONFIG_DIR plane-orch writes ~/.claude.json: the agent must not be
    // pointed elsewhere by the server's environment.
    let home = s.env.path().join("home");
    fs::create_dir_all(&home).unwrap();
    fs::remove_file(s.fake.join("argv")).unwrap();
    s.ok(&["add", "CFG-2", "--title", "Home config"]);
    let out = s
        .cmd()
        .env_remove("CLAUDE_CONFIG_DIR")
        .env("HOME", &home)
        .args(["approve", "CFG-2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.agent_argv();
    assert_eq!(s.agent_env_var("CLAUDE_CONFIG_DIR"), None);
    assert!(home.join(".claude.json").is_file());
}

#[test]
fn a_description_far_over_the_argument_limit_still_starts_the_session() {
    let s = Sessions::new();
    s.ok(&[
        "add",
        "BIG-1",
        "--title",
        "Big",
        "--url",
        "https://plane.example/BIG-1",
    ]);
    // 200 KB of text, kept the way poll would keep it: more than one argument may carry.
    let line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n";
    let text = line.repeat(200 * 1024 / line.len());
    let mut state = s.env.state();
    state["tickets"]["BIG-1"]["description_text"] = serde_json::json!(text);
    state["tickets"]["BIG-1"]["description_html"] =
        serde_json::json!(format!("<p>{}</p>", text.replace('\n', "<br>")));
    fs::write(s.env.state_path(), serde_json::to_vec(&state).unwrap()).unwrap();
    s.ok(&["approve", "BIG-1"]);
    let argv = s.agent_argv();
    let prompt = argv.last().unwrap();
    assert!(
        prompt.len() < 70 * 1024,
        "the prompt is {} bytes",
        prompt.len()
    );
    assert!(
        prompt.contains(&text[..60 * 1024]),
        "the start of the text is missing"
    );
    assert!(
        prompt.contains("[The description is cut here"),
        "{}",
        &prompt[prompt.len() - 400..]
    );
    assert!(prompt.contains("https://plane.example/BIG-1"));
    assert!(prompt.contains("plane-orch show BIG-1"));
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_log_and_the_completion_folder_are_private_under_umask_022() {
    let s = Sessions::new();
    let run = |args: &[&str]| {
        let out = Command::new("sh")
            .arg("-c")
            .arg("umask 022 && exec \"$@\"")
            .arg("sh")
            .arg(bin_path())
            .arg("--config")
            .arg(s.env.config_path())
            .args(args)
            .current_dir(s.env.path())
            .env_remove("PLANE_ORCH_CONFIG")
            .env_remove("RUST_LOG")
            .env("PATH", &s.path)
            .env("TMUX_TMPDIR", s.tmux.tmpdir())
            .env("CLAUDE_CONFIG_DIR", &s.claude_config)
            .env("FAKE_CLAUDE_DIR", &s.fake)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["add", "MODE-1", "--title", "Modes"]);
    let log = s.env.path().join("data/orchestrator.log");
    assert_eq!(mode(&log), 0o600);
    run(&["approve", "MODE-1"]);
    s.agent_argv();
    let completions = s.env.path().join("data/completions");
    assert_eq!(mode(&completions), 0o700);

    let doctor = s.run(&["doctor"]);
    let out = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        !out.contains("chmod 600") && !out.contains("chmod 700"),
        "{out}"
    );
    fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&completions, fs::Permissions::from_mode(0o755)).unwrap();
    let doctor = s.run(&["doctor"]);
    let out = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        out.contains(&format!("chmod 600 {}", log.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("chmod 700 {}", completions.display())),
        "{out}"
    );
}

/// `serve` run from `exe`, in the sessions world; its port.
fn serve_from(s: &Sessions, exe: &Path) -> (Child, u16) {
    let mut child = Command::new(exe)
        .arg("--config")
        .arg(s.env.config_path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(s.env.path())
        .env_remove("PLANE_ORCH_CONFIG")
        .env_remove("PLANE_ORCH_API_TOKEN")
        .env_remove("RUST_LOG")
        .env("PATH", &s.path)
        .env("TMUX_TMPDIR", s.tmux.tmpdir())
        .env("CLAUDE_CONFIG_DIR", &s.claude_config)
        .env("FAKE_CLAUDE_DIR", &s.fake)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("serve did not start: {line:?}"));
    (child, port)
}

/// Kills the server when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn approve(port: u16, id: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut resp = agent
        .post(&format!("http://127.0.0.1:{port}/api/approve/{id}"))
        .send_empty()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap())
}

#[test]
fn sessions_keep_the_binary_path_serve_started_from_and_refuse_when_it_is_gone() {
    let s = Sessions::new();
    let dir = s.env.path().join("install");
    fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("plane-orch");
    fs::copy(bin_path(), &exe).unwrap();
    make_executable(&exe);
    for id in ["BIN-1", "BIN-2", "BIN-3"] {
        s.ok(&["add", id, "--title", "Binary"]);
    }
    let (child, port) = serve_from(&s, &exe);
    let _server = Killed(child);

    // An upgrade: a new file renamed over the path serve was started from.
    let fresh = dir.join("plane-orch.new");
    fs::copy(bin_path(), &fresh).unwrap();
    make_executable(&fresh);
    fs::rename(&fresh, &exe).unwrap();
    let (status, body) = approve(port, "BIN-1");
    assert_eq!(status, 200, "{body}");
    s.agent_argv();
    assert_eq!(
        s.agent_env_var("PLANE_ORCH_BIN").map(PathBuf::from),
        Some(fs::canonicalize(&exe).unwrap())
    );
    let settings = fs::read_to_string(s.env.path().join("data/claude/settings.json")).unwrap();
    assert!(!settings.contains("(deleted)"), "{settings}");
    s.wait_status("BIN-1", "active");

    // The binary removed: approve refuses, saying what to do, and starts nothing.
    fs::remove_file(&exe).unwrap();
    let (status, body) = approve(port, "BIN-2");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("restart `plane-orch serve`"), "{body}");
    assert_eq!(s.ticket("BIN-2")["status"], "pending");
    assert!(!s.tmux.has("plane-BIN-2"));

    // doctor (another binary) sees the hooks pointing at nothing.
    let doctor = s.run(&["doctor"]);
    let out = String::from_utf8_lossy(&doctor.stdout);
    assert!(out.contains("which does not exist"), "{out}");
    assert_eq!(doctor.status.code(), Some(1));
}
