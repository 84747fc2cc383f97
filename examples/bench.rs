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
                title: t.title.clone(),
                description_html: t.description_html.clone(),
                description_text: t.description_text.clone(),
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

fn main() {
    let mut args = std::env::args().skip(1);
    let mut runs = 15;
    let mut out = PathBuf::from("BENCHMARKS.md");
    let mut bin = PathBuf::from("target/release/plane-orch");
    let mut keep = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => runs = 5,
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--out" => out = args.next().map(PathBuf::from).expect("--out FILE"),
            "--bin" => bin = args.next().map(PathBuf::from).expect("--bin PATH"),
            "--keep" => keep = true,
            other => {
                panic!("unknown argument {other}: use --quick, --runs N, --out FILE, --bin PATH")
            }
        }
    }
    let bin = std::fs::canonicalize(&bin).expect("the release binary: run scripts/bench");
    let mut b = Bench {
        bin,
        dir: tempfile::tempdir().expect("temp dir"),
        runs,
        rows: Vec::new(),
    };
    std::fs::write(b.config(), "state:\n  keep_done_days: 3650\n").expect("config");
    let store = b.dir.path().join("data/pending-tickets.json");
    write_store(&store, 10_000, 1_000);
    let size = std::fs::metadata(&store).expect("store").len();
    let note = format!("10,000 tickets, {:.1} MB file", size as f64 / 1_048_576.0);

    let bin = b.bin.clone();
    let cfg = b.config();
    let plane = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.arg("--config").arg(&cfg).args(args);
        c.env_remove("PLANE_API_KEY").env_remove("RUST_LOG");
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

    let report = table(&b.rows);
    println!("{report}");
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Made by `scripts/bench` on {} ({}).\n",
        Utc::now().format("%Y-%m-%d"),
        machine()
    );
    md.push_str(&report);
    let mut extra = BTreeMap::new();
    extra.insert("runs per case", b.runs.to_string());
    for (k, v) in extra {
        let _ = writeln!(md, "\n{k}: {v}");
    }
    std::fs::write(&out, md).expect("write BENCHMARKS.md");
    if keep {
        eprintln!("data kept in {}", b.dir.keep().display());
    }
    eprintln!("wrote {}", out.display());
}
