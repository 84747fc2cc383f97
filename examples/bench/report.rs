//! The tables of BENCHMARKS.md for the growth, history, open-store, serve-under-writes,
//! concurrency and CPU-per-request cases, and their targets.

use std::fmt::Write as _;
use std::time::Duration;

use super::commands::{Bin, Floors, Medians, COMMANDS};
use super::load::{CpuPerRequest, ServeUnderWrites};
use super::proc::Sample;

pub fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn cell(s: Sample) -> String {
    format!("{} ({} wall)", ms(s.cpu), ms(s.wall))
}

pub fn n(v: usize) -> String {
    super::fmt_n(v as u64)
}

fn mib(bytes: u64) -> String {
    let v = bytes as f64 / 1_048_576.0;
    format!("{v:.1} MiB")
}

/// One store size of the growth table.
pub struct GrowthCol {
    pub tickets: usize,
    pub bytes: u64,
    /// Each binary's state file after its first write.
    pub live: Vec<u64>,
    pub med: Medians,
    pub floors: Floors,
    pub runs: usize,
}

pub fn growth_table(bins: &[Bin], cols: &[GrowthCol]) -> String {
    let mut out = String::from(
        "CPU (user + system of the command's process) and, in brackets, wall time; medians. \
         Each store holds the given number of tickets, a tenth of them pending (at least 20), \
         the rest 10 % active, 15 % completed, 75 % done, all in the one file as it was written \
         before any change of layout; every binary has its own copy and made one write \
         before timing.\n\n| command | binary |",
    );
    for c in cols {
        let _ = write!(out, " {} tickets |", n(c.tickets));
    }
    out.push_str("\n|---|---|");
    for _ in cols {
        out.push_str("---:|");
    }
    out.push('\n');
    for (ci, name) in COMMANDS.iter().enumerate() {
        for (bi, b) in bins.iter().enumerate() {
            let _ = write!(out, "| `{name}` | {} |", b.name);
            for c in cols {
                let _ = write!(out, " {} |", cell(c.med[ci][bi]));
            }
            out.push('\n');
        }
    }
    out.push_str("| floor: `cat` of the file | - |");
    for c in cols {
        let _ = write!(out, " {} |", cell(c.floors.cat));
    }
    out.push_str(
        "\n| floor: serde_json decode of the file into a `Value` (in-process, wall) | - |",
    );
    for c in cols {
        let _ = write!(out, " {} |", ms(c.floors.parse));
    }
    out.push_str("\n| floor: write + fsync + rename of a file that size (in-process, wall) | - |");
    for c in cols {
        let _ = write!(out, " {} |", ms(c.floors.write));
    }
    out.push_str("\n| the generated file | - |");
    for c in cols {
        let _ = write!(out, " {} |", mib(c.bytes));
    }
    for (bi, b) in bins.iter().enumerate() {
        let _ = write!(out, "\n| state file after the first write | {} |", b.name);
        for c in cols {
            let _ = write!(out, " {} |", mib(c.live[bi]));
        }
    }
    out.push_str("\n| runs per command (after one warm-up) | - |");
    for c in cols {
        let _ = write!(out, " {} |", c.runs);
    }
    out.push('\n');
    out
}

/// The same commands with and without history.
pub struct History {
    pub none: Medians,
    pub with: Medians,
    pub history: usize,
    pub open: usize,
}

