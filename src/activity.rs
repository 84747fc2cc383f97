//! What each session is doing and what it has cost, from Claude Code's own hooks.
//!
//! Hooks fire on every tool call, so this is kept out of the state file: one small JSON file
//! per ticket in a folder beside it (`pending-tickets.json.activity/<ID>.json`), replaced
//! atomically (rename, without waiting for an fsync) under a lock of its own (`<ID>.lock`),
//! held for microseconds. A hook never
//! reads or waits on the state file, and readers (`list`, `show`, the API) merge these files
//! into what they show.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::PricesConfig;
use crate::ticket::{now, TicketId};

/// How many activity changes a ticket keeps.
const HISTORY: usize = 50;
/// How many characters of Claude's text an activity keeps.
const MAX_TEXT: usize = 300;

/// What the session is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The session is up; Claude Code has not said it started (a trust or login screen?).
    Starting,
    /// Claude is working (a tool in use, or thinking).
    Working,
    /// Claude waits for the person: a question, a permission prompt, or the budget.
    Waiting,
    /// The turn ended.
    Idle,
    /// Stopped by a rate or usage limit.
    Limit,
    /// Claude Code ended.
    Ended,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Starting,
        Kind::Working,
        Kind::Waiting,
        Kind::Idle,
        Kind::Limit,
        Kind::Ended,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Starting => "starting",
            Kind::Working => "working",
            Kind::Waiting => "waiting",
            Kind::Idle => "idle",
            Kind::Limit => "limit",
            Kind::Ended => "ended",
        }
    }
}

/// A watchdog's flag: `stuck` (never started), `stalled` (no hook event for too long),
/// `over_time` (running longer than allowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub flag: String,
    pub at: DateTime<Utc>,
    pub detail: String,
    /// The pane's last lines, for `stuck`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
}

/// One change of activity, or a supervision event (budget, flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Tokens of one kind or another, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Tokens {
    fn add(&mut self, o: &Tokens) {
        self.input += o.input;
        self.output += o.output;
        self.cache_read += o.cache_read;
        self.cache_write += o.cache_write;
    }

    fn sub(&mut self, o: &Tokens) {
        self.input = self.input.saturating_sub(o.input);
        self.output = self.output.saturating_sub(o.output);
        self.cache_read = self.cache_read.saturating_sub(o.cache_read);
        self.cache_write = self.cache_write.saturating_sub(o.cache_write);
    }

    #[allow(clippy::cast_precision_loss)] // token counts fit an f64 exactly enough
    fn usd(&self, p: crate::config::Price) -> f64 {
        (self.input as f64 * p.input
            + self.output as f64 * p.output
            + self.cache_write as f64 * p.cache_write
            + self.cache_read as f64 * p.cache_read)
            / 1e6
    }
}

/// What one Claude Code session (one conversation id) has used, read from its transcript.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionCost {
    pub transcript: Option<String>,
    /// Bytes of the transcript already counted (whole lines only).
    #[serde(default)]
    pub offset: u64,
    /// Tokens by model.
    #[serde(default)]
    pub models: BTreeMap<String, Tokens>,
    /// The latest request ids counted, with what each added: one request spans several
    /// transcript lines, and is counted once (its last line's usage).
    #[serde(default)]
    pub recent: Vec<(String, String, Tokens)>,
    /// Claude Code's own total for the session, from the status line.
    #[serde(default)]
    pub reported_usd: Option<f64>,
}

/// Everything known about a ticket's session beyond the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub state: Kind,
    pub since: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// The tool in use while working, e.g. `Bash(npm test)`.
    #[serde(default)]
    pub tool: Option<String>,
    /// Claude's question (waiting), the last message's first line (idle), the error (limit),
    /// the reason (ended).
    #[serde(default)]
    pub message: Option<String>,
    /// What is waited for: `permission_prompt`, `idle_prompt`, `budget`, `over_time`, ...
    #[serde(default)]
    pub kind: Option<String>,
    /// When a limit resets, when Claude Code said.
    #[serde(default)]
    pub reset_at: Option<String>,
    /// The ticket's own budget (approve --budget, `budget`); else `automation.budget_usd`.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// The budget's 80 % warning was given (for the current budget).
    #[serde(default)]
    pub budget_warned: bool,
    #[serde(default)]
    pub flags: Vec<Flag>,
    #[serde(default)]
    pub history: Vec<Entry>,
    /// Cost by Claude Code session id; restarts add up.
    #[serde(default)]
    pub sessions: BTreeMap<String, SessionCost>,
    /// Supervision events not yet copied into the ticket's audit trail (the next poll tick
    /// copies them, so notifications see them; hooks never write the state file).
    #[serde(default)]
    pub notices: Vec<Entry>,
}

