//! The benchmark behind `scripts/bench`: generates its data, runs each case several times
//! against the release binary (and, with `--compare-with OLD_BIN`, an older one, the two
//! taking turns in the same run), prints the tables and writes BENCHMARKS.md. Speed is
//! measured here, never in tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;

#[path = "bench/commands.rs"]
mod commands;
#[path = "bench/load.rs"]
mod load;
#[path = "../tests/common/loopback.rs"]
mod loopback;
#[path = "bench/plane.rs"]
mod plane;
#[path = "../tests/common/plane_page.rs"]
mod plane_page;
#[path = "bench/proc.rs"]
mod proc;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/serve.rs"]
mod serve;
#[path = "bench/store.rs"]
mod store;

/// One measured case.
struct Row {
    case: String,
    runs: Vec<Duration>,
    peak_rss_kib: Option<u64>,
    note: String,
}

impl Row {
    fn stats(&self) -> (Duration, Duration, Duration) {
        let mut v = self.runs.clone();
        v.sort();
        (v[v.len() / 2], v[0], v[v.len() - 1])
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

struct Bench {
    bin: PathBuf,
    dir: tempfile::TempDir,
    runs: usize,
    quick: bool,
    /// `--keep`: the stores stay on disk too, for a profiler.
    keep: bool,
    rows: Vec<Row>,
}

impl Bench {
    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// The binary with `config`, a private tmux folder and no key or log level from outside.
    fn cmd(&self, config: &Path) -> Command {
        self.cmd_of(&self.bin, config)
    }

    /// [`Bench::cmd`] for another binary.
    fn cmd_of(&self, bin: &Path, config: &Path) -> Command {
        let mut c = Command::new(bin);
        c.arg("--config").arg(config);
        c.env_remove("PLANE_API_KEY")
            .env_remove("RUST_LOG")
            .env_remove("PLANE_ORCH_API_TOKEN")
            .env("TMUX_TMPDIR", self.dir.path());
        c
    }

    fn push(&mut self, name: &str, runs: Vec<Duration>, rss: Option<u64>, note: &str) {
        let row = Row {
            case: name.into(),
            runs,
            peak_rss_kib: rss,
            note: note.into(),
        };
        let (med, min, max) = row.stats();
        eprintln!(
            "{name}: median {} (min {}, max {})",
            ms(med),
            ms(min),
            ms(max)
        );
        self.rows.push(row);
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| case | median | min | max | peak RSS | note |\n|---|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let (med, min, max) = r.stats();
        let rss = r.peak_rss_kib.map_or_else(
            || "-".to_string(),
            |k| format!("{:.1} MB", k as f64 / 1024.0),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.case,
            ms(med),
            ms(min),
            ms(max),
            rss,
            r.note
        );
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or_else(
            || "unknown".into(),
            |k| format!("{:.1} GiB", k as f64 / 1048576.0),
        );
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{cores} cores, {mem} memory, {cpu}")
}

/// One run of a command under GNU time, with the fake Plane's share of its wall time.
struct Timed {
    wall: Duration,
    /// Time the fake Plane spent answering during the run.
    fake: Duration,
    requests: u64,
    /// user + sys CPU time of the process.
    cpu: Option<Duration>,
    rss_kib: Option<u64>,
}

impl Timed {
    /// Wall time minus the fake's answering time: plane-orch's own share.
    fn own(&self) -> Duration {
        self.wall.saturating_sub(self.fake)
    }
}

fn timed(cmd: &Command, fake: &plane::FakePlane) -> Timed {
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let (busy0, req0) = fake.busy();
    let start = Instant::now();
    let out = timed
        .output()
        .expect("spawn plane-orch under /usr/bin/time");
    let wall = start.elapsed();
    let (busy1, req1) = fake.busy();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(report.path()).unwrap_or_default();
    let f: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    Timed {
        wall,
        fake: busy1.saturating_sub(busy0),
        requests: req1 - req0,
        cpu: (f.len() == 3).then(|| Duration::from_secs_f64(f[0] + f[1])),
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        rss_kib: (f.len() == 3).then(|| f[2] as u64),
    }
}

/// What a poll case found, for the targets.
struct PollOutcome {
    items: u64,
    first_own: Duration,
    /// Every second poll left the state file's mtime and bytes as they were.
    second_wrote_nothing: bool,
    requests: u64,
}

fn fmt_n(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Case 3: a first poll against a fake Plane holding `per_project` items in each of two
/// projects (one in ten triggered), then a second poll with nothing new, `runs` times each,
/// every run in a fresh data folder.
fn poll_case(b: &mut Bench, per_project: u64, runs: usize) -> PollOutcome {
    let fake = plane::FakePlane::start(per_project);
    let items = per_project * 2;
    let triggered = items / 10;
    let mut first = Vec::new();
    let mut second = Vec::new();
    let mut wrote_nothing = true;
    for run in 0..runs {
        let dir = b.dir.path().join(format!("poll-{items}-{run}"));
        std::fs::create_dir_all(&dir).expect("poll folder");
        let ids: Vec<String> = plane::PROJECTS
            .iter()
            .map(|(id, _)| format!("\"{id}\""))
            .collect();
        let config = dir.join("config.yaml");
        // The bench's Plane allows far more than 60 a minute: the rate budget must not be
        // what is measured.
        std::fs::write(
            &config,
            format!(
                "plane:\n  base_url: {}\n  web_url: https://plane.example\n  workspace_slug: acme\n  \
                 api_key_env: PLANE_API_KEY\n  project_ids: [{}]\n  timeout_secs: 60\n  \
                 rate_limit_per_minute: 100000\n\
                 state:\n  keep_done_days: 3650\n",
                fake.url,
                ids.join(", ")
            ),
        )
        .expect("poll config");
        let mut cmd = b.cmd(&config);
        cmd.arg("poll").env("PLANE_API_KEY", plane::KEY);
        let one = timed(&cmd, &fake);
        let store = dir.join("data/pending-tickets.json");
        let bytes = std::fs::read(&store).expect("the state file after the first poll");
        let pending = pending_count(&b.cmd(&config));
        assert_eq!(
            pending as u64, triggered,
            "the first poll queued {pending}, not {triggered}"
        );
        let mtime = std::fs::metadata(&store)
            .and_then(|m| m.modified())
            .expect("mtime");
        let two = timed(&cmd, &fake);
        let after = std::fs::read(&store).expect("the state file after the second poll");
        let mtime_after = std::fs::metadata(&store)
            .and_then(|m| m.modified())
            .expect("mtime");
        if after != bytes || mtime_after != mtime {
            wrote_nothing = false;
            eprintln!("the second poll ({items} items, run {run}) wrote the state file");
        }
        first.push(one);
        second.push(two);
    }
    let requests = first[0].requests;
    let n = fmt_n(items);
    let q = fmt_n(triggered);
    let pages = items.div_ceil(100);
    let note_first = format!(
        "{n} items in 2 projects ({pages} pages of 100), {q} triggered and queued; {requests} \
         requests"
    );
    let note_second = format!(
        "nothing new; state file unchanged (mtime and bytes): {}",
        if wrote_nothing { "yes" } else { "NO" }
    );
    for (label, runs, note) in [
        ("first", &first, &note_first),
        ("second", &second, &note_second),
    ] {
        let rss = runs.iter().filter_map(|t| t.rss_kib).max();
        b.push(
            &format!("poll, {label} ({n} items): wall"),
            runs.iter().map(|t| t.wall).collect(),
            rss,
            note,
        );
        b.push(
            &format!("poll, {label} ({n} items): plane-orch own (wall − fake Plane)"),
            runs.iter().map(Timed::own).collect(),
            None,
            "the fake's time answering subtracted",
        );
        b.push(
            &format!("poll, {label} ({n} items): fake Plane answering"),
            runs.iter().map(|t| t.fake).collect(),
            None,
            "summed over requests, on the fake's side",
        );
        if runs.iter().all(|t| t.cpu.is_some()) {
            b.push(
                &format!("poll, {label} ({n} items): CPU user+sys"),
                runs.iter().filter_map(|t| t.cpu).collect(),
                None,
                "of the plane-orch process (GNU time %U + %S)",
            );
        }
    }
    let med = |v: &[Timed]| {
        let mut d: Vec<Duration> = v.iter().map(Timed::own).collect();
        d.sort();
        d[d.len() / 2]
    };
    PollOutcome {
        items,
        first_own: med(&first),
        second_wrote_nothing: wrote_nothing,
        requests,
    }
}

/// One endpoint under wrk.
#[derive(Clone)]
struct ServeRow {
    /// Which binary served it.
    bin: &'static str,
    what: String,
    pending: usize,
    load: serve::Load,
    body_bytes: usize,
    rss_before_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    clean_exit: bool,
    /// How many times the server parsed the state file, from /metrics.
    loads: Option<u64>,
    /// Load started with the first request (no warm-up GET before wrk).
    cold: bool,
}

/// `plane_orch_state_loads_total` from the server's /metrics.
fn state_loads(url: &str) -> Option<u64> {
    let (status, body) = serve::get(&format!("{url}/metrics"));
    if status != 200 {
        return None;
    }
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("plane_orch_state_loads_total "))
        .and_then(|n| n.trim().parse().ok())
}

/// `serve_case` for each binary, taking turns, `rounds` times. All rows, every round.
fn serve_rounds(b: &Bench, bins: &[commands::Bin], rounds: usize, secs: u64) -> Vec<ServeRow> {
    let mut rows = Vec::new();
    for round in 0..rounds {
        for bin in bins {
            eprintln!(
                "serve figures, round {} of {rounds} [{}]",
                round + 1,
                bin.name
            );
            rows.extend(serve_case(b, bin, secs));
        }
    }
    rows
}

/// Per binary and endpoint, the round with the median requests/s.
fn median_rows(rows: &[ServeRow]) -> Vec<ServeRow> {
    let mut out: Vec<ServeRow> = Vec::new();
    for r in rows {
        let same = |o: &ServeRow| {
            o.bin == r.bin && o.what == r.what && o.pending == r.pending && o.cold == r.cold
        };
        if out.iter().any(same) {
            continue;
        }
        let mut all: Vec<&ServeRow> = rows.iter().filter(|o| same(o)).collect();
        all.sort_by(|x, y| x.load.requests_per_sec.total_cmp(&y.load.requests_per_sec));
        out.push(all[all.len() / 2].clone());
    }
    out
}

/// Case 4: `plane-orch serve` on a store of 10,000 tickets with 20 and with 1,000 pending,
/// each in its own data folder, under wrk for `secs` seconds per endpoint.
fn serve_case(b: &Bench, bin: &commands::Bin, secs: u64) -> Vec<ServeRow> {
    let mut rows = Vec::new();
    for pending in [20, 1_000] {
        let dir = b.dir.path().join(format!("serve-{}-{pending}", bin.name));
        std::fs::create_dir_all(&dir).expect("serve folder");
        let config = dir.join("config.yaml");
        std::fs::write(&config, "state:\n  keep_done_days: 3650\n").expect("serve config");
        store::write(&dir.join("data/pending-tickets.json"), 10_000, |i| {
            store::mostly_done(i, pending)
        });
        let mut cmd = b.cmd_of(&bin.path, &config);
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        let server = serve::Server::start(cmd);
        let before = server.rss_kib();
        let mut paths = vec!["/api/pending-tickets"];
        if pending == 20 {
            paths.push("/health");
            paths.push("/");
        }
        let mut measured = Vec::new();
        for path in paths {
            let url = format!("{}{path}", server.url);
            let (status, body) = serve::get(&url);
            assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
            if path == "/api/pending-tickets" {
                let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON answer");
                let n = v
                    .as_array()
                    .or_else(|| v["tickets"].as_array())
                    .map_or(0, Vec::len);
                assert_eq!(n, pending, "GET {url} gave {n} tickets, not {pending}");
            }
            eprintln!("wrk {url} for {secs} s...");
            let load = serve::wrk(&url, secs);
            eprintln!(
                "  {:.0} requests/s, p50 {}, p99 {}",
                load.requests_per_sec,
                ms(load.p50),
                ms(load.p99)
            );
            measured.push((path, load, body.len()));
        }
        let after = server.rss_kib();
        let loads = state_loads(&server.url);
        let clean = server.stop().is_some_and(|s| s.success());
        for (path, load, body_bytes) in measured {
            rows.push(ServeRow {
                bin: bin.name,
                what: format!("GET {path}"),
                pending,
                load,
                body_bytes,
                rss_before_kib: before,
                rss_after_kib: after,
                clean_exit: clean,
                loads,
                cold: false,
            });
        }
        if pending == 1_000 {
            // A restart while a dashboard is open: the load starts with the first request.
            let mut cmd = b.cmd_of(&bin.path, &config);
            cmd.args(["serve", "--bind", "127.0.0.1:0"]);
            let server = serve::Server::start(cmd);
            let before = server.rss_kib();
            let url = format!("{}/api/pending-tickets", server.url);
            eprintln!("wrk {url} from a cold start for {secs} s...");
            let load = serve::wrk(&url, secs);
            let after = server.rss_kib();
            let loads = state_loads(&server.url);
            let (_, body) = serve::get(&url);
            let clean = server.stop().is_some_and(|s| s.success());
            rows.push(ServeRow {
                bin: bin.name,
                what: "GET /api/pending-tickets, cold start".into(),
                pending,
                load,
                body_bytes: body.len(),
                rss_before_kib: before,
                rss_after_kib: after,
                clean_exit: clean,
                loads,
                cold: true,
            });
        }
    }
    rows
}

fn mb(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.1} MB", k as f64 / 1024.0))
}

fn serve_table(rows: &[ServeRow], secs: u64, rounds: usize) -> String {
    // With more than one binary, each row says which.
    let named = rows.iter().any(|r| r.bin != rows[0].bin);
    let mut out = format!(
        "`plane-orch serve` under `wrk --latency -t2 -c16 -d{secs}s` (wrk on the same machine), \
         store of 10,000 tickets; one GET (which checks the answer) before each wrk run, except \
         in the cold start row, where wrk's 16 connections are the first requests the server \
         gets{}:\n\n\
         | {}request | pending | requests/s | p50 | p99 | answer | RSS before | RSS after | \
         errors | state parsed | stopped by SIGTERM |\n\
         |{}---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        if rounds > 1 {
            format!(
                "; each row is the round with the median requests/s of {rounds} rounds, the \
                 binaries taking turns"
            )
        } else {
            String::new()
        },
        if named { "binary | " } else { "" },
        if named { "---|" } else { "" },
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {}{} | {} | {:.0} | {} | {} | {:.1} KB | {} | {} | {} | {} | {} |",
            if named {
                format!("{} | ", r.bin)
            } else {
                String::new()
            },
            r.what,
            fmt_n(r.pending as u64),
            r.load.requests_per_sec,
            ms(r.load.p50),
            ms(r.load.p99),
            r.body_bytes as f64 / 1000.0,
            mb(r.rss_before_kib),
            mb(r.rss_after_kib),
            r.load.errors,
            r.loads.map_or_else(
                || "-".into(),
                |n| format!("{n} time{}", if n == 1 { "" } else { "s" })
            ),
            if r.clean_exit {
                "cleanly"
            } else {
                "NOT cleanly"
            }
        );
    }
    out
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The tickets `list --json --status pending` prints: the documented reader, whatever the
/// state file's layout.
fn pending_count(base: &Command) -> usize {
    let mut c = Command::new(base.get_program());
    c.args(base.get_args())
        .args(["list", "--json", "--status", "pending"]);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c.stderr(Stdio::inherit()).output().expect("list --json");
    assert!(out.status.success(), "list --json failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list --json");
    v.as_array().map_or(0, Vec::len)
}

/// The targets of the poll and the serve cases kept from earlier runs.
fn steady_targets(out: &mut String, polls: &[PollOutcome], serve: &[ServeRow], all: &[ServeRow]) {
    for p in polls {
        let n = fmt_n(p.items);
        if p.items == 10_000 {
            report::target(
                out,
                &format!("first poll of {n} items, plane-orch's own time (median)"),
                &ms(p.first_own),
                "≤ 1.5 s",
                Some(p.first_own <= Duration::from_millis(1500)),
            );
        }
        report::target(
            out,
            &format!("second poll of {n} items writes nothing"),
            if p.second_wrote_nothing {
                "state file unchanged"
            } else {
                "state file written"
            },
            "unchanged mtime and bytes",
            Some(p.second_wrote_nothing),
        );
    }
    if let (Some(small), Some(big)) = (
        polls.iter().find(|p| p.items == 1_000),
        polls.iter().find(|p| p.items == 10_000),
    ) {
        let ratio = big.first_own.as_secs_f64() / small.first_own.as_secs_f64();
        report::target(
            out,
            &format!(
                "first poll, 10,000 ÷ 1,000 items (own time; {} vs {} requests)",
                big.requests, small.requests
            ),
            &format!("{ratio:.1}×"),
            "about 10× (linear)",
            Some(ratio <= 12.0),
        );
    }
    let find = |what: &str, pending: usize| {
        serve
            .iter()
            .find(|r| r.bin == ME && !r.cold && r.what == what && r.pending == pending)
    };
    for (what, pending, name, goal) in [
        (
            "GET /api/pending-tickets",
            1_000,
            "serve, GET /api/pending-tickets with 1,000 pending",
            2_136.0,
        ),
        ("GET /health", 20, "serve, GET /health", 40_000.0),
    ] {
        match find(what, pending) {
            Some(r) => report::target(
                out,
                name,
                &format!("{:.0} requests/s", r.load.requests_per_sec),
                &format!("≥ {} requests/s", fmt_n(goal as u64)),
                Some(r.load.requests_per_sec >= goal),
            ),
            None => report::target(out, name, "-", "-", None),
        }
    }
    // The largest of every round, not the median's.
    let rss = all
        .iter()
        .filter(|r| r.bin == ME && !r.cold)
        .filter_map(|r| r.rss_after_kib.max(r.rss_before_kib))
        .max();
    report::target(
        out,
        "serve, largest RSS (before or after load, warm starts)",
        &mb(rss),
        "≤ 20 MB",
        rss.map(|k| k <= 20 * 1024),
    );
}

/// The name of the binary built from this tree.
const ME: &str = "after";

struct Args {
    /// Only this case (`serve`): its figures, every binary taking turns.
    only: Option<String>,
    runs: usize,
    runs_given: bool,
    out_given: bool,
    quick: bool,
    out: PathBuf,
    bin: PathBuf,
    keep: bool,
    before: Option<PathBuf>,
}

fn args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut a = Args {
        only: None,
        runs: 15,
        runs_given: false,
        out_given: false,
        quick: false,
        out: PathBuf::from("BENCHMARKS.md"),
        bin: PathBuf::from("target/release/plane-orch"),
        keep: false,
        before: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--compare-with" => {
                a.before = Some(args.next().map(PathBuf::from).expect("--compare-with BIN"));
            }
            "--quick" => {
                a.runs = 5;
                a.quick = true;
            }
            "--runs" => {
                a.runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N");
                a.runs_given = true;
            }
            "--out" => {
                a.out = args.next().map(PathBuf::from).expect("--out FILE");
                a.out_given = true;
            }
            "--bin" => a.bin = args.next().map(PathBuf::from).expect("--bin PATH"),
            "--keep" => a.keep = true,
            "--only" => {
                let case = args.next().expect("--only CASE");
                assert!(
                    case == "serve" || case == "commands",
                    "--only takes one case: serve or commands"
                );
                a.only = Some(case);
            }
            other => {
                panic!(
                    "unknown argument {other}: use --quick, --runs N, --out FILE, --bin PATH, \
                     --keep, --compare-with OLD_BIN, --only serve|commands"
                )
            }
        }
    }
    a
}

