//! A fake Plane for the poll benchmark: tiny_http on 127.0.0.1:0 with several worker threads,
//! answering the few endpoints a poll reads in Plane's shapes (the recorded fixtures in
//! tests/fixtures/plane, cursor pagination `per_page:page:is_prev`, `next_page_results`, the
//! rate-limit headers with plenty left so plane-orch never paces itself). It adds up the time
//! it spends answering, so a poll's own time can be told apart from the fake's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// The key the fake accepts.
pub const KEY: &str = "plane_api_bench_0f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// The two watched projects: UUID and identifier.
pub const PROJECTS: [(&str, &str); 2] = [
    ("5fdc458d-c727-4c57-b584-4b5c0e4f30f8", "CSLOG"),
    ("9a1b2c3d-0000-4000-8000-00000000a0b0", "OPS"),
];
const WORKERS: usize = 4;

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture")
}

fn states() -> Vec<Value> {
    fixture(include_str!("../../tests/fixtures/plane/states.json"))["results"]
        .as_array()
        .expect("states")
        .clone()
}

fn labels() -> Vec<Value> {
    fixture(include_str!("../../tests/fixtures/plane/labels.json"))["results"]
        .as_array()
        .expect("labels")
        .clone()
}

const WORDS: &[&str] = &[
    "rotate", "logs", "daily", "service", "cache", "index", "timeout", "retry", "export", "report",
    "schema", "client", "render", "queue", "token", "login", "metric", "config",
];