/// A ticket's cost, summed over its sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    pub tokens: Tokens,
    /// USD from the transcripts at the configured prices (models without a price count 0).
    pub usd: f64,
    /// Claude Code's own figure from the status line, where it gave one.
    pub claude_reported_usd: Option<f64>,
    /// What the budget is checked against: the larger of the two.
    pub spent_usd: f64,
    /// Models seen with no price in the config: their tokens are counted, not priced.
    pub unpriced_models: Vec<String>,
    pub by_model: BTreeMap<String, Tokens>,
    pub sessions: usize,
    pub prices_date: String,
}

impl Activity {
    /// A session just started.
    #[must_use]
    pub fn starting(at: DateTime<Utc>) -> Activity {
        let mut a = Activity {
            state: Kind::Starting,
            since: at,
            last_activity_at: at,
            tool: None,
            message: None,
            kind: None,
            reset_at: None,
            budget_usd: None,
            budget_warned: false,
            flags: Vec::new(),
            history: Vec::new(),
            sessions: BTreeMap::new(),
            notices: Vec::new(),
        };
        a.log(at, "starting", None);
        a
    }

    /// Appends to the history, keeping the latest [`HISTORY`] entries.
    pub fn log(&mut self, at: DateTime<Utc>, event: &str, detail: Option<String>) {
        self.history.push(Entry {
            at,
            event: event.to_string(),
            detail,
        });
        if self.history.len() > HISTORY {
            let extra = self.history.len() - HISTORY;
            self.history.drain(..extra);
        }
    }

    /// Moves to `state`; `since` changes only when the state does. Activity clears the
    /// `stuck` and `stalled` flags.
    pub fn set(&mut self, at: DateTime<Utc>, state: Kind, detail: Option<String>) {
        self.last_activity_at = at;
        let cleared: Vec<String> = self
            .flags
            .iter()
            .filter(|f| f.flag != "over_time")
            .map(|f| f.flag.clone())
            .collect();
        if !cleared.is_empty() {
            self.flags.retain(|f| f.flag == "over_time");
            for f in cleared {
                self.log(at, &format!("{f}_cleared"), Some("activity resumed".into()));
            }
        }
        if self.state != state {
            self.state = state;
            self.since = at;
            self.log(at, state.as_str(), detail);
        }
    }

    /// The flag named `flag`, if raised.
    #[must_use]
    pub fn flag(&self, flag: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.flag == flag)
    }

    /// Whether the session waits because its budget is used up.
    #[must_use]
    pub fn budget_hold(&self) -> bool {
        self.state == Kind::Waiting && self.kind.as_deref() == Some("budget")
    }

    /// The budget that applies: the ticket's own, else the configured default.
    #[must_use]
    pub fn budget(&self, default: Option<f64>) -> Option<f64> {
        self.budget_usd.or(default)
    }

    /// The cost summed over every session.
    #[must_use]
    pub fn cost(&self, prices: &PricesConfig) -> Cost {
        let mut cost = Cost {
            prices_date: prices.date.clone(),
            sessions: self.sessions.len(),
            ..Cost::default()
        };
        let mut reported_any = false;
        for s in self.sessions.values() {
            let mut usd = 0.0;
            for (model, t) in &s.models {
                cost.tokens.add(t);
                cost.by_model.entry(model.clone()).or_default().add(t);
                match prices.of(model) {
                    Some(p) => usd += t.usd(p),
                    None => {
                        if !cost.unpriced_models.contains(model) {
                            cost.unpriced_models.push(model.clone());
                        }
                    }
                }
            }
            cost.usd += usd;
            let reported = s.reported_usd.unwrap_or(0.0);
            if s.reported_usd.is_some() {
                reported_any = true;
                *cost.claude_reported_usd.get_or_insert(0.0) += reported;
            }
            cost.spent_usd += usd.max(reported);
        }
        if !reported_any {
            cost.claude_reported_usd = None;
        }
        cost
    }
}

// ---- the files ----------------------------------------------------------------------------

/// The folder of activity files beside the state file.
#[derive(Debug, Clone)]
pub struct ActivityStore {
    dir: PathBuf,
}

