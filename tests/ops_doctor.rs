//! `doctor` against real temp setups: a healthy one prints only ✓ lines and exits 0; each
//! broken part gives its ✗ line with the fix, and exit 1.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fake_plane::{FakePlane, Fault, Plane, Project, CSLOG, KEY, KEY_ENV};
use common::Env;

/// A complete setup: a git repo with a commit, an executable worker, a private completion
/// folder and the /complete files, all named by config.yaml, and a fake Plane holding the
/// watched project; the key is set by `doctor()`.
struct Setup {
    env: Env,
    /// The fake Plane the config points at (none when it points at a closed port).
    plane: Option<FakePlane>,
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port on 127.0.0.1 that nothing listens on (bound, noted, released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Setup {
    fn new() -> Setup {
        Setup::with_config("")
    }

    /// The healthy setup plus `extra` (whole top-level sections).
    fn with_config(extra: &str) -> Setup {
        Setup::with_plane(Plane::new(vec![Project::cslog()]), "", extra)
    }

    /// The healthy setup against a fake Plane holding `plane`; `plane_extra` is more YAML
    /// inside `plane:` (indented two spaces).
    fn with_plane(plane: Plane, plane_extra: &str, extra: &str) -> Setup {
        let fake = FakePlane::start(plane);
        let mut setup = Setup::at(&fake.url, plane_extra, extra);
        setup.plane = Some(fake);
        setup
    }

    fn at(base_url: &str, plane_extra: &str, extra: &str) -> Setup {
        // A test may set its own timeout; everything else gets a short one.
        let timeout = if plane_extra.contains("timeout_secs") {
            ""
        } else {
            "  timeout_secs: 5\n"
        };
        let env = Env::with_config(&format!(
            "plane:\n  base_url: {base_url}\n  workspace_slug: acme\n  \
             project_ids: [{CSLOG}]\n{timeout}{plane_extra}\
             automation:\n  repo_path: repo\n  worker: worker.sh\n{extra}"
        ));
        let root = env.path();
        let repo = root.join("repo");
        fs::create_dir(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        fs::write(repo.join("README"), "hello\n").unwrap();
        git(&repo, &["add", "README"]);
        git(&repo, &["commit", "-q", "-m", "first"]);
        let worker = root.join("worker.sh");
        fs::write(&worker, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&worker, fs::Permissions::from_mode(0o755)).unwrap();
        let completions = root.join("data/completions");
        fs::create_dir_all(&completions).unwrap();
        fs::set_permissions(&completions, fs::Permissions::from_mode(0o700)).unwrap();
        let skill = root.join("data/claude/.claude/skills/complete");
        fs::create_dir_all(&skill).unwrap();
        fs::write(skill.join("SKILL.md"), "---\nname: complete\n---\n").unwrap();
        // The hooks as plane-orch writes them, calling this very binary.
        let hook = |sub: &str| {
            serde_json::json!([{"hooks": [{"type": "command",
                "command": format!("'{}' hook {sub}", common::bin_path().display())}]}])
        };
        let settings = serde_json::json!({"hooks": {
            "UserPromptSubmit": hook("prompt-submit"), "Notification": hook("notify")}});
        fs::write(root.join("data/claude/settings.json"), settings.to_string()).unwrap();
        // Claude Code on the PATH, run once and logged in, with a config folder of its own.
        let bin = root.join("agent-bin");
        fs::create_dir(&bin).unwrap();
        fs::write(bin.join("claude"), common::sessions::FAKE_CLAUDE).unwrap();
        fs::set_permissions(bin.join("claude"), fs::Permissions::from_mode(0o755)).unwrap();
        common::sessions::set_up_claude_config(&root.join("claude-config"));
        Setup { env, plane: None }
    }

    fn path(&self) -> &Path {
        self.env.path()
    }

    /// plane-orch in this setup: the fake `claude` first on PATH, Claude's config folder and
    /// systemd's unit folders (`XDG_CONFIG_HOME`) of the setup's own.
    fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cmd();
        let path = format!(
            "{}:{}",
            self.path().join("agent-bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path)
            .env("CLAUDE_CONFIG_DIR", self.path().join("claude-config"))
            .env("XDG_CONFIG_HOME", self.path().join("xdg"));
        cmd
    }

    fn fake(&self) -> &FakePlane {
        self.plane.as_ref().expect("a fake Plane")
    }

    /// Runs `doctor` with the key set (unless `key` is false) and an optional PATH.
    fn doctor(&self, key: bool, path: Option<&Path>) -> Output {
        self.doctor_with(key.then_some(KEY), path)
    }

    /// Runs `doctor` with `key` (if any) in the key's variable and an optional PATH; asserts
    /// the key shows up in neither stdout nor stderr.
    fn doctor_with(&self, key: Option<&str>, path: Option<&Path>) -> Output {
        let mut cmd = self.cmd();
        if let Some(k) = key {
            cmd.env(KEY_ENV, k);
        }
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let out = cmd.arg("doctor").output().expect("doctor runs");
        if let Some(k) = key {
            for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                assert!(!text(bytes).contains(k), "the key appeared in {name}");
            }
        }
        out
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether stdout has a check named exactly `name` marked `mark` (✓, ! or ✗).
fn has_check(stdout: &str, mark: &str, name: &str) -> bool {
    stdout.lines().any(|l| {
        l.strip_prefix(mark)
            .and_then(|rest| rest.strip_prefix(' '))
            .is_some_and(|rest| rest.chars().take(17).collect::<String>().trim_end() == name)
    })
}

/// Asserts exit 1, a ✗ line for `name` containing `detail`, and a fix containing `fix`.
fn assert_fails(out: &Output, name: &str, detail: &str, fix: &str) {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("✗ {name} ")))
        .unwrap_or_else(|| panic!("no ✗ {name} line in:\n{stdout}"));
    assert!(lines[at].contains(detail), "{stdout}");
    assert!(
        lines
            .get(at + 1)
            .is_some_and(|l| l.trim_start().starts_with("fix:") && l.contains(fix)),
        "no fix containing {fix:?} after the ✗ {name} line:\n{stdout}"
    );
    assert!(
        text(&out.stderr).contains("failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn doctor_on_a_healthy_setup_prints_only_check_marks_and_exits_zero() {
    let setup = Setup::new();
    let out = setup.doctor(true, None);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for line in stdout.lines() {
        assert!(line.starts_with("✓ "), "not a ✓ line: {line}\n{stdout}");
    }
    for name in [
        "config",
        "data folder",
        "state file",
        "plane key",
        "plane",
        "plane project",
        "git",
        "worker",
        "completion folder",
        "tmux",
        "/complete",
        "agent",
        "claude config",
        "hooks",
    ] {
        assert!(has_check(&stdout, "✓", name), "no {name} check:\n{stdout}");
    }
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("the key in $PLANE_API_KEY is claude's"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("✓ plane project     CSLOG ({CSLOG})"))
            && stdout.contains("state \"Ready for Claude\", label \"claude\""),
        "{stdout}"
    );
    let requests = setup.fake().requests();
    assert!(
        requests.iter().all(|r| r.method == "GET"),
        "doctor changed something in Plane: {requests:?}"
    );
    assert!(
        requests.iter().all(|r| r.header("x-api-key") == Some(KEY)),
        "{requests:?}"
    );
    for part in ["users/me/", "states/", "labels/"] {
        assert_eq!(
            setup.fake().with(|p| p.count("GET", part)),
            1,
            "{part}: {requests:?}"
        );
    }
}

#[test]
fn doctor_reports_ticket_counts_and_creates_nothing() {
    let setup = Setup::new();
    setup.env.add("CSLOG-1", "One");
    let before = setup.env.files();
    let out = setup.doctor(true, None);
    assert!(text(&out.stdout).contains("1 pending, 0 active, 0 completed, 0 done"));
    assert_eq!(setup.env.files(), before, "doctor wrote files");
}

#[test]
fn doctor_json_lists_every_check_with_its_status() {
    let setup = Setup::new();
    let out = setup
        .env
        .cmd()
        .arg("doctor")
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let checks = common::json(&text(&out.stdout));
    let key = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "plane key")
        .expect("a plane key check");
    assert_eq!(key["status"], "fail");
    assert!(key["fix"]
        .as_str()
        .unwrap()
        .contains("export PLANE_API_KEY"));
}

#[test]
fn doctor_without_the_key_fails_and_says_how_to_set_it() {
    let setup = Setup::new();
    let out = setup.doctor(false, None);
    assert_fails(
        &out,
        "plane key",
        "$PLANE_API_KEY is not set",
        "export PLANE_API_KEY=",
    );
}

#[test]
fn doctor_warns_about_a_key_kept_in_the_config_file() {
    let setup = Setup::new();
    let config = fs::read_to_string(setup.env.config_path()).unwrap();
    setup.env.set_config(&config.replace(
        "  workspace_slug: acme\n",
        &format!("  workspace_slug: acme\n  api_token: {KEY}\n"),
    ));
    let out = setup.doctor(false, None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("! config ") && l.contains("PLANE_API_KEY")),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY), "{stdout}");
    assert!(
        has_check(&stdout, "✓", "plane") && stdout.contains("plane.api_token in"),
        "the key in the file is tried against Plane:\n{stdout}"
    );
}

/// A folder holding only a link to git: a PATH on which tmux is missing.
fn path_with_git_only(root: &Path) -> PathBuf {
    let bin = root.join("bin-git-only");
    fs::create_dir(&bin).unwrap();
    let out = Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    let git_path = text(&out.stdout).trim().to_string();
    std::os::unix::fs::symlink(git_path, bin.join("git")).unwrap();
    bin
}

#[test]
fn doctor_without_tmux_fails_and_says_to_install_it() {
    let setup = Setup::new();
    let bin = path_with_git_only(setup.path());
    let out = setup.doctor(true, Some(&bin));
    assert_fails(&out, "tmux", "cannot run tmux", "install tmux");
    assert!(
        text(&out.stdout).contains("✓ git "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn doctor_on_a_folder_that_is_not_a_git_repository_fails() {
    let setup = Setup::new();
    fs::remove_dir_all(setup.path().join("repo/.git")).unwrap();
    let out = setup.doctor(true, None);
    assert_fails(&out, "git", "is not a git repository", "git init");
}

#[test]
fn doctor_on_a_repository_without_a_commit_fails() {
    let setup = Setup::new();
    let repo = setup.path().join("repo");
    fs::remove_dir_all(repo.join(".git")).unwrap();
    git(&repo, &["init", "-q"]);
    let out = setup.doctor(true, None);
    assert_fails(&out, "git", "has no commit yet", "first commit");
}

#[test]
fn doctor_with_a_worker_that_is_not_executable_fails() {
    let setup = Setup::new();
    let worker = setup.path().join("worker.sh");
    fs::set_permissions(&worker, fs::Permissions::from_mode(0o644)).unwrap();
    let out = setup.doctor(true, None);
    assert_fails(&out, "worker", "is not executable", "chmod +x");
}

#[test]
fn doctor_with_a_missing_worker_fails() {
    let setup = Setup::new();
    fs::remove_file(setup.path().join("worker.sh")).unwrap();
    let out = setup.doctor(true, None);
    assert_fails(&out, "worker", "worker.sh", "automation.worker");
}

#[test]
fn doctor_with_a_data_folder_that_cannot_exist_fails() {
    // A regular file where the folder should be: no user, root included, can write there.
    let setup = Setup::with_config("state:\n  path: blocker/data/pending-tickets.json\n");
    fs::write(setup.path().join("blocker"), "a file\n").unwrap();
    let out = setup.doctor(true, None);
    assert_fails(&out, "data folder", "is a file", "state.path");
}

#[test]
fn doctor_with_a_read_only_data_folder_fails() {
    let setup = Setup::with_config("state:\n  path: locked/pending-tickets.json\n");
    let locked = setup.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
    if fs::write(locked.join("probe"), "").is_ok() {
        // Root ignores permission bits; the test above covers that case with a file.
        eprintln!("note: running as a privileged user; the read-only folder case is skipped");
        return;
    }
    let out = setup.doctor(true, None);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
    assert_fails(&out, "data folder", "cannot write in", "writable");
}

#[test]
fn doctor_with_a_world_writable_completion_folder_fails() {
    let setup = Setup::new();
    let dir = setup.path().join("data/completions");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let out = setup.doctor(true, None);
    assert_fails(&out, "completion folder", "writable by others", "chmod 700");
}

#[test]
fn doctor_suggests_mkdir_for_a_missing_completion_folder_without_making_it() {
    let setup = Setup::new();
    let dir = setup.path().join("data/completions");
    fs::remove_dir(&dir).unwrap();
    let out = setup.doctor(true, None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("! completion folder"), "{stdout}");
    assert!(stdout.contains("mkdir -m 700"), "{stdout}");
    assert!(!dir.exists());
}

#[test]
fn doctor_with_an_invalid_config_fails_naming_the_key() {
    let setup = Setup::new();
    setup.env.set_config("plane:\n  colour: red\n");
    let out = setup.doctor(true, None);
    assert_fails(&out, "config", "colour", "config.yaml");
}

#[test]
fn doctor_with_the_session_service_checks_its_health() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let handle = std::thread::spawn(move || {
        if let Ok(Some(req)) = server.recv_timeout(std::time::Duration::from_secs(10)) {
            let path = req.url().to_string();
            // As tmux-session-service answers GET /health.
            let body =
                r#"{"ok": true, "tmuxAvailable": true, "tmuxVersion": "tmux 3.3a", "error": null}"#;
            let _ = req.respond(tiny_http::Response::from_string(body));
            return Some(path);
        }
        None
    });
    let setup = Setup::with_config(&format!(
        "sessions:\n  backend: service\n  service_url: http://127.0.0.1:{port}\n"
    ));
    let out = setup.doctor(true, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("✓ session service"));
    assert_eq!(handle.join().unwrap().as_deref(), Some("/health"));
}

#[test]
fn doctor_with_the_session_service_down_fails() {
    // Bind then drop: the port is very likely closed when doctor calls it.
    let port = closed_port();
    let setup = Setup::with_config(&format!(
        "sessions:\n  backend: service\n  service_url: http://127.0.0.1:{port}\n"
    ));
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "session service",
        "cannot be reached",
        "start tmux-session-service",
    );
}

#[test]
fn doctor_with_a_key_plane_refuses_fails_naming_the_keys_variable() {
    let setup = Setup::new();
    let out = setup.doctor_with(Some("plane_api_not_the_right_one"), None);
    assert_fails(
        &out,
        "plane",
        "Plane refused the API key in $PLANE_API_KEY (403: Given API token is not valid)",
        "export PLANE_API_KEY=<the new key>",
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Personal Access Tokens"), "{stdout}");
    assert!(
        !stdout.contains("plane project"),
        "projects are not read with a refused key:\n{stdout}"
    );
    assert!(stdout.contains("✓ plane key "), "{stdout}");
}

#[test]
fn doctor_with_plane_unreachable_fails_and_says_what_to_check() {
    let port = closed_port();
    let setup = Setup::at(&format!("http://127.0.0.1:{port}"), "", "");
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "plane",
        &format!("cannot reach Plane at http://127.0.0.1:{port}: "),
        "check plane.base_url and the network",
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("✗ ")).count(),
        1,
        "only Plane is broken:\n{stdout}"
    );
    assert!(!stdout.contains("plane project"), "{stdout}");
}

#[test]
fn doctor_with_a_plane_that_never_answers_gives_up_at_the_timeout() {
    // Connections are accepted (the backlog) but nothing ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let setup = Setup::at(
        &format!("http://127.0.0.1:{port}"),
        "  timeout_secs: 1\n",
        "",
    );
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "plane",
        &format!("cannot reach Plane at http://127.0.0.1:{port}: no answer within 1 s"),
        "plane.timeout_secs",
    );
    drop(silent);
}