/// Prints how long the bench has run, so a slow machine shows where the time goes.
fn stage(started: Instant, what: &str) {
    eprintln!("[{:>4.0} s] {what}", started.elapsed().as_secs_f64());
}

#[allow(clippy::too_many_lines)]
fn main() {
    let a = args();
    let started = Instant::now();
    let load_at_start = loadavg();
    let after = std::fs::canonicalize(&a.bin).expect("the release binary: run scripts/bench");
    let mut bins = Vec::new();
    if let Some(before) = &a.before {
        bins.push(commands::Bin {
            name: "before",
            path: std::fs::canonicalize(before).expect("the --compare-with binary"),
        });
    }
    bins.push(commands::Bin {
        name: ME,
        path: after.clone(),
    });
    let me = bins.len() - 1;
    let mut b = Bench {
        bin: after,
        dir: tempfile::tempdir().expect("temp dir"),
        runs: a.runs,
        quick: a.quick,
        keep: a.keep,
        rows: Vec::new(),
    };
    std::fs::write(b.config(), commands::config_yaml()).expect("config");
    let root = b.dir.path().to_path_buf();
    let runs = b.runs;
    if a.only.as_deref() == Some("commands") {
        commands_only(&a, &b, &bins, started);
        if a.keep {
            eprintln!("data kept in {}", b.dir.keep().display());
        }
        return;
    }
    if a.only.is_some() {
        serve_only(&a, &b, &bins, started, &load_at_start);
        if a.keep {
            eprintln!("data kept in {}", b.dir.keep().display());
        }
        return;
    }

    // 1. Growth: the six commands at 100 / 1,000 / 10,000 (/ 100,000) tickets, with floors.
    let mut sizes = vec![100, 1_000, 10_000];
    if !b.quick {
        sizes.push(100_000);
    }
    let mut growth = Vec::new();
    for &total in &sizes {
        stage(started, &format!("growth, {} tickets", report::n(total)));
        let pending = (total / 10).max(20).max(runs + 5);
        let r = if total >= 100_000 { runs.min(5) } else { runs };
        let s = commands::prepare(&root, &format!("growth-{total}"), &bins, total, |i| {
            store::mostly_done(i, pending)
        });
        let med = commands::measure(&bins, &s, r);
        let floors = commands::floors(&s, r);
        growth.push(report::GrowthCol {
            tickets: total,
            bytes: s.bytes,
            live: s.live_bytes.clone(),
            med,
            floors,
            runs: r,
        });
        s.remove();
    }

    let (hist, open_10k) = history_and_open(&b, &bins, started);

    // 4-6. serve under writes, concurrent transitions, CPU per request next to nginx.
    let secs = if b.quick { 3 } else { 10 };
    let concurrent_each = if b.quick { 3 } else { 6 };
    let mut served = Vec::new();
    if serve::have_wrk() {
        if load::nginx_path().is_none() {
            eprintln!("nginx is not installed: serve's CPU is not compared with a static server");
        }
        let s = commands::prepare(&root, "serve", &bins, 10_000, |i| {
            store::mostly_done(i, 1_000)
        });
        let c = commands::prepare(&root, "concurrent", &bins, 10_000, |i| {
            store::mostly_done(i, 1_000)
        });
        for (i, bin) in bins.iter().enumerate() {
            stage(started, &format!("serve CPU per request [{}]", bin.name));
            let cpu = load::cpu_vs_nginx(bin, &s, i, secs, &root);
            stage(started, &format!("serve under a writer [{}]", bin.name));
            let under_writes = load::serve_under_writes(bin, &s, i, secs);
            stage(
                started,
                &format!("16 concurrent transitions [{}]", bin.name),
            );
            let concurrent = load::concurrent(bin, &c.dirs[i], &c.pending, 16, concurrent_each);
            eprintln!(
                "  {:.0} transitions/s ({} failed)",
                concurrent.0, concurrent.1
            );
            let concurrent = Some(concurrent);
            served.push(report::Served {
                under_writes,
                cpu,
                concurrent,
            });
        }
        s.remove();
        c.remove();
    } else {
        eprintln!("wrk is not installed: the serve cases are skipped");
    }

    // 7. Polls against a fake Plane, and today's serve figures (this binary only).
    stage(started, "polls");
    let poll_runs = if b.quick { 3 } else { runs.min(7) };
    let polls = vec![
        poll_case(&mut b, 500, poll_runs),
        poll_case(&mut b, 5_000, poll_runs),
    ];
    stage(started, "serve figures");
    let all_steady = if serve::have_wrk() {
        serve_rounds(&b, &bins[me..], 1, secs)
    } else {
        Vec::new()
    };
    let steady = median_rows(&all_steady);
    stage(started, "done");

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Made by `scripts/bench{}{}` on {} ({}; load average {load_at_start} at the start, {} at \
         the end). Every figure below was measured in this one run on this one machine; \
         `before` is {}, `after` the binary built from this tree, the two taking turns run by \
         run so both meet the same load. Commands run as a user runs them, on files in the \
         page cache; wrk and the fake Plane share the cores with plane-orch.\n",
        if b.quick { " --quick" } else { "" },
        if a.before.is_some() {
            " --compare-with OLD_BIN"
        } else {
            ""
        },
        Utc::now().format("%Y-%m-%d"),
        machine(),
        loadavg(),
        a.before.as_ref().map_or_else(
            || "not measured (no `--compare-with`)".to_string(),
            |p| format!("`{}`", p.display())
        ),
    );
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let busy = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v > 0.5 * cores as f64)
    };
    // Only the start tells of other work: by the end the bench's own load is in the average.
    if busy(&load_at_start) {
        md.push_str(
            "**Other work was running on the machine** (see the load averages): the ratios \
             between figures of the same run hold better than the figures themselves; run \
             `scripts/bench` again on a quiet machine for figures to rely on.\n\n",
        );
    }
    md.push_str("## Growth with the store\n\n");
    md.push_str(&report::growth_table(&bins, &growth));
    md.push_str("\n## History\n\n");
    md.push_str(&report::history_table(&bins, &hist));
    md.push_str("\n## Open tickets\n\n");
    md.push_str(&report::open_table(&bins, hist.open, &hist.none));
    md.push('\n');
    md.push_str(&report::open_table(&bins, 10_000, &open_10k));
    if !served.is_empty() {
        md.push_str("\n## serve while the store changes\n\n");
        md.push_str(&report::served_table(
            &bins,
            &served,
            secs,
            16 * concurrent_each,
        ));
    }
    md.push_str("\n## Polls and serve (this binary)\n\n");
    md.push_str(&format!(
        "Times are wall times over {} runs (polls: {poll_runs} runs, each in a fresh data \
         folder) after one warm-up.\n\n",
        b.runs
    ));
    md.push_str(&table(&b.rows));
    md.push('\n');
    if steady.is_empty() {
        md.push_str("serve: not measured (wrk is not installed).\n");
    } else {
        md.push_str(&serve_table(&steady, secs, 1));
    }
    md.push_str(
        "\n## Targets\n\nFor the binary built here (`after`).\n\n\
         | figure | measured | target | verdict |\n|---|---:|---|---|\n",
    );
    report::targets(&mut md, me, &hist, &hist.none, &open_10k, served.get(me));
    steady_targets(&mut md, &polls, &steady, &all_steady);
    let _ = writeln!(
        md,
        "\nruns per case: {}  \nbench took: {:.0} s",
        b.runs,
        started.elapsed().as_secs_f64()
    );
    println!("{md}");
    std::fs::write(&a.out, &md).expect("write BENCHMARKS.md");
    if a.keep {
        eprintln!("data kept in {}", b.dir.keep().display());
    }
    eprintln!("wrote {}", a.out.display());
}

