//! A small fake of tmux-session-service (session-service.md): the routes plane-orch uses,
//! really starting each session's command in tmux (through the shell, as the service does),
//! on the test's private tmux server.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// The fake service; its thread stops when this drops.
pub struct FakeService {
    pub url: String,
    /// Every PUT body received, in order.
    pub requests: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeService {
    /// Starts on 127.0.0.1 (port 0); sessions run on the tmux server in `tmux_tmpdir` with
    /// `env` added to their environment (the service's own environment, in real life).
    pub fn start(tmux_tmpdir: PathBuf, env: Vec<(String, String)>) -> FakeService {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind fake service");
        let port = server.server_addr().to_ip().expect("ip address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let tmux = move |args: &[&str]| {
            Command::new("tmux")
                .args(args)
                .env("TMUX_TMPDIR", &tmux_tmpdir)
                .env_remove("TMUX")
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .output()
                .expect("run tmux")
        };
        let thread = {
            let stop = stop.clone();
            let requests = requests.clone();
            std::thread::spawn(move || {
                let known: Mutex<Vec<(String, String, String)>> = Mutex::new(Vec::new());
                while !stop.load(Ordering::SeqCst) {
                    let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    let mut body = String::new();
                    let _ = req.as_reader().read_to_string(&mut body);
                    let method = req.method().as_str().to_string();
                    let path = req.url().to_string();
                    let alive = |id: &str| {
                        tmux(&["has-session", "-t", &format!("={id}")])
                            .status
                            .success()
                    };
                    let (status, answer) = match (method.as_str(), path.as_str()) {
                        ("GET", "/sessions") => {
                            let list: Vec<Value> = known
                                .lock()
                                .unwrap()
                                .iter()
                                .map(|(id, project, command)| {
                                    json!({"sessionId": id, "projectId": project,
                                        "command": command, "createdAt": "", "updatedAt": "",
                                        "active": alive(id)})
                                })
                                .collect();
                            (200, json!({ "sessions": list }))
                        }
                        ("PUT", p) if p.starts_with("/sessions/") => {
                            let id = p.trim_start_matches("/sessions/").to_string();
                            match serde_json::from_str::<Value>(&body) {
                                Err(_) => (400, json!({"error": "Invalid JSON payload"})),
                                Ok(v) => {
                                    requests.lock().unwrap().push(v.clone());
                                    let command = v["command"].as_str().unwrap_or("").to_string();
                                    let project = v["projectId"].as_str().unwrap_or("").to_string();
                                    let mut out = None;
                                    if !alive(&id) {
                                        out =
                                            Some(tmux(&["new-session", "-d", "-s", &id, &command]));
                                    }
                                    match out {
                                        Some(o) if !o.status.success() => (
                                            500,
                                            json!({"error": String::from_utf8_lossy(&o.stderr)}),
                                        ),
                                        _ => {
                                            let mut k = known.lock().unwrap();
                                            k.retain(|(i, _, _)| *i != id);
                                            k.push((id.clone(), project.clone(), command.clone()));
                                            (
                                                201,
                                                json!({"session": {"sessionId": id,
                                                "projectId": project, "command": command}}),
                                            )
                                        }
                                    }
                                }
                            }
                        }
                        ("DELETE", p) if p.starts_with("/sessions/") => {
                            let id = p.trim_start_matches("/sessions/").to_string();
                            tmux(&["kill-session", "-t", &format!("={id}")]);
                            known.lock().unwrap().retain(|(i, _, _)| *i != id);
                            (200, json!({"ok": true}))
                        }
                        _ => (404, json!({"error": "not found"})),
                    };
                    let resp = tiny_http::Response::from_string(answer.to_string())
                        .with_status_code(status)
                        .with_header(
                            "Content-Type: application/json"
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        );
                    let _ = req.respond(resp);
                }
            })
        };
        FakeService {
            url: format!("http://127.0.0.1:{port}"),
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
