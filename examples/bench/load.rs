//! `serve` while the store changes (wrk with and without a CLI writer running back to back;
//! RSS after 1 and after 100 reloads), concurrent transitions, and serve's CPU per request
//! next to nginx serving the same bytes as a static file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::commands::{self, Bin, Stores};
use super::proc;
use super::serve::{self, Load, Server};
use super::store;

/// The ids writers take pending tickets from, shared by every writer of one store.
pub struct Pool {
    ids: Mutex<Vec<usize>>,
}

impl Pool {
    pub fn new(ids: &[usize]) -> Pool {
        let mut v = ids.to_vec();
        v.reverse();
        Pool { ids: Mutex::new(v) }
    }

    fn take(&self) -> Option<usize> {
        self.ids.lock().expect("pool").pop()
    }
}

fn serve_cmd(bin: &Path, dir: &Path) -> Command {
    let mut c = commands::cmd(bin, dir);
    c.args(["serve", "--bind", "127.0.0.1:0"]);
    c
}

/// Checks the answer and returns its size and bytes.
fn pending_answer(url: &str, pending: usize) -> Vec<u8> {
    let (status, body) = serve::get(&format!("{url}/api/pending-tickets"));
    assert_eq!(status, 200, "GET {url}/api/pending-tickets");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON answer");
    let n = v
        .as_array()
        .or_else(|| v["tickets"].as_array())
        .map_or(0, Vec::len);
    assert!(
        n.abs_diff(pending) <= 200,
        "GET /api/pending-tickets gave {n} tickets, not about {pending}"
    );
    body
}

/// One round of the CLI writer: approve a pending ticket and complete it (two writes of the
/// state file), then a Notification hook call on an active ticket. Returns the commands run
/// and how many failed.
fn one_round(
    bin: &Path,
    dir: &Path,
    pool: &Pool,
    active: usize,
    hook_input: &Path,
) -> (usize, usize) {
    let mut runs = Vec::new();
    if let Some(i) = pool.take() {
        let id = store::id(i);
        runs.push(proc::try_run(commands::cmd(bin, dir).args([
            "approve",
            &id,
            "--no-session",
        ])));
        runs.push(proc::try_run(
            commands::cmd(bin, dir).args(["complete", &id, "bench"]),
        ));
    }
    runs.push(proc::try_run(
        commands::cmd(bin, dir)
            .args(["hook", "notify"])
            .env("PLANE_ORCH_TICKET", store::id(active))
            .stdin(std::fs::File::open(hook_input).expect("hook input")),
    ));
    (runs.len(), runs.iter().filter(|r| r.is_err()).count())
}

/// What one binary's serve did under load.
pub struct ServeUnderWrites {
    pub alone: Load,
    pub with_writer: Load,
    /// Commands the writer ran during the second wrk run, and how many failed.
    pub writes: usize,
    pub failed: usize,
    pub rss_after_1: Option<u64>,
    pub rss_after_100: Option<u64>,
}

/// Case: serve at 10,000 tickets (1,000 pending), wrk without and with a writer; then RSS
/// after 1 and after 100 reloads (each forced by a write, then one GET).
pub fn serve_under_writes(bin: &Bin, s: &Stores, b: usize, secs: u64) -> ServeUnderWrites {
    let dir = &s.dirs[b];
    let pool = Arc::new(Pool::new(&s.pending[..s.pending.len() - 110]));
    let server = Server::start(serve_cmd(&bin.path, dir));
    let url = format!("{}/api/pending-tickets", server.url);
    pending_answer(&server.url, s.pending.len());
    eprintln!("  [{}] wrk {url} for {secs} s, no writer...", bin.name);
    let alone = serve::wrk(&url, secs);
    eprintln!("  [{}] wrk {url} for {secs} s, with a writer...", bin.name);
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, writes, failed, pool) = (
            Arc::clone(&stop),
            Arc::clone(&writes),
            Arc::clone(&failed),
            Arc::clone(&pool),
        );
        let (path, dir, active) = (bin.path.clone(), dir.clone(), s.active);
        let input = commands::notify_input(&dir);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (n, bad) = one_round(&path, &dir, &pool, active, &input);
                writes.fetch_add(n, Ordering::Relaxed);
                failed.fetch_add(bad, Ordering::Relaxed);
            }
        })
    };
    let with_writer = serve::wrk(&url, secs);
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    let _ = server.stop();

    // Reloads: a fresh server, one GET, then write + GET, 100 times.
    let last: Vec<usize> = s.pending[s.pending.len() - 105..].to_vec();
    let server = Server::start(serve_cmd(&bin.path, dir));
    let _ = serve::get(&url_of(&server));
    let mut rss_after_1 = None;
    for (n, i) in last.iter().take(100).enumerate() {
        proc::run(commands::cmd(&bin.path, dir).args(["approve", &store::id(*i), "--no-session"]));
        let (status, _) = serve::get(&url_of(&server));
        assert_eq!(status, 200);
        if n == 0 {
            rss_after_1 = server.rss_kib();
        }
    }
    let rss_after_100 = server.rss_kib();
    let _ = server.stop();
    ServeUnderWrites {
        alone,
        with_writer,
        writes: writes.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        rss_after_1,
        rss_after_100,
    }
}

