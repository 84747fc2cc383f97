//! A fake Plane server for the tests: tiny_http on 127.0.0.1:0 in its own thread, answering
//! Plane's REST API v1 in the shapes recorded in tests/fixtures/plane (the envelope, the
//! cursors, the error bodies), checking `X-API-Key`, recording every request, and able to be
//! told to fail (429 with Retry-After, 5xx, any status), to answer slowly, or to behave like a
//! Plane older than v1.1.0 that has no `work-items/`.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

use super::Env;

/// The API key the fake accepts. Tests check it never shows up in output.
pub const KEY: &str = "plane_api_5f3c9a7e1d2b4c6a8e0f1a2b3c4d5e6f";
/// The env var the test config names for the key.
pub const KEY_ENV: &str = "PLANE_API_KEY";
/// The recorded project's UUID.
pub const CSLOG: &str = "5fdc458d-c727-4c57-b584-4b5c0e4f30f8";
/// A second project's UUID.
pub const OPS: &str = "9a1b2c3d-0000-4000-8000-00000000a0b0";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/plane/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// An answer the fake gives instead of the real one, to matching requests.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<String>,
    pub path_contains: String,
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// How many more times; `None`: every time.
    pub times: Option<usize>,
}

impl Fault {
    /// `status` with `body` for `method` requests whose path contains `path`.
    pub fn new(method: &str, path: &str, status: u16, body: Value) -> Fault {
        Fault {
            method: Some(method.to_string()),
            path_contains: path.to_string(),
            status,
            body: body.to_string(),
            headers: Vec::new(),
            times: None,
        }
    }

    /// Plane's 429 with `Retry-After: secs`, for any request.
    pub fn rate_limited(secs: u64) -> Fault {
        Fault {
            method: None,
            path_contains: String::new(),
            status: 429,
            body: fixture("rate-limited.json").to_string(),
            headers: vec![("Retry-After".into(), secs.to_string())],
            times: None,
        }
    }

    pub fn times(mut self, n: usize) -> Fault {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method) && path.contains(&self.path_contains)
    }
}

/// A Plane project: its states, labels and work items as Plane gives them.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub identifier: String,
    pub states: Vec<Value>,
    pub labels: Vec<Value>,
    pub items: Vec<Value>,
}

impl Project {
    /// The recorded project (CSLOG) with its recorded states and labels and no work items.
    pub fn cslog() -> Project {
        Project {
            id: CSLOG.into(),
            identifier: "CSLOG".into(),
            states: fixture("states.json")["results"]
                .as_array()
                .unwrap()
                .clone(),
            labels: fixture("labels.json")["results"]
                .as_array()
                .unwrap()
                .clone(),
            items: Vec::new(),
        }
    }

    /// Another project with the same state and label names under new UUIDs.
    pub fn other(id: &str, identifier: &str, n: u32) -> Project {
        let mut p = Project::cslog();
        p.id = id.into();
        p.identifier = identifier.into();
        for (i, v) in p.states.iter_mut().chain(p.labels.iter_mut()).enumerate() {
            v["id"] = json!(format!("{n:08x}-1111-4000-8000-{i:012x}"));
            v["project"] = json!(id);
        }
        p
    }