fn words(seed: u64, n: u64) -> String {
    (0..n)
        .map(|i| WORDS[usize::try_from((seed * 7 + i * 13 + i * i) % 18).unwrap_or(0)])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A project whose work items are `1..=items`; every tenth one is triggered, half of those
/// by the trigger state and half by the trigger label.
struct Project {
    id: String,
    identifier: String,
    states: Vec<Value>,
    labels: Vec<Value>,
    items: Vec<Value>,
}

impl Project {
    fn new(n: usize, items: u64) -> Project {
        let (id, identifier) = PROJECTS[n];
        let mut states = states();
        let mut labels = labels();
        if n > 0 {
            for (i, v) in states.iter_mut().chain(labels.iter_mut()).enumerate() {
                v["id"] = json!(format!("{n:08x}-1111-4000-8000-{i:012x}"));
                v["project"] = json!(id);
            }
        }
        let state =
            |name: &str| states.iter().find(|s| s["name"] == name).expect("state")["id"].clone();
        let label =
            |name: &str| labels.iter().find(|s| s["name"] == name).expect("label")["id"].clone();
        let template = fixture(include_str!(
            "../../tests/fixtures/plane/work-item-by-identifier.json"
        ));
        let others = ["Backlog", "Todo", "In Progress", "Done", "Cancelled"];
        let items = (1..=items)
            .map(|seq| {
                let mut item = template.clone();
                item["id"] = json!(format!("{}-2222-4000-8000-{seq:012x}", &id[..8]));
                item["sequence_id"] = json!(seq);
                item["name"] = json!(format!(
                    "Fix the {} in {}",
                    words(seq, 3),
                    words(seq + 1, 2)
                ));
                item["description_html"] = json!(format!(
                    "<p>{}.</p><p>{}.</p><ul><li>{}</li><li>{}</li></ul>",
                    words(seq, 14),
                    words(seq + 2, 10),
                    words(seq + 3, 5),
                    words(seq + 4, 6)
                ));
                let (st, lb): (&str, Vec<Value>) = if seq % 10 == 0 {
                    if seq % 20 == 0 {
                        ("Ready for Claude", vec![])
                    } else {
                        ("Todo", vec![label("claude")])
                    }
                } else {
                    let st = others[usize::try_from(seq % 5).unwrap_or(0)];
                    let lb = match seq % 3 {
                        0 => vec![label("bug")],
                        1 => vec![label("docs"), label("bug")],
                        _ => vec![],
                    };
                    (st, lb)
                };
                item["state"] = state(st);
                item["labels"] = json!(lb);
                item["project"] = json!(id);
                item["priority"] = json!(
                    ["urgent", "high", "medium", "low", "none"]
                        [usize::try_from(seq % 5).unwrap_or(0)]
                );
                item
            })
            .collect();
        Project {
            id: id.into(),
            identifier: identifier.into(),
            states,
            labels,
            items,
        }
    }
}

struct Shared {
    projects: Vec<Project>,
    /// Answers already made, by path and query: every poll asks the same pages.
    cache: Mutex<HashMap<String, (u16, Arc<String>)>>,
    busy_ns: AtomicU64,
    requests: AtomicU64,
}

/// The running fake; stopped when dropped.
pub struct FakePlane {
    pub url: String,
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
}

impl FakePlane {
    /// Starts a fake holding `items_per_project` work items in each of the two projects.
    pub fn start(items_per_project: u64) -> FakePlane {
        // TCP_NODELAY: without it the poll would measure delayed ACKs.
        let server = Arc::new(super::loopback::server());
        let port = server.server_addr().to_ip().expect("ip").port();
        let shared = Arc::new(Shared {
            projects: (0..PROJECTS.len())
                .map(|n| Project::new(n, items_per_project))
                .collect(),
            cache: Mutex::new(HashMap::new()),
            busy_ns: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let threads = (0..WORKERS)
            .map(|_| {
                let (s, sh) = (Arc::clone(&server), Arc::clone(&shared));
                std::thread::spawn(move || {
                    while let Ok(req) = s.recv() {
                        handle(&sh, req);
                    }
                })
            })
            .collect();
        FakePlane {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            server,
            threads,
        }
    }

    /// The time spent answering, and the number of requests, since the start.
    pub fn busy(&self) -> (Duration, u64) {
        (
            Duration::from_nanos(self.shared.busy_ns.load(Ordering::Relaxed)),
            self.shared.requests.load(Ordering::Relaxed),
        )
    }
}

impl Drop for FakePlane {
    fn drop(&mut self) {
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn handle(shared: &Shared, req: tiny_http::Request) {
    let start = Instant::now();
    let url = req.url().to_string();
    let key_ok = req
        .headers()
        .iter()
        .any(|h| h.field.equiv("X-API-Key") && h.value.as_str() == KEY);
    let (status, body) = if !key_ok {
        (
            401,
            Arc::new(
                json!({"detail": "Authentication credentials were not provided."}).to_string(),
            ),
        )
    } else if req.method() != &tiny_http::Method::Get {
        (
            405,
            Arc::new(json!({"detail": "Method not allowed."}).to_string()),
        )
    } else {
        let cached = shared.cache.lock().expect("cache").get(&url).cloned();
        if let Some(hit) = cached {
            hit
        } else {
            let (status, v) = route(shared, &url);
            let made = (status, Arc::new(v.to_string()));
            shared
                .cache
                .lock()
                .expect("cache")
                .insert(url, made.clone());
            made
        }
    };
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 60;
    let mut response = tiny_http::Response::from_string(body.as_str()).with_status_code(status);
    for (k, v) in [
        ("Content-Type", "application/json".to_string()),
        ("X-RateLimit-Remaining", "100000".to_string()),
        ("X-RateLimit-Reset", reset.to_string()),
    ] {
        response
            .add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("header"));
    }
    let _ = req.respond(response);
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    shared.busy_ns.fetch_add(ns, Ordering::Relaxed);
    shared.requests.fetch_add(1, Ordering::Relaxed);
}

fn not_found() -> (u16, Value) {
    (404, json!({"error": "Page not found."}))
}

fn route(shared: &Shared, url: &str) -> (u16, Value) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let Some(rest) = path.strip_prefix("/api/v1/workspaces/acme/projects/") else {
        return not_found();
    };
    if !path.ends_with('/') {
        return (301, Value::Null);
    }
    let seg: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let Some(p) = shared.projects.iter().find(|p| p.id == seg[0]) else {
        return (404, json!({"error": "Project not found"}));
    };
    match &seg[1..] {
        [] => (
            200,
            json!({"id": p.id, "name": format!("Project {}", p.identifier),
                   "identifier": p.identifier, "network": 2, "is_member": true}),
        ),
        ["states"] => page(&p.states, query),
        ["labels"] => page(&p.labels, query),
        ["work-items" | "issues"] => page(&p.items, query),
        _ => not_found(),
    }
}

fn page(items: &[Value], query: &str) -> (u16, Value) {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let per_page = match param("per_page").map(|v| v.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return (400, json!({"detail": "Invalid per_page parameter."})),
    };
    let Some(page) = super::plane_page::cursor_page(param("cursor").as_deref()) else {
        return (400, json!({"error": "Invalid cursor format"}));
    };
    // `fields=` narrows each item to those keys, as Plane does.
    let fields: Option<Vec<String>> =
        param("fields").map(|f| f.split(',').map(str::to_string).collect());
    let total = items.len();
    let start = (page * per_page).min(total);
    let end = (start + per_page).min(total);
    let results: Vec<Value> = items[start..end]
        .iter()
        .map(|item| match &fields {
            None => item.clone(),
            Some(f) => Value::Object(
                f.iter()
                    .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                    .collect::<Map<String, Value>>(),
            ),
        })
        .collect();
    (
        200,
        super::plane_page::page(&results, total, page, per_page),
    )
}