pub fn history_table(bins: &[Bin], h: &History) -> String {
    let mut out = format!(
        "The same six commands on {} open tickets (half pending, a quarter active, a quarter \
         completed) with no history, and with {} done tickets of history beside them; CPU \
         (wall) medians; ratio = with ÷ without.\n\n\
         | command | binary | no history | with {} done | ratio CPU | ratio wall |\n\
         |---|---|---:|---:|---:|---:|\n",
        n(h.open),
        n(h.history),
        n(h.history)
    );
    for (ci, name) in COMMANDS.iter().enumerate() {
        for (bi, b) in bins.iter().enumerate() {
            let (a, w) = (h.none[ci][bi], h.with[ci][bi]);
            let _ = writeln!(
                out,
                "| `{name}` | {} | {} | {} | {:.2}× | {:.2}× |",
                b.name,
                cell(a),
                cell(w),
                ratio(w.cpu, a.cpu),
                ratio(w.wall, a.wall)
            );
        }
    }
    out
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

pub fn open_table(bins: &[Bin], open: usize, med: &Medians) -> String {
    let mut out = format!(
        "The six commands on {} open tickets and no history (half pending, a quarter active, \
         a quarter completed); CPU (wall) medians.\n\n| command |",
        n(open)
    );
    for b in bins {
        let _ = write!(out, " {} |", b.name);
    }
    out.push_str("\n|---|");
    for _ in bins {
        out.push_str("---:|");
    }
    out.push('\n');
    for (ci, name) in COMMANDS.iter().enumerate() {
        let _ = write!(out, "| `{name}` |");
        for m in &med[ci] {
            let _ = write!(out, " {} |", cell(*m));
        }
        out.push('\n');
    }
    out
}

/// What the serve, concurrency and CPU cases found for one binary.
pub struct Served {
    pub under_writes: ServeUnderWrites,
    pub cpu: CpuPerRequest,
    /// Transitions per second with 16 writers at once, and failures (`None`: not measured).
    pub concurrent: Option<(f64, usize)>,
}

fn load_cells(l: &super::serve::Load) -> String {
    format!(
        "{:.0} | {} | {} | {} | {}",
        l.requests_per_sec,
        ms(l.p50),
        ms(l.p99),
        l.timeouts,
        l.errors
    )
}

pub fn served_table(bins: &[Bin], served: &[Served], secs: u64, concurrent: usize) -> String {
    let mut out = format!(
        "`serve` on 10,000 tickets (1,000 pending), `wrk --latency -t2 -c16 -d{secs}s` on \
         GET /api/pending-tickets, first alone, then with a CLI writer running back to back \
         in another thread (approve, complete, a Notification hook call, again and again).\n\n\
         | binary | writer | requests/s | p50 | p99 | timeouts | errors | CLI commands run (failed) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for (b, s) in bins.iter().zip(served) {
        let u = &s.under_writes;
        let _ = writeln!(out, "| {} | none | {} | - |", b.name, load_cells(&u.alone));
        let _ = writeln!(
            out,
            "| {} | running | {} | {} ({}) |",
            b.name,
            load_cells(&u.with_writer),
            u.writes,
            u.failed
        );
    }
    out.push_str(
        "\nserve's RSS after reloads (each forced by a transition, then one GET), 16 \
         concurrent transitions on 10,000 tickets, and CPU per request of the 1,000-pending \
         answer next to nginx serving the same bytes as a static file (CPU from /proc/PID/stat \
         of each server, before and after the same wrk run):\n\n\
         | binary | RSS after 1 reload | after 100 | ratio | transitions/s (16 at once) | \
         failed | serve CPU/request | nginx CPU/request | ratio | requests/s serve, nginx | answer |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (b, s) in bins.iter().zip(served) {
        let u = &s.under_writes;
        let r = match (u.rss_after_1, u.rss_after_100) {
            (Some(a), Some(z)) => format!("{:.2}×", z as f64 / a as f64),
            _ => "-".into(),
        };
        let (ng, nr, nrate) = s.cpu.nginx.as_ref().map_or_else(
            || {
                (
                    "not installed".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                )
            },
            |(d, l)| {
                (
                    us(*d),
                    format!("{:.2}×", ratio(s.cpu.serve, *d)),
                    format!("{:.0}", l.requests_per_sec),
                )
            },
        );
        let (rate, failed) = s.concurrent.map_or_else(
            || ("not run".to_string(), "-".to_string()),
            |(rate, failed)| (format!("{rate:.0}"), format!("{failed} of {concurrent}")),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {r} | {rate} | {failed} | {} | {ng} | {nr} | {:.0}, {nrate} | {:.2} MB |",
            b.name,
            super::mb(u.rss_after_1),
            super::mb(u.rss_after_100),
            us(s.cpu.serve),
            s.cpu.serve_load.requests_per_sec,
            s.cpu.bytes as f64 / 1e6
        );
    }
    out
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// One line of the targets section.
pub fn target(out: &mut String, what: &str, figure: &str, goal: &str, met: Option<bool>) {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    };
    let _ = writeln!(out, "| {what} | {figure} | {goal} | {verdict} |");
}

/// The targets for the binary `b` (the one built here).
pub fn targets(
    out: &mut String,
    b: usize,
    h: &History,
    open_1k: &Medians,
    open_10k: &Medians,
    served: Option<&Served>,
) {
    for (ci, name) in COMMANDS.iter().enumerate() {
        let (a, w) = (h.none[ci][b], h.with[ci][b]);
        let r = ratio(w.cpu, a.cpu);
        target(
            out,
            &format!(
                "`{name}` with {} done + {} open ÷ {} open alone (CPU; wall {:.2}×)",
                n(h.history),
                n(h.open),
                n(h.open),
                ratio(w.wall, a.wall)
            ),
            &format!("{r:.2}×"),
            "≤ 1.5×",
            Some(r <= 1.5),
        );
    }
    let wall = |m: &Medians, cmd: &str| {
        let ci = COMMANDS.iter().position(|c| *c == cmd).expect("command");
        m[ci][b].wall
    };
    for (m, open, cmd, limit) in [
        (open_1k, 1_000, "list", 10),
        (open_1k, 1_000, "approve --no-session", 15),
        (open_1k, 1_000, "complete", 15),
        (open_10k, 10_000, "list", 30),
        (open_10k, 10_000, "approve --no-session", 40),
        (open_10k, 10_000, "complete", 40),
        (open_10k, 10_000, "show ID", 10),
    ] {
        let d = wall(m, cmd);
        target(
            out,
            &format!("`{cmd}` on {} open tickets, wall median", n(open)),
            &ms(d),
            &format!("≤ {limit} ms"),
            Some(d <= Duration::from_millis(limit)),
        );
    }
    serve_targets(out, served);
}

/// The targets of serve under a writer, of concurrent transitions and of serve's CPU.
pub fn serve_targets(out: &mut String, served: Option<&Served>) {
    let Some(s) = served else {
        target(out, "serve under a writer (wrk missing)", "-", "-", None);
        return;
    };
    let u = &s.under_writes;
    let half = u.with_writer.requests_per_sec >= u.alone.requests_per_sec / 2.0;
    target(
        out,
        "serve, 10,000 tickets, GET /api/pending-tickets with a writer ÷ without",
        &format!(
            "{:.0} ÷ {:.0} requests/s",
            u.with_writer.requests_per_sec, u.alone.requests_per_sec
        ),
        "≥ ½",
        Some(half),
    );
    target(
        out,
        "same, with the writer: p99",
        &ms(u.with_writer.p99),
        "≤ 50 ms",
        Some(u.with_writer.p99 <= Duration::from_millis(50)),
    );
    target(
        out,
        "same, with the writer: timeouts",
        &u.with_writer.timeouts.to_string(),
        "none",
        Some(u.with_writer.timeouts == 0),
    );
    if let (Some(a), Some(z)) = (u.rss_after_1, u.rss_after_100) {
        target(
            out,
            "serve RSS after 100 reloads ÷ after 1",
            &format!("{} ÷ {}", super::mb(Some(z)), super::mb(Some(a))),
            "≤ 2×",
            Some(z <= 2 * a),
        );
    }
    if let Some((rate, failed)) = s.concurrent {
        target(
            out,
            "16 concurrent transitions on 10,000 tickets",
            &format!("{rate:.0} per second ({failed} failed)"),
            "≥ 100 per second",
            Some(rate >= 100.0 && failed == 0),
        );
    }
    match &s.cpu.nginx {
        Some((d, _)) => {
            let r = ratio(s.cpu.serve, *d);
            target(
                out,
                "serve CPU per request ÷ nginx's, 1,000-pending answer",
                &format!("{} ÷ {} = {r:.2}×", us(s.cpu.serve), us(*d)),
                "≤ 1.2×",
                Some(r <= 1.2),
            );
        }
        None => target(
            out,
            "serve CPU per request ÷ nginx's",
            "nginx missing",
            "≤ 1.2×",
            None,
        ),
    }
}