    pub fn state_id(&self, name: &str) -> String {
        self.states
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no state {name}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn label_id(&self, name: &str) -> String {
        self.labels
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no label {name}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The UUID the fake gives work item `seq`.
    pub fn item_id(&self, seq: u64) -> String {
        format!("{}-2222-4000-8000-{seq:012x}", &self.id[..8])
    }

    /// Adds a work item in the recorded shape.
    pub fn add(&mut self, seq: u64, name: &str, state: &str, labels: &[&str], html: &str) {
        let mut item = fixture("work-item-by-identifier.json");
        item["id"] = json!(self.item_id(seq));
        item["sequence_id"] = json!(seq);
        item["name"] = json!(name);
        item["description_html"] = json!(html);
        item["state"] = json!(self.state_id(state));
        item["labels"] = json!(labels.iter().map(|l| self.label_id(l)).collect::<Vec<_>>());
        item["project"] = json!(self.id);
        item["priority"] = json!(if seq % 2 == 0 { "high" } else { "none" });
        self.items.push(item);
    }

    /// Adds work items `from..=to`, all in Backlog with no labels.
    pub fn fill(&mut self, from: u64, to: u64) {
        for seq in from..=to {
            self.add(
                seq,
                &format!("Backlog item {seq}"),
                "Backlog",
                &[],
                "<p></p>",
            );
        }
    }

    pub fn item_mut(&mut self, seq: u64) -> &mut Value {
        self.items
            .iter_mut()
            .find(|i| i["sequence_id"] == seq)
            .unwrap_or_else(|| panic!("no item {seq}"))
    }

    pub fn set_state(&mut self, seq: u64, state: &str) {
        let id = self.state_id(state);
        let item = self.item_mut(seq);
        item["state"] = json!(id);
        item["updated_at"] = json!("2026-11-27T05:00:00.000000Z");
    }

    pub fn set_labels(&mut self, seq: u64, labels: &[&str]) {
        let ids: Vec<String> = labels.iter().map(|l| self.label_id(l)).collect();
        self.item_mut(seq)["labels"] = json!(ids);
    }
}

/// What the fake holds and how it behaves; change it between commands with `FakePlane::with`.
#[derive(Debug, Default)]
pub struct Plane {
    pub projects: Vec<Project>,
    pub comments: Vec<Value>,
    pub requests: Vec<Recorded>,
    pub faults: Vec<Fault>,
    /// Answer like Plane before v1.1.0: `work-items/` paths are unknown routes.
    pub legacy: bool,
    /// Wait this long before answering each request.
    pub delay: Duration,
    /// Answer the next request whose path contains `.0` after `.1` (once per entry).
    pub slow_once: Vec<(String, Duration)>,
    /// Plane's per-key sliding-window limiter (see [`Limiter`]).
    pub limiter: Limiter,
    /// Work items deleted in Plane (by UUID): gone from lists and reads, 404 to a PATCH; a
    /// comment still lands, as Plane deletes softly.
    pub deleted: Vec<String>,
}

/// Plane's rate limiter: a sliding window of the times of the requests it let through, per
/// key, checked after the key (401 and 403 cost nothing). Allowed answers carry
/// `X-RateLimit-Remaining` (left after this one) and `X-RateLimit-Reset` (now + the window,
/// in epoch seconds, as Plane computes it); past the limit it answers 429 with Plane's body
/// and `Retry-After` (whole seconds until the oldest request leaves the window) and no
/// X-RateLimit-* headers. The default is generous (1000 a minute) so tests that do not
/// study the limit never meet it.
#[derive(Debug, Clone)]
pub struct Limiter {
    pub limit: usize,
    pub window: Duration,
    pub allowed: std::collections::VecDeque<std::time::Instant>,
    /// 429s answered.
    pub throttled: usize,
}

impl Default for Limiter {
    fn default() -> Limiter {
        Limiter::new(1000, Duration::from_secs(60))
    }
}

impl Limiter {
    pub fn new(limit: usize, window: Duration) -> Limiter {
        Limiter {
            limit,
            window,
            allowed: std::collections::VecDeque::new(),
            throttled: 0,
        }
    }

    /// Counts one request: `Ok(remaining)` or `Err(retry_after_secs)`.
    fn admit(&mut self) -> Result<usize, u64> {
        let now = std::time::Instant::now();
        while self
            .allowed
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.allowed.pop_front();
        }
        if self.allowed.len() >= self.limit {
            self.throttled += 1;
            let oldest = *self.allowed.front().expect("full");
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs_f64().ceil() as u64);
        }
        self.allowed.push_back(now);
        Ok(self.limit - self.allowed.len())
    }
}

