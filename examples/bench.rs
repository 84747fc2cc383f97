//! The benchmark behind `scripts/bench`: generates its data, runs each case several times
//! against the release binary, prints a table (median, min, max, peak RSS) and writes
//! BENCHMARKS.md. Speed is measured here, never in tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use plane_orch::store::{State, VERSION};
use plane_orch::ticket::{
    Event, NewTicket, SessionInfo, Snapshot, Status, Ticket, TicketId, TriggerType,
};

#[path = "../tests/common/loopback.rs"]
mod loopback;
#[path = "bench/plane.rs"]
mod plane;
#[path = "../tests/common/plane_page.rs"]
mod plane_page;
#[path = "bench/serve.rs"]
mod serve;

/// The state file with every ticket left as raw JSON: the floor for a lazily parsed store.
#[derive(serde::Deserialize)]
struct LazyState<'a> {
    #[serde(borrow)]
    tickets: BTreeMap<&'a str, &'a serde_json::value::RawValue>,
}

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

/// Runs a command to its end and returns its wall time.
fn measure(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn plane-orch");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// Runs a command once under GNU time and returns its peak RSS in KiB.
fn peak_rss(cmd: &Command) -> Option<u64> {
    let report = tempfile::NamedTempFile::new().ok()?;
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    std::fs::read_to_string(report.path())
        .ok()?
        .trim()
        .parse()
        .ok()
}

const WORDS: &[&str] = &[
    "ticket",
    "session",
    "worktree",
    "branch",
    "summary",
    "review",
    "deploy",
    "cache",
    "index",
    "render",
    "parser",
    "client",
    "server",
    "timeout",
    "retry",
    "queue",
    "report",
    "export",
    "import",
    "schema",
    "migration",
    "dashboard",
    "metric",
    "login",
    "token",
    "config",
];

fn words(seed: usize, n: usize) -> String {
    (0..n)
        .map(|i| WORDS[(seed * 7 + i * 13 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A ticket that looks like one from Plane, with a history fitting its status.
fn ticket(i: usize, status: Status) -> Ticket {
    let now = plane_orch::ticket::now();
    let id = TicketId::parse(&format!("BENCH-{i}")).expect("id");
    // About the size of a real ticket: a few sentences and a short list.
    let text = format!(
        "{}.\n\n{}.\n{}.",
        words(i, 14),
        words(i + 1, 8),
        words(i + 2, 6)
    );
    let html = format!(
        "<p>{}.</p><ul><li>{}</li><li>{}</li></ul>",
        words(i, 14),
        words(i + 1, 8),
        words(i + 2, 6)
    );
    let queued = now - TimeDelta::minutes(i64::try_from(i).unwrap_or(0) + 60);
    let mut t = Ticket::new(
        NewTicket {
            id: id.clone(),
            title: format!("Fix the {} in {}", words(i, 3), words(i + 3, 2)),
            description_html: html,
            description_text: text,
            url: Some(format!("https://plane.example/acme/browse/{id}/")),
            trigger_type: if i % 3 == 0 {
                TriggerType::Label
            } else {
                TriggerType::StatusChange
            },
        },
        queued,
    );
    t.issue_id = Some(format!("00000000-0000-4000-8000-{i:012}"));
    t.project_id = Some("5fdc458d-c727-4c57-b584-4b5c0e4f30f8".into());
    t.priority = Some("medium".into());
    t.labels = vec!["claude".into(), "backend".into()];
    let mut at = queued;
    for step in [Status::Active, Status::Completed, Status::Done] {
        if status == Status::Pending
            || (step == Status::Completed && status == Status::Active)
            || (step == Status::Done && status != Status::Done)
        {
            break;
        }
        at += TimeDelta::minutes(5);
        if step == Status::Active {
            t.approved_snapshot = Some(Snapshot {
                title: Some(t.title.clone()),
                description_html: Some(t.description_html.clone()),
                description_text: Some(t.description_text().to_string()),
                url: t.url.clone(),
            });
            t.session = Some(SessionInfo {
                name: format!("plane-{id}"),
                backend: "tmux".into(),
                workdir: format!("/srv/repo/data/worktrees/{id}"),
                branch: Some(format!("claude/{}", id.as_str().to_lowercase())),
                agent_session: Some(format!("11111111-2222-4333-8444-{i:012}")),
                started_at: Some(at),
            });
            t.run_id = Some(format!("22222222-2222-4333-8444-{i:012}"));
        }
        if step == Status::Completed {
            t.summary = Some(format!("Done: {}.", words(i + 4, 12)));
        }
        t.transition(step, at, Some("bench".into()))
            .expect("transition");
    }
    t.events.push(Event {
        at,
        event: "plane_changed".into(),
        detail: Some("title changed in Plane".into()),
    });
    t
}

/// Writes a state file: `pending` pending tickets, then a mix of the other statuses.
fn write_store(path: &Path, total: usize, pending: usize) {
    let mut state = State {
        version: VERSION,
        ..State::default()
    };
    for i in 0..total {
        let status = if i < pending {
            Status::Pending
        } else {
            match i % 20 {
                0 | 1 => Status::Active,
                2..=4 => Status::Completed,
                _ => Status::Done,
            }
        };
        let t = ticket(i, status);
        state.tickets.insert(t.id.clone(), t);
    }
    plane_orch::store::Store::new(path)
        .update(|s| {
            *s = state;
            Ok(())
        })
        .expect("write store");
}

struct Bench {
    bin: PathBuf,
    dir: tempfile::TempDir,
    runs: usize,
    quick: bool,
    rows: Vec<Row>,
}

impl Bench {
    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// Measures `make(i)` for i in 0..runs, after one warm-up (`make(runs)`) whose peak RSS
    /// is taken: the page cache, not a cold disk, is what users meet.
    fn case(&mut self, name: &str, note: &str, mut make: impl FnMut(usize) -> Command) {
        let rss = peak_rss(&make(self.runs));
        let runs = (0..self.runs).map(|i| measure(&mut make(i))).collect();
        self.push(name, runs, rss, note);
    }

    /// The median of the row named `name`.
    fn median(&self, name: &str) -> Option<Duration> {
        self.rows
            .iter()
            .find(|r| r.case == name)
            .map(|r| r.stats().0)
    }

    /// The binary with `config`, a private tmux folder and no key or log level from outside.
    fn cmd(&self, config: &Path) -> Command {
        let mut c = Command::new(&self.bin);
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
        let state: State = serde_json::from_slice(&bytes).expect("state after the first poll");
        let pending = state
            .tickets
            .values()
            .filter(|t| t.status == Status::Pending)
            .count();
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
struct ServeRow {
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

/// Case 4: `plane-orch serve` on a store of 10,000 tickets with 20 and with 1,000 pending,
/// each in its own data folder, under wrk for `secs` seconds per endpoint.
fn serve_case(b: &Bench, secs: u64) -> Vec<ServeRow> {
    let mut rows = Vec::new();
    for pending in [20, 1_000] {
        let dir = b.dir.path().join(format!("serve-{pending}"));
        std::fs::create_dir_all(&dir).expect("serve folder");
        let config = dir.join("config.yaml");
        std::fs::write(&config, "state:\n  keep_done_days: 3650\n").expect("serve config");
        write_store(&dir.join("data/pending-tickets.json"), 10_000, pending);
        let mut cmd = b.cmd(&config);
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
            let mut cmd = b.cmd(&config);
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

fn serve_table(rows: &[ServeRow], secs: u64) -> String {
    let mut out = format!(
        "`plane-orch serve` under `wrk --latency -t2 -c16 -d{secs}s` (wrk on the same machine), \
         store of 10,000 tickets; one GET (which checks the answer) before each wrk run, except \
         in the cold start row, where wrk's 16 connections are the first requests the server \
         gets:\n\n\
         | request | pending | requests/s | p50 | p99 | answer | RSS before | RSS after | \
         errors | state parsed | stopped by SIGTERM |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {:.1} KB | {} | {} | {} | {} | {} |",
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

/// One line of the targets section.
fn target(out: &mut String, what: &str, figure: &str, goal: &str, met: Option<bool>) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    };
    let _ = writeln!(out, "| {what} | {figure} | {goal} | {verdict} |");
}

struct Figures<'a> {
    list_json: Option<Duration>,
    list: Option<Duration>,
    floor: Option<Duration>,
    approve: Option<Duration>,
    complete: Option<Duration>,
    /// One hook call (PreToolUse), as Claude Code makes on every tool use.
    hook: Option<Duration>,
    polls: &'a [PollOutcome],
    serve: &'a [ServeRow],
    /// The state file of the list and transition cases, in bytes.
    store_bytes: u64,
}

#[allow(clippy::too_many_lines)]
fn targets(f: &Figures) -> String {
    let mut out = String::from(
        "## Targets\n\n| figure | measured | target | verdict |\n|---|---:|---|---|\n",
    );
    target(
        &mut out,
        "a hook call (PreToolUse) on 10,000, median",
        &f.hook.map_or_else(|| "-".into(), ms),
        "< 20 ms",
        f.hook.map(|d| d < Duration::from_millis(20)),
    );
    let floor = f.floor;
    for (name, d) in [
        ("`list --json` on 10,000, median", f.list_json),
        ("`list` on 10,000, median", f.list),
    ] {
        target(
            &mut out,
            name,
            &d.map_or_else(|| "-".into(), ms),
            "≤ 30 ms",
            d.map(|d| d <= Duration::from_millis(30)),
        );
        let ratio = d
            .zip(floor)
            .map(|(d, fl)| d.as_secs_f64() / fl.as_secs_f64());
        target(
            &mut out,
            &format!("{name} ÷ parse floor"),
            &ratio.map_or_else(|| "-".into(), |r| format!("{r:.1}×")),
            "≤ 3×",
            ratio.map(|r| r <= 3.0),
        );
    }
    for (name, d) in [
        ("`approve --no-session` on 10,000, median", f.approve),
        ("`complete` on 10,000, median", f.complete),
    ] {
        target(
            &mut out,
            name,
            &d.map_or_else(|| "-".into(), ms),
            "≤ 40 ms",
            d.map(|d| d <= Duration::from_millis(40)),
        );
    }
    for p in f.polls {
        let n = fmt_n(p.items);
        if p.items == 10_000 {
            target(
                &mut out,
                &format!("first poll of {n} items, plane-orch's own time (median)"),
                &ms(p.first_own),
                "≤ 1.5 s",
                Some(p.first_own <= Duration::from_millis(1500)),
            );
        }
        target(
            &mut out,
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
        f.polls.iter().find(|p| p.items == 1_000),
        f.polls.iter().find(|p| p.items == 10_000),
    ) {
        let ratio = big.first_own.as_secs_f64() / small.first_own.as_secs_f64();
        let _ = writeln!(
            out,
            "| first poll, 10,000 ÷ 1,000 items (own time; {} vs {} requests) | {ratio:.1}× | \
             about 10× (linear) | {} |",
            big.requests,
            small.requests,
            if ratio <= 12.0 {
                "linear or better"
            } else {
                "**worse than linear**"
            }
        );
    }
    let find = |what: &str, pending: usize| {
        f.serve
            .iter()
            .find(|r| !r.cold && r.what == what && r.pending == pending)
    };
    if let Some(r) = find("GET /api/pending-tickets", 1_000) {
        target(
            &mut out,
            "serve, GET /api/pending-tickets with 1,000 pending",
            &format!("{:.0} requests/s", r.load.requests_per_sec),
            "≥ 2,000 requests/s",
            Some(r.load.requests_per_sec >= 2_000.0),
        );
        target(
            &mut out,
            "serve, same, p99 latency",
            &ms(r.load.p99),
            "≤ 20 ms",
            Some(r.load.p99 <= Duration::from_millis(20)),
        );
    } else {
        target(&mut out, "serve (wrk missing)", "-", "-", None);
    }
    for (what, pending, name) in [
        (
            "GET /api/pending-tickets",
            20,
            "serve, GET /api/pending-tickets with 20 pending",
        ),
        ("GET /health", 20, "serve, GET /health"),
        ("GET /", 20, "serve, GET / (the dashboard page)"),
    ] {
        if let Some(r) = find(what, pending) {
            target(
                &mut out,
                name,
                &format!("{:.0} requests/s", r.load.requests_per_sec),
                "≥ 20,000 requests/s",
                Some(r.load.requests_per_sec >= 20_000.0),
            );
        }
    }
    let rss = f
        .serve
        .iter()
        .filter(|r| !r.cold)
        .filter_map(|r| r.rss_after_kib.max(r.rss_before_kib))
        .max();
    if rss.is_some() {
        target(
            &mut out,
            "serve, largest RSS (before or after load, warm starts)",
            &mb(rss),
            "≤ 20 MB",
            rss.map(|k| k <= 20 * 1024),
        );
    }

    out.push_str(
        "\n### Against the old Python daemon\n\n\
         | figure | plane-orch | Python daemon | ratio |\n|---|---:|---:|---:|\n",
    );
    let ratio = |new: f64, old: f64| {
        let r = new / old;
        if r < 10.0 {
            format!("{r:.1}×")
        } else {
            format!("{r:.0}×")
        }
    };
    if let Some(r) = find("GET /api/pending-tickets", 1_000) {
        let _ = writeln!(
            out,
            "| GET /api/pending-tickets (1,000 pending), requests/s | {:.0} | about 50 | {} \
             faster |",
            r.load.requests_per_sec,
            ratio(r.load.requests_per_sec, 50.0)
        );
        let _ = writeln!(
            out,
            "| same, p50 latency | {} | about 300 ms | {} faster |",
            ms(r.load.p50),
            ratio(0.300, r.load.p50.as_secs_f64().max(1e-6))
        );
    }
    if let Some(r) = find("GET /health", 20) {
        let _ = writeln!(
            out,
            "| GET /health, requests/s | {:.0} | about 670 | {} faster |",
            r.load.requests_per_sec,
            ratio(r.load.requests_per_sec, 670.0)
        );
    }
    if rss.is_some() {
        let _ = writeln!(
            out,
            "| server RSS | {} | 64 MB | {} smaller |",
            mb(rss),
            ratio(64.0 * 1024.0, rss.unwrap_or(1) as f64)
        );
    }
    if let Some(d) = f.list_json {
        let _ = writeln!(
            out,
            "| load and filter 10,000 tickets, per command (Python: a 7.8 MB file; here: {:.1} MB) \
             | {} (`list --json`) | about 200 ms | {} faster |",
            f.store_bytes as f64 / 1_048_576.0,
            ms(d),
            ratio(0.200, d.as_secs_f64())
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

fn main() {
    let mut args = std::env::args().skip(1);
    let mut runs = 15;
    let mut quick = false;
    let mut out = PathBuf::from("BENCHMARKS.md");
    let mut bin = PathBuf::from("target/release/plane-orch");
    let mut keep = false;
    let mut before: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--compare-with" => {
                before = Some(args.next().map(PathBuf::from).expect("--compare-with BIN"));
            }
            "--quick" => {
                runs = 5;
                quick = true;
            }
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--out" => out = args.next().map(PathBuf::from).expect("--out FILE"),
            "--bin" => bin = args.next().map(PathBuf::from).expect("--bin PATH"),
            "--keep" => keep = true,
            other => {
                panic!(
                    "unknown argument {other}: use --quick, --runs N, --out FILE, --bin PATH, \
                     --keep, --compare-with OLD_BIN"
                )
            }
        }
    }
    let started = Instant::now();
    let load_at_start = loadavg();
    let bin = std::fs::canonicalize(&bin).expect("the release binary: run scripts/bench");
    if let Some(before) = before {
        compare_transitions(&before, &bin, runs);
        return;
    }
    let mut b = Bench {
        bin,
        dir: tempfile::tempdir().expect("temp dir"),
        runs,
        quick,
        rows: Vec::new(),
    };
    std::fs::write(b.config(), "state:\n  keep_done_days: 3650\n").expect("config");
    let store = b.dir.path().join("data/pending-tickets.json");
    write_store(&store, 10_000, 1_000);
    let size = std::fs::metadata(&store).expect("store").len();
    let note = format!("10,000 tickets, {:.1} MB file", size as f64 / 1_048_576.0);

    let cfg = b.config();
    let base = b.cmd(&cfg);
    let plane = |args: &[&str]| {
        let mut c = Command::new(base.get_program());
        c.args(base.get_args()).args(args);
        for (k, v) in base.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    };

    // 1. list
    b.case("list --json (10,000)", &note, |_| {
        plane(&["list", "--json"])
    });
    b.case("list (10,000)", &note, |_| plane(&["list"]));

    // 2. one transition
    b.case("approve --no-session (10,000)", &note, |i| {
        plane(&["approve", &format!("BENCH-{i}"), "--no-session"])
    });
    b.case("complete (10,000)", &note, |i| {
        plane(&["complete", &format!("BENCH-{i}"), "bench summary"])
    });

    // 2b. a hook call, as Claude Code makes one on every tool use: it must never read the
    // state file, so the queue's size must not show here.
    let fixtures = Path::new("tests/fixtures/claude-hooks");
    let transcript = b.dir.path().join("transcript.jsonl");
    let lines = std::fs::read_to_string(fixtures.join("transcript.jsonl")).expect("fixture");
    std::fs::write(&transcript, lines.repeat(50)).expect("transcript");
    let mut input: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("pre-tool-use.json")).expect("fixture"),
    )
    .expect("fixture JSON");
    input["transcript_path"] = transcript.display().to_string().into();
    let input_path = b.dir.path().join("pre-tool-use.json");
    std::fs::write(&input_path, input.to_string()).expect("hook input");
    b.case(
        "hook pre-tool-use (10,000)",
        &format!("{note}; a transcript of 100 requests"),
        |_| {
            let mut c = plane(&["hook", "pre-tool-use"]);
            c.env("PLANE_ORCH_TICKET", "BENCH-1")
                .stdin(std::fs::File::open(&input_path).expect("hook input"));
            c
        },
    );

    // 5. the parse floor
    let mut runs_floor = Vec::new();
    for _ in 0..b.runs {
        let start = Instant::now();
        let bytes = std::fs::read(&store).expect("read");
        let state: State = serde_json::from_slice(&bytes).expect("parse");
        assert_eq!(state.tickets.len(), 10_000);
        runs_floor.push(start.elapsed());
    }
    b.push(
        "parse floor: read + serde_json (in-process)",
        runs_floor,
        None,
        &note,
    );
    // What a store that parses a ticket only when it is needed could reach: the file read,
    // and the file split into tickets kept as raw JSON.
    let mut runs_read = Vec::new();
    let mut runs_raw = Vec::new();
    for _ in 0..b.runs {
        let start = Instant::now();
        let bytes = std::fs::read(&store).expect("read");
        runs_read.push(start.elapsed());
        let start = Instant::now();
        let bytes2 = std::fs::read(&store).expect("read");
        let lazy: LazyState = serde_json::from_slice(&bytes2).expect("parse");
        assert_eq!(lazy.tickets.len(), 10_000);
        runs_raw.push(start.elapsed());
        drop(bytes);
    }
    b.push("read the file only (in-process)", runs_read, None, &note);
    b.push(
        "read + split into tickets kept as raw JSON (in-process)",
        runs_raw,
        None,
        "what a store parsing tickets only when needed would pay",
    );

    // 3. poll against a fake Plane on loopback
    let poll_runs = if b.quick { 3 } else { b.runs.min(7) };
    let polls = vec![
        poll_case(&mut b, 500, poll_runs),
        poll_case(&mut b, 5_000, poll_runs),
    ];

    // 4. serve under wrk
    let secs = if b.quick { 3 } else { 10 };
    let served = if serve::have_wrk() {
        serve_case(&b, secs)
    } else {
        eprintln!("wrk is not installed: case 4 (serve) skipped");
        Vec::new()
    };

    let report = table(&b.rows);
    println!("{report}");
    let serve_report = if served.is_empty() {
        "serve: not measured (wrk is not installed).\n".to_string()
    } else {
        serve_table(&served, secs)
    };
    println!("{serve_report}");
    let goals = targets(&Figures {
        list_json: b.median("list --json (10,000)"),
        list: b.median("list (10,000)"),
        floor: b.median("parse floor: read + serde_json (in-process)"),
        approve: b.median("approve --no-session (10,000)"),
        complete: b.median("complete (10,000)"),
        hook: b.median("hook pre-tool-use (10,000)"),
        polls: &polls,
        serve: &served,
        store_bytes: size,
    });
    println!("{goals}");
    let load = loadavg();
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Made by `scripts/bench{}` on {} ({}; load average {load_at_start} at the start, {load} at the end).\n",
        if b.quick { " --quick" } else { "" },
        Utc::now().format("%Y-%m-%d"),
        machine()
    );
    let _ = writeln!(
        md,
        "Every command runs the release binary as a user would, on files in the page cache; \
         times are wall times over {} runs (polls: {poll_runs} runs, each in a fresh data \
         folder) after one warm-up. The fake Plane and wrk run on the same machine and share \
         its cores with plane-orch.\n",
        b.runs
    );
    md.push_str(&report);
    md.push('\n');
    md.push_str(&serve_report);
    md.push('\n');
    md.push_str(&goals);
    let mut extra = BTreeMap::new();
    extra.insert("runs per case", b.runs.to_string());
    extra.insert(
        "bench took",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    md.push('\n');
    for (k, v) in extra {
        let _ = writeln!(md, "{k}: {v}  ");
    }
    std::fs::write(&out, md).expect("write BENCHMARKS.md");
    if keep {
        eprintln!("data kept in {}", b.dir.keep().display());
    }
    eprintln!("wrote {}", out.display());
}

/// `--compare-with OLD_BIN`: the one-transition cases only, on two copies of the 10,000-ticket
/// store, the two binaries taking turns run by run so both meet the same machine load.
fn compare_transitions(before: &Path, after: &Path, runs: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let make = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("config.yaml"), "state:\n  keep_done_days: 3650\n").expect("config");
        write_store(&d.join("data/pending-tickets.json"), 10_000, 1_000);
        d
    };
    let (old_dir, new_dir) = (make("before"), make("after"));
    let cmd = |bin: &Path, d: &Path, args: &[&str]| {
        let mut c = Command::new(bin);
        c.arg("--config")
            .arg(d.join("config.yaml"))
            .args(args)
            .env_remove("RUST_LOG")
            .env("TMUX_TMPDIR", d);
        c
    };
    let mut table = String::from("| case | before median | after median |\n|---|---|---|\n");
    for (case, args) in [
        (
            "approve --no-session (10,000)",
            ["approve", "{id}", "--no-session"],
        ),
        ("complete (10,000)", ["complete", "{id}", "bench summary"]),
    ] {
        let (mut old, mut new) = (Vec::new(), Vec::new());
        // One warm-up each (page cache), then turns.
        for i in 0..=runs {
            let id = format!("BENCH-{i}");
            let a: Vec<&str> = args
                .iter()
                .map(|a| if *a == "{id}" { id.as_str() } else { a })
                .collect();
            let t_old = measure(&mut cmd(before, &old_dir, &a));
            let t_new = measure(&mut cmd(after, &new_dir, &a));
            if i > 0 {
                old.push(t_old);
                new.push(t_new);
            }
        }
        old.sort();
        new.sort();
        let line = format!(
            "| {case} | {} | {} |\n",
            ms(old[old.len() / 2]),
            ms(new[new.len() / 2])
        );
        eprint!("{line}");
        table.push_str(&line);
    }
    println!("{table}");
}
