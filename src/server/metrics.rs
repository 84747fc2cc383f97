//! `/metrics` in Prometheus' text format: counters kept in this process with atomics, and
//! gauges read from the state when scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::cache::Summary;
use crate::ticket::Status;

/// Activity of the active tickets by state, and the cost of every ticket with a known one.
#[must_use]
pub fn render_activity(
    activities: &std::collections::BTreeMap<crate::ticket::TicketId, crate::activity::Activity>,
    active: &std::collections::HashSet<crate::ticket::TicketId>,
    prices: &crate::config::PricesConfig,
) -> String {
    use crate::activity::Kind;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP plane_orch_activity Active tickets by what their session is doing."
    );
    let _ = writeln!(out, "# TYPE plane_orch_activity gauge");
    for kind in Kind::ALL {
        let n = activities
            .iter()
            .filter(|(id, a)| active.contains(*id) && a.state == kind)
            .count();
        let _ = writeln!(
            out,
            "plane_orch_activity{{state=\"{}\"}} {n}",
            kind.as_str()
        );
    }
    for flag in ["stuck", "stalled", "over_time"] {
        let n = activities
            .iter()
            .filter(|(id, a)| active.contains(*id) && a.flag(flag).is_some())
            .count();
        if flag == "stuck" {
            let _ = writeln!(
                out,
                "# HELP plane_orch_flagged Active tickets flagged by the watchdog."
            );
            let _ = writeln!(out, "# TYPE plane_orch_flagged gauge");
        }
        let _ = writeln!(out, "plane_orch_flagged{{flag=\"{flag}\"}} {n}");
    }
    // Folded from +0.0: an empty f64 sum is -0.0, which Prometheus would print as such.
    let total = activities
        .values()
        .fold(0.0_f64, |sum, a| sum + a.cost(prices).spent_usd);
    let _ = writeln!(
        out,
        "# HELP plane_orch_cost_usd_total USD spent by the sessions of the tickets with activity."
    );
    // A gauge: removing a ticket removes its cost.
    let _ = writeln!(out, "# TYPE plane_orch_cost_usd_total gauge");
    let _ = writeln!(out, "plane_orch_cost_usd_total {total}");
    out
}

/// The HTTP statuses the server answers with; anything else is counted as `other`.
const STATUSES: [u16; 16] = [
    200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 411, 413, 421, 500, 502, 503,
];

/// A counter per outcome label.
#[derive(Debug, Default)]
pub struct Outcomes {
    pub ok: AtomicU64,
    pub conflict: AtomicU64,
    pub error: AtomicU64,
}