#[test]
fn doctor_with_a_missing_trigger_state_fails_naming_it_and_listing_the_states() {
    let setup = Setup::with_plane(
        Plane::new(vec![Project::cslog()]),
        "  trigger:\n    states: [\"Ready for Robots\"]\n",
        "",
    );
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "plane project",
        &format!("CSLOG ({CSLOG}) has no state named \"Ready for Robots\" (plane.trigger.states)"),
        "set plane.trigger.states to states CSLOG has (Backlog, Todo, In Progress, Done, \
         Cancelled, Ready for Claude), or create state \"Ready for Robots\" in Plane",
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("✗ ")).count(),
        1,
        "{stdout}"
    );
    assert!(has_check(&stdout, "✓", "plane"), "{stdout}");
}

#[test]
fn doctor_names_a_missing_label_and_missing_transition_states_one_line_each() {
    let setup = Setup::with_plane(
        Plane::new(vec![Project::cslog()]),
        "  trigger:\n    labels: [claude, robots]\n  transitions:\n    on_approve: \"in progress\"\n    \
         on_update: Shipped\n",
        "",
    );
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "plane project",
        "has no label named \"robots\" (plane.trigger.labels)",
        "set plane.trigger.labels to labels CSLOG has (docs, bug, claude)",
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("has no state named \"Shipped\" (plane.transitions.on_update)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("\"in progress\""),
        "on_approve matches In Progress without case:\n{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("✗ ")).count(),
        2,
        "{stdout}"
    );
}