/// A held lock on one ticket's activity; released when dropped.
struct Held(File);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(&self.0);
    }
}

impl ActivityStore {
    /// The activity folder of the state file at `state_path`.
    #[must_use]
    pub fn for_state(state_path: &Path) -> ActivityStore {
        let mut name = state_path.file_name().unwrap_or_default().to_os_string();
        name.push(".activity");
        ActivityStore {
            dir: state_path.with_file_name(name),
        }
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &TicketId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// One ticket's activity; `None` when it has none (or the file is damaged: activity is
    /// advisory, and a damaged file is replaced at the next event).
    #[must_use]
    pub fn load(&self, id: &TicketId) -> Option<Activity> {
        let bytes = fs::read(self.path(id)).ok()?;
        serde_json::from_slice(&bytes)
            .inspect_err(|e| log::warn!("{}: ignored: {e}", self.path(id).display()))
            .ok()
    }

    /// Every ticket's activity.
    #[must_use]
    pub fn load_all(&self) -> BTreeMap<TicketId, Activity> {
        let mut out = BTreeMap::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let Ok(id) = TicketId::parse(stem) else {
                continue;
            };
            if let Some(a) = self.load(&id) {
                out.insert(id, a);
            }
        }
        out
    }

    /// A fingerprint of every activity file (names, sizes and times), so cached answers that
    /// show activity are made again when any changes.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        let mut parts: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some(format!(
                    "{}:{}:{}.{}",
                    e.file_name().to_string_lossy(),
                    m.size(),
                    m.mtime(),
                    m.mtime_nsec()
                ))
            })
            .collect();
        parts.sort();
        parts.join(",")
    }

    fn lock(&self, id: &TicketId) -> Result<Held> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the folder {}", self.dir.display()))?;
        let path = self.dir.join(format!("{id}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        fs2::FileExt::lock_exclusive(&file)
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(Held(file))
    }

    /// Changes one ticket's activity under its lock; `change` gets `None` when there is none
    /// yet and returns the activity to keep (`None`: keep nothing new). Writes only when it
    /// changed.
    ///
    /// # Errors
    /// The folder or the file cannot be written.
    pub fn update<T>(
        &self,
        id: &TicketId,
        change: impl FnOnce(&mut Option<Activity>) -> T,
    ) -> Result<T> {
        let _held = self.lock(id)?;
        let old = self.load(id);
        let mut new = old.clone();
        let out = change(&mut new);
        if new != old {
            if let Some(a) = &new {
                let bytes = serde_json::to_vec(a)?;
                // Volatile: replaced at every tool call and rebuilt from the hooks and the
                // transcript, so atomic is enough and the fsync is not waited for (the state
                // file, which holds the budget, stays fully durable).
                crate::session::claude::write_atomic_volatile(&self.path(id), &bytes)?;
            }
        }
        Ok(out)
    }

    /// Drops a ticket's activity (the ticket left the queue).
    pub fn remove(&self, id: &TicketId) {
        let _ = fs::remove_file(self.path(id));
        let _ = fs::remove_file(self.dir.join(format!("{id}.lock")));
    }
}

// ---- transcripts --------------------------------------------------------------------------

#[derive(Deserialize)]
struct Line {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, rename = "requestId")]
    request_id: Option<String>,
    #[serde(default)]
    message: Option<LineMessage>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
}

/// How many request ids a session remembers to count each once.
const RECENT: usize = 64;

