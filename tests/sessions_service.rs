//! The `service` backend: sessions started, seen and ended through tmux-session-service.

mod common;

use std::fs;

use common::fake_service::FakeService;
use common::sessions::{git_repo, wait_for, Sessions};

fn service_world(s: &Sessions) -> FakeService {
    FakeService::start(
        s.tmux.tmpdir().to_path_buf(),
        vec![
            ("PATH".into(), s.path.clone()),
            ("FAKE_CLAUDE_DIR".into(), s.fake.display().to_string()),
            (
                "CLAUDE_CONFIG_DIR".into(),
                s.claude_config.display().to_string(),
            ),
            // The service's own environment holds the secrets: no session may get them.
            ("PLANE_API_KEY".into(), "service-held-key".into()),
            ("PLANE_ORCH_API_TOKEN".into(), "service-held-token".into()),
        ],
    )
}

fn sections(url: &str) -> String {
    format!("sessions:\n  backend: service\n  service_url: {url}\n  service_project_id: my-dash\n")
}

#[test]
fn the_service_backend_starts_sees_and_kills_sessions() {
    let s = Sessions::new();
    let service = service_world(&s);
    s.write_config("", &sections(&service.url));
    s.ok(&["add", "SVC-1", "--title", "Through the service"]);
    s.ok(&["approve", "SVC-1"]);
    let argv = s.agent_argv();
    assert!(argv.iter().any(|a| a == "--session-id"));
    assert!(s.tmux.has("plane-SVC-1"));
    let t = s.ticket("SVC-1");
    assert_eq!(t["session"]["backend"], "service");
    assert_eq!(t["session"]["name"], "plane-SVC-1");
    {
        let reqs = service.requests.lock().unwrap();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0]["sessionId"], "plane-SVC-1");
        assert_eq!(reqs[0]["projectId"], "my-dash");
        let command = reqs[0]["command"].as_str().unwrap();
        assert!(command.starts_with("cd '"), "{command}");
        assert!(
            command.contains(
                " && exec env -u 'PLANE_API_KEY' -u 'PLANE_ORCH_API_TOKEN' PLANE_ORCH_TICKET='SVC-1' "
            ),
            "{command}"
        );
        assert!(
            command.ends_with("claude-ticket-worker' 'SVC-1'"),
            "{command}"
        );
    }
    assert_eq!(
        s.agent_env_var("PLANE_ORCH_TICKET").as_deref(),
        Some("SVC-1")
    );
    assert_eq!(s.agent_env_var("PLANE_API_KEY"), None);
    assert_eq!(s.agent_env_var("PLANE_ORCH_API_TOKEN"), None);

    let out = s.ok(&["poll"]);
    assert!(out.contains("0 sessions lost"), "{out}");
    s.ok(&["remove", "SVC-1", "--kill-session"]);
    wait_for("the session to end", || !s.tmux.has("plane-SVC-1"));
}

#[test]
fn the_service_backend_flags_a_lost_session_and_restarts_it() {
    let s = Sessions::new();
    let service = service_world(&s);
    s.write_config("", &sections(&service.url));
    s.ok(&["add", "SVC-2", "--title", "Lost"]);
    s.ok(&["approve", "SVC-2"]);
    s.agent_argv();
    s.tmux.tmux(&["kill-session", "-t", "=plane-SVC-2"]);
    let out = s.ok(&["poll"]);
    assert!(out.contains("1 sessions lost"), "{out}");
    fs::remove_file(s.fake.join("argv")).unwrap();
    s.ok(&["restart", "SVC-2"]);
    let argv = s.agent_argv();
    assert!(argv.iter().any(|a| a == "--resume"), "{argv:?}");
}

#[test]
fn quoting_survives_a_workdir_with_a_space_and_a_quote() {
    let s = Sessions::new();
    let service = service_world(&s);
    let odd = s.env.path().join("it's a repo");
    git_repo(&odd);
    s.env.set_config(&format!(
        "automation:\n  repo_path: \"{}\"\n  worktree_dir: \"{}/work trees/it's\"\n  worker: {}\n{}",
        odd.display(),
        s.env.path().display(),
        common::sessions::worker_path().display(),
        sections(&service.url)
    ));
    s.ok(&["add", "Q-1", "--title", "Quotes"]);
    s.ok(&["approve", "Q-1"]);
    s.agent_argv();
    let cwd = fs::read_to_string(s.fake.join("cwd")).unwrap();
    let expected = s
        .env
        .path()
        .join("work trees/it's/Q-1")
        .canonicalize()
        .unwrap();
    assert_eq!(cwd.trim(), expected.display().to_string());
    assert_eq!(
        fs::read_to_string(s.fake.join("branch")).unwrap().trim(),
        "claude/q-1"
    );
}

#[test]
fn a_service_that_is_down_keeps_the_ticket_pending_with_the_reason() {
    let s = Sessions::new();
    // A port nobody listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.write_config("", &sections(&format!("http://127.0.0.1:{port}")));
    s.ok(&["add", "DOWN-1", "--title", "Down"]);
    let err = s.fails(1, &["approve", "DOWN-1"]);
    assert!(err.contains("tmux-session-service"), "{err}");
    let t = s.ticket("DOWN-1");
    assert_eq!(t["status"], "pending");
    assert!(t["last_error"]
        .as_str()
        .unwrap()
        .contains("sessions.service_url"));
}