#[test]
fn doctor_fails_on_a_trigger_name_two_states_share() {
    let mut project = Project::cslog();
    let mut twin = project.states[1].clone();
    twin["id"] = "0000aaaa-1111-4000-8000-000000000099".into();
    twin["name"] = "ready for claude".into();
    project.states.push(twin);
    let setup = Setup::with_plane(Plane::new(vec![project]), "", "");
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "plane project",
        "has 2 states named \"Ready for Claude\"",
        "so plane.trigger.states names exactly one",
    );
}

#[test]
fn doctor_with_a_project_plane_does_not_have_fails_naming_it() {
    let other = Project::other("0b0b0b0b-0000-4000-8000-000000000001", "OPS", 0xb);
    let setup = Setup::with_plane(Plane::new(vec![other]), "", "");
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "plane project",
        &format!("cannot read project {CSLOG}"),
        "plane.project_ids",
    );
    assert!(
        has_check(&text(&out.stdout), "✓", "plane"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn doctor_asks_a_failing_plane_once_and_reads_no_project() {
    let mut plane = Plane::new(vec![Project::cslog()]);
    plane.faults.push(Fault::new(
        "GET",
        "users/me",
        503,
        serde_json::json!({"error": "Service unavailable"}),
    ));
    let setup = Setup::with_plane(plane, "", "");
    let out = setup.doctor(true, None);
    assert_fails(&out, "plane", "503", "plane.base_url");
    let fake = setup.fake();
    assert_eq!(fake.with(|p| p.count("GET", "users/me/")), 1);
    assert_eq!(fake.with(|p| p.count("GET", "projects/")), 0);
}

#[test]
fn doctor_warns_when_the_configured_identifier_is_not_planes() {
    let setup = Setup::with_plane(
        Plane::new(vec![Project::cslog()]),
        "  project_identifier: WEB\n",
        "",
    );
    let out = setup.doctor(true, None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(has_check(&stdout, "✓", "plane project"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("! plane project ")
                && l.contains("plane.project_identifier is WEB")),
        "{stdout}"
    );
    assert!(
        stdout.contains("set plane.project_identifier to CSLOG"),
        "{stdout}"
    );
}

#[test]
fn doctor_skips_plane_when_it_is_not_configured() {
    let setup = Setup::new();
    let out = setup.doctor(false, None);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("✗ plane key "), "{stdout}");
    assert!(
        ["✓", "!", "✗"]
            .iter()
            .all(|m| !has_check(&stdout, m, "plane") && !has_check(&stdout, m, "plane project")),
        "{stdout}"
    );
    assert!(setup.fake().requests().is_empty(), "doctor asked Plane");
}

// The agent: what a session meets when it starts.

#[test]
fn doctor_fails_when_the_agent_is_not_on_the_path_sessions_get() {
    let setup = Setup::with_config("  agent_command: claude-nope\n");
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "agent",
        "claude-nope (automation.agent_command) is not on the PATH sessions get",
        "set automation.agent_command",
    );
    // The real name, missing from the PATH: the fix says how to install Claude Code.
    let setup = Setup::new();
    let bin = path_with_git_only(setup.path());
    let out = setup.doctor(true, Some(&bin));
    assert_fails(
        &out,
        "agent",
        "claude (automation.agent_command)",
        "npm install -g @anthropic-ai/claude-code",
    );
}

#[test]
fn doctor_finds_the_agent_on_the_tmux_servers_path_not_its_own() {
    let setup = Setup::new();
    let tmux = common::sessions::TmuxGuard::new();
    // A server started without the agent's folder on its PATH: sessions will not find it,
    // though doctor's own PATH has it.
    let out = std::process::Command::new("tmux")
        .args(["new-session", "-d", "-s", "other", "sleep 600"])
        .env("TMUX_TMPDIR", tmux.tmpdir())
        .env("PATH", std::env::var("PATH").unwrap())
        .env("CLAUDE_CONFIG_DIR", setup.path().join("claude-config"))
        .env_remove("TMUX")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = setup
        .cmd()
        .env(KEY_ENV, KEY)
        .env("TMUX_TMPDIR", tmux.tmpdir())
        .arg("doctor")
        .output()
        .unwrap();
    assert_fails(
        &out,
        "agent",
        "the running tmux server's environment",
        "set automation.agent_command: ",
    );
}

#[test]
fn doctor_fails_on_a_claude_config_that_never_ran() {
    let setup = Setup::new();
    let fresh = setup.path().join("never-ran");
    fs::create_dir(&fresh).unwrap();
    let run = |dir: &Path| {
        setup
            .cmd()
            .env(KEY_ENV, KEY)
            .env("CLAUDE_CONFIG_DIR", dir)
            .arg("doctor")
            .output()
            .unwrap()
    };
    assert_fails(
        &run(&fresh),
        "claude config",
        "never-ran/.claude.json does not exist",
        &format!(
            "run `CLAUDE_CONFIG_DIR={} claude` once in a terminal",
            fresh.display()
        ),
    );
    // What a real Claude Code leaves after a first run that stopped at its set-up screen.
    fs::write(
        fresh.join(".claude.json"),
        r#"{"firstStartTime": "2026-12-01T19:43:19.292Z", "migrationVersion": 13,
            "userID": "4b2b", "seenNotifications": {}}"#,
    )
    .unwrap();
    assert_fails(
        &run(&fresh),
        "claude config",
        "first-run set-up was never finished",
        "finish its set-up",
    );
}