impl SessionCost {
    /// Reads what the transcript gained since the last call (whole lines only) and counts
    /// each request once: the lines of one request repeat its usage, so a later line of the
    /// same request replaces what an earlier one added.
    ///
    /// # Errors
    /// The transcript cannot be read.
    pub fn ingest(&mut self, transcript: &Path) -> Result<()> {
        let shown = transcript.display().to_string();
        if self.transcript.as_deref() != Some(shown.as_str()) {
            self.transcript = Some(shown);
            self.offset = 0;
        }
        let mut f = match File::open(transcript) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", transcript.display()))
            }
        };
        let len = f.metadata()?.len();
        if len < self.offset {
            // Rewritten from the start: count it again.
            self.offset = 0;
            self.models.clear();
            self.recent.clear();
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        let Some(end) = memchr::memrchr(b'\n', &buf) else {
            return Ok(());
        };
        for line in buf[..end].split(|b| *b == b'\n') {
            self.count_line(line);
        }
        self.offset += end as u64 + 1;
        Ok(())
    }

    fn count_line(&mut self, line: &[u8]) {
        // Cheap test first: most lines are not assistant lines with usage.
        if memchr::memmem::find(line, b"\"usage\"").is_none() {
            return;
        }
        let Ok(l) = serde_json::from_slice::<Line>(line) else {
            return;
        };
        if l.kind.as_deref() != Some("assistant") {
            return;
        }
        let Some(msg) = l.message else { return };
        let Some(u) = msg.usage else { return };
        let model = msg.model.unwrap_or_else(|| "unknown".into());
        let tokens = Tokens {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens,
            cache_write: u.cache_creation_input_tokens,
        };
        if let Some(req) = l.request_id {
            if let Some(pos) = self.recent.iter().position(|(r, _, _)| *r == req) {
                let (_, old_model, old) = self.recent.remove(pos);
                if let Some(t) = self.models.get_mut(&old_model) {
                    t.sub(&old);
                }
            }
            self.recent.push((req, model.clone(), tokens));
            if self.recent.len() > RECENT {
                self.recent.remove(0);
            }
        }
        self.models.entry(model).or_default().add(&tokens);
    }
}

// ---- text ---------------------------------------------------------------------------------

/// Claude's text made safe to print and cut: escape sequences removed, every other control
/// made inert by [`crate::term`] (the one place that decides how), on one line unless
/// `lines`, trimmed, and cut to `max` characters.
#[must_use]
pub fn clip(text: &str, lines: bool, max: usize) -> String {
    let text = strip_ansi_escapes::strip_str(text);
    let out = if lines {
        crate::term::inert_lines(&text)
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        crate::term::inert(&text).trim().to_string()
    };
    if out.chars().count() > max {
        out.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    } else {
        out
    }
}

/// The first non-empty line of `text`, made inert.
#[must_use]
pub fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    clip(line, false, MAX_TEXT)
}

/// Claude's text for an activity, made inert and cut.
#[must_use]
pub fn text(text: &str) -> String {
    clip(text, false, MAX_TEXT)
}

// ---- what a person reads ------------------------------------------------------------------

/// A duration as a person reads it: `42s`, `5m`, `3h`, `2d`.
#[must_use]
pub fn age(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The STATE column of `list`: `working 3m`, `waiting 12m: "..."`, `idle`, `limit until
/// 14:00`, `stalled 25m`, `stuck`, with the spend (`$1.84/5.00`) after it.
#[must_use]
pub fn state_column(a: &Activity, cost: &Cost, budget: Option<f64>, at: DateTime<Utc>) -> String {
    let mut out = if a.flag("stuck").is_some() {
        "stuck".to_string()
    } else if let Some(f) = a.flag("stalled") {
        format!("stalled {}", age(at - f.at.min(a.last_activity_at)))
    } else {
        let since = age(at - a.since);
        match a.state {
            Kind::Starting => format!("starting {since}"),
            Kind::Working => format!("working {since}"),
            Kind::Waiting => {
                let what = match a.kind.as_deref() {
                    Some("budget") => "budget reached".to_string(),
                    _ => a.message.clone().unwrap_or_default(),
                };
                format!("waiting {since}: \"{}\"", clip(&what, false, 40))
            }
            Kind::Idle => "idle".to_string(),
            Kind::Limit => match &a.reset_at {
                Some(r) => format!("limit until {r}"),
                None => "limit".to_string(),
            },
            Kind::Ended => "ended".to_string(),
        }
    };
    if a.flag("over_time").is_some() {
        out.push_str(" (over time)");
    }
    match budget {
        Some(b) => out.push_str(&format!(" ${:.2}/{b:.2}", cost.spent_usd)),
        None if cost.spent_usd > 0.0 => out.push_str(&format!(" ${:.2}", cost.spent_usd)),
        None => {}
    }
    out
}

// ---- events a notifier can act on ---------------------------------------------------------

/// A supervision event worth telling a person about.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The session waits for the person.
    Waiting { message: String },
    /// Still starting after `watch.start_seconds`: the pane's last lines say why.
    Stuck { screen: String },
    /// Working, but no hook event for `watch.stall_minutes`.
    Stalled { minutes: f64 },
    /// Running longer than `watch.max_session_minutes`.
    OverTime { minutes: f64 },
    /// 80 % of the budget spent.
    BudgetWarning { spent: f64, budget: f64 },
    /// The budget is spent: the agent was interrupted.
    BudgetReached { spent: f64, budget: f64 },
}