/// Cases 2 and 3: 1,000 open tickets alone and beside 100,000 done ones, then 10,000 open.
fn history_and_open(
    b: &Bench,
    bins: &[commands::Bin],
    started: Instant,
) -> (report::History, commands::Medians) {
    let root = b.dir.path().to_path_buf();
    let runs = b.runs;
    // History: 1,000 open alone, then with 100,000 done tickets beside them.
    let (open, history) = (1_000, 100_000);
    // The older binaries take seconds per command here: fewer runs keep the bench short.
    let hist_runs = if b.quick { runs.min(3) } else { runs.min(9) };
    stage(started, "1,000 open tickets, no history");
    let s = commands::prepare(&root, "open-1000", bins, open, store::open);
    let none = commands::measure(bins, &s, hist_runs);
    if !b.keep {
        s.remove();
    }
    stage(started, "1,000 open tickets and 100,000 done");
    let s = commands::prepare(&root, "history", bins, open + history, |i| {
        if i < open {
            store::open(i)
        } else {
            store::Status::Done
        }
    });
    let with = commands::measure(bins, &s, hist_runs);
    if !b.keep {
        s.remove();
    }
    let hist = report::History {
        none,
        with,
        history,
        open,
    };

    // 10,000 open tickets.
    stage(started, "10,000 open tickets");
    let s = commands::prepare(&root, "open-10000", bins, 10_000, store::open);
    let open_10k = commands::measure(bins, &s, runs);
    if !b.keep {
        s.remove();
    }

    (hist, open_10k)
}