impl Plane {
    pub fn new(projects: Vec<Project>) -> Plane {
        Plane {
            projects,
            ..Plane::default()
        }
    }

    pub fn project(&mut self, id: &str) -> &mut Project {
        self.projects
            .iter_mut()
            .find(|p| p.id == id)
            .expect("project")
    }

    /// The requests whose method is `method` and whose path and query contain `part`.
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.method == method && r.url.contains(part))
            .count()
    }
}

/// The running fake; stopped when dropped.
pub struct FakePlane {
    pub url: String,
    state: Arc<Mutex<Plane>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FakePlane {
    pub fn start(plane: Plane) -> FakePlane {
        let server = Arc::new(super::loopback::server());
        let port = server.server_addr().to_ip().expect("ip").port();
        let state = Arc::new(Mutex::new(plane));
        let (s, st) = (Arc::clone(&server), Arc::clone(&state));
        let thread = std::thread::spawn(move || {
            while let Ok(req) = s.recv() {
                handle(&st, req);
            }
        });
        FakePlane {
            url: format!("http://127.0.0.1:{port}"),
            state,
            server,
            thread: Some(thread),
        }
    }

    /// Reads or changes what the fake holds.
    pub fn with<R>(&self, f: impl FnOnce(&mut Plane) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|p| p.requests.clone())
    }
}

impl Drop for FakePlane {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Answer {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

fn answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body: body.to_string(),
        headers: Vec::new(),
    }
}

fn handle(state: &Arc<Mutex<Plane>>, mut req: tiny_http::Request) {
    let mut body = String::new();
    let _ = req.as_reader().read_to_string(&mut body);
    let method = req.method().as_str().to_string();
    let url = req.url().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
        .collect();
    let delay = {
        let mut plane = state.lock().unwrap();
        plane.requests.push(Recorded {
            method: method.clone(),
            url: url.clone(),
            headers: headers.clone(),
            body: body.clone(),
        });
        let once = plane
            .slow_once
            .iter()
            .position(|(part, _)| url.contains(part.as_str()))
            .map_or(Duration::ZERO, |i| plane.slow_once.remove(i).1);
        plane.delay + once
    };
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let key = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-api-key"))
        .map(|(_, v)| v.clone());
    let (a, remaining) = {
        let mut plane = state.lock().unwrap();
        let authorized = key.as_deref() == Some(KEY);
        let admitted = if authorized && url.starts_with("/api/v1/") {
            Some(plane.limiter.admit())
        } else {
            None
        };
        match admitted {
            Some(Err(retry_after)) => {
                let mut a = answer(429, fixture("rate-limited.json"));
                a.headers
                    .push(("Retry-After".into(), retry_after.to_string()));
                (a, None)
            }
            Some(Ok(left)) => (
                route(&mut plane, &method, &url, key.as_deref(), &body),
                Some((left, plane.limiter.window)),
            ),
            None => (
                route(&mut plane, &method, &url, key.as_deref(), &body),
                None,
            ),
        }
    };
    let mut response = tiny_http::Response::from_string(a.body).with_status_code(a.status);
    let mut all = vec![("Content-Type".to_string(), "application/json".to_string())];
    if let (Some((left, window)), false) = (remaining, a.status == 429) {
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + window.as_secs().max(1);
        all.push(("X-RateLimit-Remaining".into(), left.to_string()));
        all.push(("X-RateLimit-Reset".into(), reset.to_string()));
    }
    all.extend(a.headers);
    for (k, v) in all {
        response.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
    }
    let _ = req.respond(response);
}

fn page(items: &[Value], query: &str) -> Answer {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let per_page: usize = match param("per_page").map(|v| v.parse::<usize>()) {
        None => 1000,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(Ok(_)) => {
            return answer(
                400,
                json!({"detail": "Invalid per_page value. Cannot exceed 1000."}),
            )
        }
        Some(Err(_)) => return answer(400, json!({"detail": "Invalid per_page parameter."})),
    };
    let Some(page) = super::plane_page::cursor_page(param("cursor").as_deref()) else {
        return answer(400, fixture("error-bad-cursor.json"));
    };
    let total = items.len();
    let start = (page * per_page).min(total);
    let end = (start + per_page).min(total);
    answer(
        200,
        super::plane_page::page(&items[start..end], total, page, per_page),
    )
}