impl Notice {
    /// The event's name in the ticket's audit trail (what notifications read) and its detail.
    #[must_use]
    pub fn event(&self) -> (&'static str, String) {
        match self {
            Notice::Waiting { message } => ("waiting", message.clone()),
            Notice::Stuck { screen } => (
                "stuck",
                format!(
                    "stuck before start; the pane shows: {}",
                    clip(screen, false, 300)
                ),
            ),
            Notice::Stalled { minutes } => (
                "stalled",
                format!("no hook event for {minutes:.0} minutes while working"),
            ),
            Notice::OverTime { minutes } => (
                "over_time",
                format!("the session has run {minutes:.0} minutes"),
            ),
            Notice::BudgetWarning { spent, budget } => (
                "budget",
                format!("80 % of the budget spent: ${spent:.2} of ${budget:.2}"),
            ),
            Notice::BudgetReached { spent, budget } => (
                "budget",
                format!("budget used up: ${spent:.2} of ${budget:.2}; the agent was interrupted"),
            ),
        }
    }
}

/// Every supervision event passes here once, as it happens: logged, and kept for the
/// ticket's audit trail, from where notifications are sent.
pub fn emit(a: &mut Activity, id: &TicketId, at: DateTime<Utc>, notice: &Notice) {
    log::info!("{id}: {notice:?}");
    let (event, detail) = notice.event();
    a.notices.push(Entry {
        at,
        event: event.to_string(),
        detail: Some(detail),
    });
    // Bounded: a ticket no poll tick has seen for long keeps only its latest events.
    if a.notices.len() > HISTORY {
        let extra = a.notices.len() - HISTORY;
        a.notices.drain(..extra);
    }
}

/// Now, for callers that have no clock of their own.
#[must_use]
pub fn at() -> DateTime<Utc> {
    now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn prices() -> PricesConfig {
        PricesConfig {
            date: "d".into(),
            models: crate::config::default_prices(),
        }
    }

    #[test]
    fn a_request_is_counted_once_across_its_lines_and_calls() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.jsonl");
        let fixture = include_str!("../tests/fixtures/claude-hooks/transcript.jsonl");
        let lines: Vec<&str> = fixture.lines().collect();
        // Half the file, then the rest, then a half-written line: nothing counted twice.
        let half = lines.len() / 2;
        fs::write(&t, lines[..half].join("\n") + "\n").unwrap();
        let mut s = SessionCost::default();
        s.ingest(&t).unwrap();
        let mut rest = lines[half..].join("\n") + "\n";
        rest.push_str("{\"type\":\"assistant\",\"requestId\":\"x");
        fs::OpenOptions::new()
            .append(true)
            .open(&t)
            .unwrap()
            .write_all(rest.as_bytes())
            .unwrap();
        s.ingest(&t).unwrap();
        s.ingest(&t).unwrap();
        let tokens = s.models["claude-opus-4-8"];
        assert_eq!(
            tokens,
            Tokens {
                input: 2400,
                output: 500,
                cache_read: 10_000,
                cache_write: 600
            }
        );
        let mut a = Activity::starting(now());
        a.sessions.insert("s".into(), s);
        let cost = a.cost(&prices());
        // What Claude Code itself reported for these two requests.
        assert!((cost.usd - 0.03325).abs() < 1e-9, "{cost:?}");
    }

    #[test]
    fn unknown_models_count_tokens_only() {
        let mut s = SessionCost::default();
        s.count_line(br#"{"type":"assistant","requestId":"r","message":{"model":"mystery-1","usage":{"input_tokens":10,"output_tokens":5}}}"#);
        let mut a = Activity::starting(now());
        a.sessions.insert("s".into(), s);
        let cost = a.cost(&prices());
        assert_eq!(cost.tokens.input, 10);
        assert!(cost.usd.abs() < 1e-12);
        assert_eq!(cost.unpriced_models, ["mystery-1"]);
    }

    #[test]
    fn text_is_made_inert() {
        assert_eq!(
            clip(
                "a\u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}b\u{202e}c\u{0}",
                false,
                100
            ),
            // Escape sequences go; the bidi override shows as term's stand-in.
            "ared b\u{fffd}c"
        );
        assert_eq!(first_line("\n\n  hello\nworld"), "hello");
        assert_eq!(clip("abcdef", false, 4), "abc…");
    }
}