#[test]
fn doctor_warns_when_claude_has_no_login_it_can_see() {
    let setup = Setup::new();
    let dir = setup.path().join("claude-config");
    fs::write(
        dir.join(".claude.json"),
        r#"{"hasCompletedOnboarding": true}"#,
    )
    .unwrap();
    let out = setup.doctor(true, None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("! claude config ") && stdout.contains("no login found"),
        "{stdout}"
    );
    assert!(stdout.contains("type /login"), "{stdout}");
    // A key in the environment is a login.
    let out = setup
        .cmd()
        .env(KEY_ENV, KEY)
        .env("ANTHROPIC_API_KEY", "sk-test")
        .arg("doctor")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(has_check(&stdout, "✓", "claude config"), "{stdout}");
    assert!(!stdout.contains("sk-test"), "{stdout}");
}

#[test]
fn doctor_fails_when_sessions_read_another_claude_config_than_plane_orch() {
    let setup = Setup::new();
    let theirs = setup.path().join("server-claude");
    common::sessions::set_up_claude_config(&theirs);
    let tmux = common::sessions::TmuxGuard::new();
    let path = format!(
        "{}:{}",
        setup.path().join("agent-bin").display(),
        std::env::var("PATH").unwrap()
    );
    let out = std::process::Command::new("tmux")
        .args(["new-session", "-d", "-s", "other", "sleep 600"])
        .env("TMUX_TMPDIR", tmux.tmpdir())
        .env("PATH", &path)
        .env("CLAUDE_CONFIG_DIR", &theirs)
        .env_remove("TMUX")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = setup
        .cmd()
        .env(KEY_ENV, KEY)
        .env("TMUX_TMPDIR", tmux.tmpdir())
        .arg("doctor")
        .output()
        .unwrap();
    assert_fails(
        &out,
        "claude config",
        &format!(
            "plane-orch marks worktrees trusted in {}/.claude.json, but sessions read {}/.claude.json",
            setup.path().join("claude-config").display(),
            theirs.display()
        ),
        &format!("export CLAUDE_CONFIG_DIR={}", theirs.display()),
    );
    assert!(
        has_check(&text(&out.stdout), "✓", "agent"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn doctor_fails_when_the_hooks_call_a_binary_that_is_gone() {
    let setup = Setup::new();
    let settings = r#"{"hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command",
        "command": "'/gone/plane orch' hook prompt-submit"}]}]}}"#;
    fs::write(setup.path().join("data/claude/settings.json"), settings).unwrap();
    let out = setup.doctor(true, None);
    assert_fails(
        &out,
        "hooks",
        "/gone/plane orch is not an executable file",
        "plane-orch restart ID",
    );
}

