//! The HTTP API calls `workflow::approve` from many threads of one process at once: exactly
//! one of them may win and start the session. This binary holds a single test because it sets
//! the process's environment (tmux's socket folder, the Claude config folder).

mod common;

use std::sync::Arc;

use common::sessions::{make_executable, Sessions};
use plane_orch::app::App;
use plane_orch::error::Kind;
use plane_orch::ticket::TicketId;
use plane_orch::workflow::{self, ApproveOptions};

#[test]
fn fifty_threads_approving_one_ticket_start_one_session() {
    let s = Sessions::new();
    // The in-process caller is this test binary, not plane-orch: a worker that only stays up.
    let worker = s.env.path().join("idle-worker");
    std::fs::write(&worker, "#!/bin/sh\nexec sleep 60\n").unwrap();
    make_executable(&worker);
    s.env.set_config(&format!(
        "automation:\n  repo_path: {}\n  worker: {}\n",
        s.repo.display(),
        worker.display()
    ));
    std::env::set_var("TMUX_TMPDIR", s.tmux.tmpdir());
    std::env::set_var("CLAUDE_CONFIG_DIR", &s.claude_config);
    std::env::remove_var("TMUX");
    s.ok(&["add", "HTTP-1", "--title", "Fifty clicks"]);

    let app = Arc::new(App::load(Some(&s.env.config_path())).unwrap());
    let id = TicketId::parse("HTTP-1").unwrap();
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            let id = id.clone();
            std::thread::spawn(move || workflow::approve(&app, &id, ApproveOptions::default()))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| Kind::of(e) == Kind::Conflict))
        .count();
    assert_eq!((wins, conflicts), (1, 49));
    assert_eq!(s.tmux.sessions(), ["plane-HTTP-1"]);
    assert_eq!(s.env.events("HTTP-1"), ["queued", "approved"]);
}