impl Outcomes {
    /// Counts one result: success, a refusal (conflict, invalid, not found) or a failure.
    pub fn count<T>(&self, result: &anyhow::Result<T>) {
        use crate::error::Kind;
        let counter = match result {
            Ok(_) => &self.ok,
            Err(e) => match Kind::of(e) {
                Kind::Conflict | Kind::Invalid | Kind::NotFound | Kind::Config => &self.conflict,
                Kind::Plane | Kind::Session | Kind::Other => &self.error,
            },
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The server's own counters, since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; STATUSES.len()],
    requests_other: AtomicU64,
    pub approvals: Outcomes,
    pub completions: Outcomes,
    pub plane_updates: Outcomes,
    pub tickets_added: Outcomes,
    pub removals: Outcomes,
    poll_runs: AtomicU64,
    poll_errors: AtomicU64,
    poll_micros_total: AtomicU64,
    poll_micros_last: AtomicU64,
    /// Connections refused because the server was at its limit.
    pub connections_shed: AtomicU64,
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

#[allow(clippy::cast_precision_loss)] // seconds as f64 for Prometheus; exact enough
fn secs(micros: u64) -> f64 {
    micros as f64 / 1e6
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, status: u16) {
        match STATUSES.iter().position(|s| *s == status) {
            Some(i) => self.requests[i].fetch_add(1, Ordering::Relaxed),
            None => self.requests_other.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Counts one poll tick.
    pub fn poll(&self, took: Duration, ok: bool) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.poll_runs.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.poll_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.poll_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.poll_micros_last.store(micros, Ordering::Relaxed);
    }

    /// The whole exposition; `state` is `None` when the state file cannot be read.
    #[must_use]
    pub fn render(&self, state: Option<&Summary>, state_loads: u64, state_age: Duration) -> String {
        let mut out = String::new();
        // Each sample is (what follows the family's name: a suffix and/or labels, its value).
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP plane_orch_{name} {help}");
            let _ = writeln!(out, "# TYPE plane_orch_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "plane_orch_{name}{labels} {value}");
            }
        };
        let outcomes = |o: &Outcomes| {
            [("ok", &o.ok), ("refused", &o.conflict), ("error", &o.error)]
                .iter()
                .map(|(l, a)| (format!("{{outcome=\"{l}\"}}"), get(a).to_string()))
                .collect::<Vec<_>>()
        };

        if let Some(state) = state {
            let tickets: Vec<_> = Status::ALL
                .iter()
                .map(|s| (format!("{{status=\"{s}\"}}"), state.count(*s).to_string()))
                .collect();
            family(
                "tickets",
                "gauge",
                "Tickets in the state file by status.",
                &tickets,
            );
            let (sum, count) = (state.session_seconds, state.sessions);
            family(
                "session_duration_seconds",
                "summary",
                "Time from approval to completion of the tickets in the state file.",
                &[
                    ("_sum".into(), sum.to_string()),
                    ("_count".into(), count.to_string()),
                ],
            );
        }
        let state_ok = u8::from(state.is_some());
        family(
            "state_ok",
            "gauge",
            "1 when the state file could be read and parsed.",
            &[(String::new(), state_ok.to_string())],
        );
        family(
            "state_loads_total",
            "counter",
            "Times the server read and parsed the state file (it caches it while unchanged).",
            &[(String::new(), state_loads.to_string())],
        );
        family(
            "state_age_seconds",
            "gauge",
            "How long ago the counts were known to match the state file (0: at this scrape).",
            &[(String::new(), state_age.as_secs_f64().to_string())],
        );
        family(
            "connections_shed_total",
            "counter",
            "Connections refused with 503 because the server was at api.max_connections.",
            &[(String::new(), get(&self.connections_shed).to_string())],
        );
        let mut requests: Vec<_> = STATUSES
            .iter()
            .zip(&self.requests)
            .map(|(s, a)| (format!("{{code=\"{s}\"}}"), get(a).to_string()))
            .collect();
        requests.push((
            "{code=\"other\"}".into(),
            get(&self.requests_other).to_string(),
        ));
        family(
            "http_requests_total",
            "counter",
            "HTTP requests answered, by status.",
            &requests,
        );
        family(
            "approvals_total",
            "counter",
            "Approvals through the API, by outcome.",
            &outcomes(&self.approvals),
        );
        family(
            "completions_total",
            "counter",
            "Completions through the API, by outcome.",
            &outcomes(&self.completions),
        );
        family(
            "plane_updates_total",
            "counter",
            "Plane updates (update-plane) through the API, by outcome.",
            &outcomes(&self.plane_updates),
        );
        family(
            "tickets_added_total",
            "counter",
            "Tickets added through the API, by outcome.",
            &outcomes(&self.tickets_added),
        );
        family(
            "removals_total",
            "counter",
            "Tickets removed through the API, by outcome.",
            &outcomes(&self.removals),
        );
        family(
            "poll_runs_total",
            "counter",
            "Background poll ticks run (serve --poll).",
            &[(String::new(), get(&self.poll_runs).to_string())],
        );
        family(
            "poll_errors_total",
            "counter",
            "Background poll ticks that failed.",
            &[(String::new(), get(&self.poll_errors).to_string())],
        );
        family(
            "poll_duration_seconds",
            "summary",
            "Time spent in background poll ticks.",
            &[
                (
                    "_sum".into(),
                    secs(get(&self.poll_micros_total)).to_string(),
                ),
                ("_count".into(), get(&self.poll_runs).to_string()),
            ],
        );
        family(
            "poll_last_duration_seconds",
            "gauge",
            "How long the last background poll tick took.",
            &[(String::new(), secs(get(&self.poll_micros_last)).to_string())],
        );
        out
    }
}