#[allow(clippy::too_many_lines)]
fn route(plane: &mut Plane, method: &str, url: &str, key: Option<&str>, body: &str) -> Answer {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return answer(404, fixture("error-404-path.json"));
    };
    if !path.ends_with('/') {
        let mut a = answer(301, json!(null));
        a.body = String::new();
        a.headers.push(("Location".into(), format!("{path}/")));
        return a;
    }
    match key {
        None => return answer(401, fixture("error-no-key.json")),
        Some(k) if k != KEY => return answer(403, fixture("error-bad-key.json")),
        Some(_) => {}
    }
    if let Some(i) = plane.faults.iter().position(|f| f.matches(method, path)) {
        let f = plane.faults[i].clone();
        match f.times {
            Some(1) => {
                plane.faults.remove(i);
            }
            Some(n) => plane.faults[i].times = Some(n - 1),
            None => {}
        }
        return Answer {
            status: f.status,
            body: f.body,
            headers: f.headers,
        };
    }
    let seg: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let deleted = plane.deleted.clone();
    let live = |i: &&Value| !deleted.iter().any(|d| i["id"] == d.as_str());
    let not_found = || answer(404, fixture("error-404-path.json"));
    let no_such = || answer(404, fixture("error-404-issue.json"));
    let forbidden = || answer(403, fixture("error-404-workspace.json"));
    let kind_ok = |k: &str| k == "issues" || (k == "work-items" && !plane.legacy);
    match (method, seg.as_slice()) {
        ("GET", ["users", "me"]) => answer(200, fixture("users-me.json")),
        (_, ["workspaces", slug, ..]) if *slug != "acme" => forbidden(),
        ("GET", ["workspaces", _, kind, readable]) if kind_ok(kind) => {
            let Some((ident, seq)) = readable.split_once('-') else {
                return answer(
                    500,
                    json!({"error": "Something went wrong please try again later"}),
                );
            };
            let Ok(seq) = seq.parse::<u64>() else {
                return answer(
                    500,
                    json!({"error": "Something went wrong please try again later"}),
                );
            };
            plane
                .projects
                .iter()
                .filter(|p| p.identifier == ident)
                .flat_map(|p| p.items.iter())
                .filter(live)
                .find(|i| i["sequence_id"] == seq)
                .map_or_else(no_such, |i| answer(200, i.clone()))
        }
        (_, ["workspaces", _, "projects", pid, more @ ..]) => {
            let legacy = plane.legacy;
            let Some(p) = plane.projects.iter_mut().find(|p| p.id == *pid) else {
                return if more.is_empty() {
                    answer(404, fixture("error-404-project.json"))
                } else {
                    forbidden()
                };
            };
            let kind_ok = |k: &str| k == "issues" || (k == "work-items" && !legacy);
            match (method, more) {
                ("GET", []) => {
                    let mut v = fixture("project.json");
                    v["id"] = json!(p.id);
                    v["identifier"] = json!(p.identifier);
                    answer(200, v)
                }
                ("GET", ["states"]) => page(&p.states, query),
                ("GET", ["labels"]) => page(&p.labels, query),
                ("GET", [kind]) if kind_ok(kind) => {
                    let items: Vec<Value> = p.items.iter().filter(live).cloned().collect();
                    page(&items, query)
                }
                ("GET", [kind, iid]) if kind_ok(kind) => p
                    .items
                    .iter()
                    .filter(live)
                    .find(|i| i["id"] == *iid)
                    .map_or_else(no_such, |i| answer(200, i.clone())),
                ("PATCH", [kind, iid]) if kind_ok(kind) => {
                    let patch: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                    let states: Vec<Value> = p.states.iter().map(|s| s["id"].clone()).collect();
                    if deleted.iter().any(|d| d == iid) {
                        return no_such();
                    }
                    let Some(item) = p.items.iter_mut().find(|i| i["id"] == *iid) else {
                        return no_such();
                    };
                    if let Some(s) = patch.get("state") {
                        if !states.contains(s) {
                            return answer(400, fixture("error-patch-bad-state.json"));
                        }
                        item["state"] = s.clone();
                    }
                    answer(200, item.clone())
                }
                ("POST", [kind, iid, "comments"]) if kind_ok(kind) => {
                    if !p.items.iter().any(|i| i["id"] == *iid) {
                        return answer(400, json!({"error": "The payload is not valid"}));
                    }
                    let post: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                    let pid = p.id.clone();
                    if let Some(existing) = plane.comments.iter().find(|c| {
                        c["project"] == pid
                            && !post["external_id"].is_null()
                            && c["external_id"] == post["external_id"]
                            && c["external_source"] == post["external_source"]
                    }) {
                        return answer(
                            409,
                            json!({"error": "Work item comment with the same external id and external source already exists", "id": existing["id"]}),
                        );
                    }
                    let mut c = fixture("comment-create.json");
                    c["id"] = json!(format!(
                        "c0000000-0000-4000-8000-{:012x}",
                        plane.comments.len() + 1
                    ));
                    c["comment_html"] = post["comment_html"].clone();
                    c["external_id"] = post["external_id"].clone();
                    c["external_source"] = post["external_source"].clone();
                    c["issue"] = json!(iid);
                    c["project"] = json!(pid);
                    plane.comments.push(c.clone());
                    answer(201, c)
                }
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

/// A test world with a fake Plane: the env, the fake, and a config pointing at it.
pub struct PlaneEnv {
    pub env: Env,
    pub plane: FakePlane,
}

impl PlaneEnv {
    /// Starts the fake and writes a config watching `project_ids`; `plane_extra` is more YAML
    /// inside `plane:` (indented two spaces), `extra` more top-level sections.
    pub fn new(plane: Plane, project_ids: &[&str], plane_extra: &str, extra: &str) -> PlaneEnv {
        let plane = FakePlane::start(plane);
        let ids: Vec<String> = project_ids.iter().map(|p| format!("\"{p}\"")).collect();
        // A test may set its own timeout; everything else gets a short one.
        let timeout = if plane_extra.contains("timeout_secs") {
            ""
        } else {
            "  timeout_secs: 5\n"
        };
        let config = format!(
            "plane:\n  base_url: {}\n  web_url: https://plane.example\n  workspace_slug: acme\n  \
             api_key_env: {KEY_ENV}\n  project_ids: [{}]\n{timeout}{plane_extra}\n{extra}\n",
            plane.url,
            ids.join(", ")
        );
        PlaneEnv {
            env: Env::with_config(&config),
            plane,
        }
    }

    /// The binary with the key in its environment and short retry delays.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cmd();
        cmd.env(KEY_ENV, KEY).env("PLANE_ORCH_RETRY_BASE_MS", "1");
        cmd
    }

    /// Runs with the key set; asserts the key shows up in no output and no log.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let out = self.cmd().args(args).output().expect("run plane-orch");
        assert_no_key(&self.env, &out);
        out
    }

    pub fn ok(&self, args: &[&str]) -> String {
        super::expect_success(args, &self.run(args))
    }

    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        super::expect_exit(code, args, &self.run(args))
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Plane) -> R) -> R {
        self.plane.with(f)
    }
}

/// The key appears in neither stdout, stderr nor the log file.
pub fn assert_no_key(env: &Env, out: &std::process::Output) {
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !String::from_utf8_lossy(text).contains(KEY),
            "the API key appeared in {name}"
        );
    }
    if let Ok(log) = std::fs::read_to_string(env.path().join("data/orchestrator.log")) {
        assert!(!log.contains(KEY), "the API key appeared in the log");
    }
}