/// `--only commands`: the history and open-ticket cases alone, with their targets (written
/// to `target/bench-commands.md` unless `--out` is given).
fn commands_only(a: &Args, b: &Bench, bins: &[commands::Bin], started: Instant) {
    let (hist, open_10k) = history_and_open(b, bins, started);
    let me = bins.len() - 1;
    let mut md = String::from("# command benchmarks\n\n");
    md.push_str(&report::history_table(bins, &hist));
    md.push('\n');
    md.push_str(&report::open_table(bins, hist.open, &hist.none));
    md.push('\n');
    md.push_str(&report::open_table(bins, 10_000, &open_10k));
    md.push_str("\n| figure | measured | target | verdict |\n|---|---:|---|---|\n");
    report::targets(&mut md, me, &hist, &hist.none, &open_10k, None);
    println!("{md}");
    let out = if a.out_given {
        a.out.clone()
    } else {
        PathBuf::from("target/bench-commands.md")
    };
    std::fs::write(&out, &md).expect("write the report");
}

/// `--only serve`: serve's CPU next to nginx and serve under a writer (each binary in turn),
/// then the serve figures, each binary taking turns for `--runs` rounds (3 with `--quick`).
/// Writes its own report (`target/bench-serve.md` unless `--out` is given).
fn serve_only(a: &Args, b: &Bench, bins: &[commands::Bin], started: Instant, load_at_start: &str) {
    assert!(serve::have_wrk(), "--only serve needs wrk");
    let root = b.dir.path().to_path_buf();
    let secs = if b.quick { 3 } else { 10 };
    let rounds = if a.runs_given {
        a.runs
    } else if b.quick {
        3
    } else {
        5
    };
    let me = bins.len() - 1;
    let s = commands::prepare(&root, "serve", bins, 10_000, |i| {
        store::mostly_done(i, 1_000)
    });
    let mut served = Vec::new();
    for (i, bin) in bins.iter().enumerate() {
        stage(started, &format!("serve CPU per request [{}]", bin.name));
        let cpu = load::cpu_vs_nginx(bin, &s, i, secs, &root);
        stage(started, &format!("serve under a writer [{}]", bin.name));
        let under_writes = load::serve_under_writes(bin, &s, i, secs);
        served.push(report::Served {
            under_writes,
            cpu,
            concurrent: None,
        });
    }
    s.remove();
    stage(started, "serve figures");
    let all = serve_rounds(b, bins, rounds, secs);
    let steady = median_rows(&all);
    stage(started, "done");
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# serve benchmarks\n\nMade by `scripts/bench --only serve{}` on {} ({}; load average \
         {load_at_start} at the start, {} at the end); `before` is {}.\n",
        if b.quick { " --quick" } else { "" },
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        loadavg(),
        a.before.as_ref().map_or_else(
            || "not measured (no `--compare-with`)".to_string(),
            |p| format!("`{}`", p.display())
        ),
    );
    md.push_str(&report::served_table(bins, &served, secs, 0));
    md.push('\n');
    md.push_str(&serve_table(&steady, secs, rounds));
    md.push_str(
        "\n## Targets\n\nFor the binary built here (`after`).\n\n\
         | figure | measured | target | verdict |\n|---|---:|---|---|\n",
    );
    report::serve_targets(&mut md, served.get(me));
    steady_targets(&mut md, &[], &steady, &all);
    let _ = writeln!(md, "\nbench took: {:.0} s", started.elapsed().as_secs_f64());
    println!("{md}");
    let out = if a.out_given {
        a.out.clone()
    } else {
        PathBuf::from("target/bench-serve.md")
    };
    std::fs::write(&out, &md).expect("write the report");
    eprintln!("wrote {}", out.display());
}