fn url_of(server: &Server) -> String {
    format!("{}/api/pending-tickets", server.url)
}

/// Case: `threads` writers at once, each approving its own pending tickets, `each` apiece.
/// Transitions per second over the whole, and how many failed.
pub fn concurrent(
    bin: &Bin,
    dir: &Path,
    ids: &[usize],
    threads: usize,
    each: usize,
) -> (f64, usize) {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mine: Vec<usize> = ids[t * each..(t + 1) * each].to_vec();
            let (path, dir) = (bin.path.clone(), dir.to_path_buf());
            std::thread::spawn(move || {
                mine.iter()
                    .filter(|i| {
                        proc::try_run(commands::cmd(&path, &dir).args([
                            "approve",
                            &store::id(**i),
                            "--no-session",
                        ]))
                        .is_err()
                    })
                    .count()
            })
        })
        .collect();
    let failed: usize = handles.into_iter().map(|h| h.join().expect("writer")).sum();
    let secs = start.elapsed().as_secs_f64();
    let rate = (threads * each - failed) as f64 / secs;
    (rate, failed)
}

/// CPU of a process and all its children (nginx's master and workers), from /proc.
fn tree_cpu(pid: u32) -> Duration {
    let mut total = proc::stat_cpu(pid).unwrap_or_default();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        total += tree_cpu(c);
    }
    total
}

/// CPU per request of the server `pid` under one wrk run.
fn cpu_per_request(pid: u32, url: &str, secs: u64) -> (Duration, Load) {
    let before = tree_cpu(pid);
    let load = serve::wrk(url, secs);
    let used = tree_cpu(pid).saturating_sub(before);
    let per = used / u32::try_from(load.requests.max(1)).unwrap_or(u32::MAX);
    (per, load)
}

/// nginx, installed by `scripts/bench` when it can.
pub fn nginx_path() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// nginx on 127.0.0.1 with a private configuration and prefix; stopped when dropped.
struct Nginx {
    child: Child,
    url: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(nginx: &Path, dir: &Path, body: &[u8]) -> Nginx {
    let root = dir.join("root/api");
    std::fs::create_dir_all(&root).expect("nginx root");
    std::fs::write(root.join("pending-tickets"), body).expect("static file");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 2;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n\
         keepalive_requests 1000000;\n  keepalive_timeout 60s;\n  default_type application/json;\n\
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         server {{\n    listen 127.0.0.1:{port};\n    root {d}/root;\n  }}\n}}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("nginx.conf");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: see {d}/error.log"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx { child, url }
}

/// serve's CPU per request for the 1,000-pending answer, and nginx's for the same bytes.
pub struct CpuPerRequest {
    pub serve: Duration,
    pub serve_load: Load,
    pub nginx: Option<(Duration, Load)>,
    pub bytes: usize,
}

pub fn cpu_vs_nginx(bin: &Bin, s: &Stores, b: usize, secs: u64, tmp: &Path) -> CpuPerRequest {
    let dir = &s.dirs[b];
    let server = Server::start(serve_cmd(&bin.path, dir));
    let body = pending_answer(&server.url, s.pending.len());
    let url = url_of(&server);
    eprintln!(
        "  [{}] CPU per request: wrk {url} for {secs} s...",
        bin.name
    );
    let (serve_cpu, serve_load) = cpu_per_request(server.pid(), &url, secs);
    let _ = server.stop();
    let nginx = nginx_path().map(|path| {
        let ndir = tmp.join(format!("nginx-{}", bin.name));
        std::fs::create_dir_all(&ndir).expect("nginx folder");
        let n = start_nginx(&path, &ndir, &body);
        let url = format!("{}/api/pending-tickets", n.url);
        let (status, got) = serve::get(&url);
        assert!(
            status == 200 && got == body,
            "nginx did not serve the same bytes"
        );
        eprintln!("  nginx: wrk {url} for {secs} s...");
        let r = cpu_per_request(n.child.id(), &url, secs);
        drop(n);
        r
    });
    CpuPerRequest {
        serve: serve_cpu,
        serve_load,
        nginx,
        bytes: body.len(),
    }
}