#[test]
fn doctor_fails_on_an_installed_serve_unit_that_would_kill_sessions() {
    let setup = Setup::new();
    let units = setup.path().join("xdg/systemd/user");
    fs::create_dir_all(&units).unwrap();
    let shipped = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/systemd/plane-orch-serve.service"),
    )
    .unwrap();
    let unit = units.join("plane-orch-serve.service");
    fs::write(&unit, shipped.replace("KillMode=process\n", "")).unwrap();
    assert_fails(
        &setup.doctor(true, None),
        "serve unit",
        "runs serve with KillMode=control-group (the default)",
        "add KillMode=process under [Service]",
    );
    // The shipped unit as it is: fine.
    fs::write(&unit, &shipped).unwrap();
    let out = setup.doctor(true, None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(has_check(&stdout, "✓", "serve unit"), "{stdout}");
    // A drop-in wins over the unit.
    fs::create_dir(units.join("plane-orch-serve.service.d")).unwrap();
    fs::write(
        units.join("plane-orch-serve.service.d/kill.conf"),
        "[Service]\nKillMode=mixed\n",
    )
    .unwrap();
    assert_fails(
        &setup.doctor(true, None),
        "serve unit",
        "KillMode=mixed",
        "KillMode=process",
    );
}

#[test]
fn doctor_wraps_long_lines_to_a_narrow_terminal_at_word_boundaries() {
    let setup = Setup::with_config("  agent_command: claude-nope\n");
    // A real terminal, 60 columns wide (util-linux `script` gives doctor a pty).
    let cmd = format!(
        "stty rows 24 cols 60; exec '{}' --config '{}' doctor",
        common::bin_path().display(),
        setup.env.config_path().display()
    );
    let path = format!(
        "{}:{}",
        setup.path().join("agent-bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("timeout")
        .args(["60", "script", "-qec", &cmd, "/dev/null"])
        .current_dir(setup.path())
        .env_remove("PLANE_ORCH_CONFIG")
        .env_remove("TMUX")
        .env("PATH", path)
        .env(KEY_ENV, KEY)
        .env("NO_COLOR", "1")
        .env("TMUX_TMPDIR", setup.path().join("tmux"))
        .env("CLAUDE_CONFIG_DIR", setup.path().join("claude-config"))
        .env("XDG_CONFIG_HOME", setup.path().join("xdg"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script runs");
    let screen = text(&out.stdout).replace('\r', "");
    assert!(screen.contains("✗ agent "), "{screen}");
    for line in screen.lines().filter(|l| !l.starts_with("error:")) {
        let cols = line.chars().count();
        // The text after the mark and name (20 columns), or after `    fix: `.
        let body: String = if line.starts_with("    fix: ") {
            line.chars().skip(9).collect()
        } else {
            line.chars().skip(20).collect()
        };
        assert!(
            cols <= 60 || body.split_whitespace().count() == 1,
            "a line of {cols} columns that could have been broken between words:\n{screen}"
        );
    }
    // The agent's ✗ line went on under its text rather than mid-word.
    let at = screen
        .lines()
        .position(|l| l.starts_with("✗ agent "))
        .unwrap();
    let next = screen.lines().nth(at + 1).unwrap();
    assert!(next.starts_with(&" ".repeat(20)), "{screen}");
    assert!(
        screen.contains("claude-nope") && !screen.contains("claude-\n"),
        "{screen}"
    );
}
