//! Supervision: activity from Claude Code's hooks, cost from transcripts, the budget, and the
//! watchdog of poll ticks. Everything here works on the activity files (`crate::activity`);
//! nothing a hook calls reads or writes the state file.

use std::path::Path;

use anyhow::Result;
use chrono::TimeDelta;

use crate::activity::{self, Activity, Flag, Kind, Notice};
use crate::app::App;
use crate::error::{conflict, invalid};
use crate::session;
use crate::ticket::{now, Status, TicketId};

/// One hook call, as Claude Code describes it (the JSON on the hook's stdin).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct HookInput {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub transcript_path: Option<String>,
    #[serde(default)]
    pub hook_event_name: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub tool_input: Option<serde_json::Value>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub notification_type: Option<String>,
    #[serde(default)]
    pub last_assistant_message: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    /// The status line's input carries Claude Code's own cost.
    #[serde(default)]
    pub cost: Option<StatusCost>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct StatusCost {
    #[serde(default)]
    pub total_cost_usd: Option<f64>,
}

/// Which hook fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    SessionStart,
    PromptSubmit,
    PreToolUse,
    Notification,
    Stop,
    StopFailure,
    SessionEnd,
    StatusLine,
}

/// What a hook call decided.
#[derive(Debug, Clone, Default)]
pub struct HookOutcome {
    /// The budget is used up: a prompt or tool call is refused with this message.
    pub over_budget: Option<String>,
    pub activity: Option<Activity>,
}

/// `Bash(npm test)`, `Edit(src/main.rs)`, or the tool's name.
fn describe_tool(name: &str, input: Option<&serde_json::Value>) -> String {
    let arg = input.and_then(|i| {
        [
            "command",
            "file_path",
            "path",
            "pattern",
            "url",
            "description",
        ]
        .iter()
        .find_map(|k| i.get(k).and_then(|v| v.as_str()))
    });
    let name = activity::clip(name, false, 40);
    match arg {
        Some(a) => format!(
            "{name}({})",
            activity::clip(&activity::first_line(a), false, 60)
        ),
        None => name,
    }
}

/// A reset time Claude Code wrote into a limit message ("... resets 2pm", "... reset at 14:00").
fn reset_time(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("resets").map(|i| i + 6).or_else(|| {
        lower
            .find("reset at")
            .map(|i| i + 8)
            .or_else(|| lower.find("try again at").map(|i| i + 12))
    })?;
    let rest = message[at..].trim_start_matches([' ', ':']).trim_start();
    let rest = rest.strip_prefix("at ").unwrap_or(rest);
    let word: String = rest
        .chars()
        .take_while(|c| !matches!(c, '.' | ',' | '(' | ')' | '\n' | '·'))
        .collect();
    let word = activity::clip(word.trim(), false, 40);
    (!word.is_empty()).then_some(word)
}

/// Records one hook call: the activity it means, the transcript's new lines, the status
/// line's cost; then checks the budget. Reads no state file.
///
/// # Errors
/// The activity file cannot be written.
pub fn on_hook(app: &App, id: &TicketId, hook: Hook, input: &HookInput) -> Result<HookOutcome> {
    let at = now();
    let a = app.activity.update(id, |slot| {
        let a = slot.get_or_insert_with(|| Activity::starting(at));
        if let (Some(sid), Some(path)) = (&input.session_id, &input.transcript_path) {
            let s = a
                .sessions
                .entry(activity::clip(sid, false, 80))
                .or_default();
            if let Err(e) = s.ingest(Path::new(path)) {
                log::warn!("{id}: cannot count the cost: {e:#}");
            }
            if let Some(usd) = input.cost.as_ref().and_then(|c| c.total_cost_usd) {
                if usd.is_finite() && usd >= 0.0 {
                    s.reported_usd = Some(s.reported_usd.unwrap_or(0.0).max(usd));
                }
            }
        }
        // A session waiting on its budget stays so until a person raises it.
        let held = a.budget_hold();
        match hook {
            Hook::StatusLine => {}
            // The end of the session ends a hold too: a restart starts afresh (and is held
            // again at its first hook while the budget stays used up).
            Hook::SessionEnd => {
                let reason = input
                    .reason
                    .as_deref()
                    .map_or("ended".into(), activity::text);
                a.tool = None;
                a.kind = None;
                a.message = Some(reason.clone());
                a.set(at, Kind::Ended, Some(reason));
            }
            _ if held => a.last_activity_at = at,
            Hook::SessionStart => {
                let how = input.source.as_deref().map(activity::text);
                a.tool = None;
                a.set(at, Kind::Working, how);
            }
            Hook::PromptSubmit => {
                a.tool = None;
                a.kind = None;
                a.message = None;
                a.set(at, Kind::Working, Some("prompt submitted".into()));
            }
            Hook::PreToolUse => {
                let tool = input
                    .tool_name
                    .as_deref()
                    .map(|n| describe_tool(n, input.tool_input.as_ref()));
                a.tool.clone_from(&tool);
                a.kind = None;
                a.message = None;
                a.set(at, Kind::Working, tool);
            }
            Hook::Notification => {
                let message = input
                    .message
                    .as_deref()
                    .map_or_else(|| "Claude Code needs you".to_string(), activity::text);
                let message = match (&a.tool, input.notification_type.as_deref()) {
                    (Some(tool), Some("permission_prompt")) => format!("{message}: {tool}"),
                    _ => message,
                };
                let kind = input.notification_type.as_deref().map(activity::text);
                let fresh = a.state != Kind::Waiting;
                a.kind.clone_from(&kind);
                a.message = Some(message.clone());
                a.set(
                    at,
                    Kind::Waiting,
                    Some(format!(
                        "{}: {message}",
                        kind.as_deref().unwrap_or("notification")
                    )),
                );
                if fresh {
                    activity::emit(a, id, at, &Notice::Waiting { message });
                }
            }
            Hook::Stop => {
                let line = input
                    .last_assistant_message
                    .as_deref()
                    .map(activity::first_line);
                a.tool = None;
                a.kind = None;
                a.message.clone_from(&line);
                a.set(at, Kind::Idle, line);
            }
            Hook::StopFailure => {
                let error = input.error.as_deref().unwrap_or("unknown");
                let line = input
                    .last_assistant_message
                    .as_deref()
                    .map(activity::first_line);
                a.tool = None;
                a.kind = Some(activity::text(error));
                a.message.clone_from(&line);
                if matches!(error, "rate_limit" | "billing_error") {
                    a.reset_at = input.last_assistant_message.as_deref().and_then(reset_time);
                    a.set(at, Kind::Limit, line);
                } else {
                    a.set(
                        at,
                        Kind::Idle,
                        Some(format!("stopped by an API error ({error})")),
                    );
                }
            }
        }
        a.clone()
    })?;
    let mut outcome = HookOutcome {
        activity: Some(a),
        ..HookOutcome::default()
    };
    if hook != Hook::SessionEnd {
        outcome.over_budget = check_budget(app, id)?;
    }
    Ok(outcome)
}

/// The ticket's session's name, made from the config alone (no state file read).
fn session_name(app: &App, id: &TicketId) -> String {
    session::session_name(&app.config, id)
}

/// Checks the budget: at 80 % an event, at 100 % the agent is interrupted (Escape) and the
/// activity becomes `waiting` with kind `budget`. Returns the refusal message while the
/// budget is used up.
///
/// # Errors
/// The activity file cannot be written.
pub fn check_budget(app: &App, id: &TicketId) -> Result<Option<String>> {
    let default = app.config.automation.budget_usd;
    let prices = &app.config.prices;
    let at = now();
    let (message, interrupt) = app.activity.update(id, |slot| {
        let Some(a) = slot.as_mut() else {
            return (None, false);
        };
        let Some(budget) = a.budget(default) else {
            return (None, false);
        };
        let spent = a.cost(prices).spent_usd;
        if spent >= budget {
            let message = format!(
                "plane-orch: the budget of ${budget:.2} for {id} is used up (${spent:.2} spent): \
                 raise it with `plane-orch budget {id} <USD>`, or finish the ticket"
            );
            if a.budget_hold() {
                return (Some(message), false);
            }
            a.tool = None;
            a.kind = Some("budget".into());
            a.message = Some(format!("budget ${budget:.2} reached (${spent:.2} spent)"));
            a.state = Kind::Idle; // so that `set` records the change
            a.set(
                at,
                Kind::Waiting,
                Some(format!("budget reached: ${spent:.2} of ${budget:.2}")),
            );
            activity::emit(a, id, at, &Notice::BudgetReached { spent, budget });
            return (Some(message), true);
        }
        if spent >= 0.8 * budget && !a.budget_warned {
            a.budget_warned = true;
            a.log(
                at,
                "budget_warning",
                Some(format!("${spent:.2} of ${budget:.2} spent (80 %)")),
            );
            activity::emit(a, id, at, &Notice::BudgetWarning { spent, budget });
        }
        (None, false)
    })?;
    if interrupt {
        let name = session_name(app, id);
        if let Err(e) = session::interrupt(&app.config, &name) {
            log::warn!(
                "{id}: the budget is used up, but the agent could not be interrupted: {e:#}"
            );
        }
    }
    Ok(message)
}

/// A session was just started for the ticket (approve, restart): its activity starts again
/// (`starting`), keeping its cost, history and budget.
///
/// # Errors
/// The activity file cannot be written.
pub fn session_started(app: &App, id: &TicketId, budget: Option<f64>) -> Result<()> {
    let at = now();
    app.activity.update(id, |slot| {
        let a = slot.get_or_insert_with(|| Activity::starting(at));
        a.flags.clear();
        a.tool = None;
        a.kind = None;
        a.message = None;
        a.reset_at = None;
        if budget.is_some() {
            a.budget_usd = budget;
        }
        if a.state != Kind::Starting {
            a.set(at, Kind::Starting, Some("session started".into()));
        }
        a.since = at;
        a.last_activity_at = at;
    })
}

/// Checks a budget amount given by a person or a client.
///
/// # Errors
/// `invalid` when it is not a positive, finite amount.
pub fn valid_budget(usd: f64) -> Result<f64> {
    if usd.is_finite() && usd > 0.0 {
        Ok(usd)
    } else {
        Err(invalid(format!(
            "a budget is a positive amount of USD, such as 5 or 12.50 (got {usd})"
        )))
    }
}

/// Sets a ticket's budget (`None`: back to `automation.budget_usd`). Recorded as an event on
/// the ticket; a session waiting on its budget is released when the new one is not used up.
/// Returns the activity afterwards.
///
/// # Errors
/// Unknown ticket; a completed or done ticket (conflict); the files cannot be written.
pub fn set_budget(app: &App, id: &TicketId, usd: Option<f64>) -> Result<Option<Activity>> {
    if let Some(b) = usd {
        valid_budget(b)?;
    }
    let shown = usd.map_or_else(
        || match app.config.automation.budget_usd {
            Some(d) => format!("the default (${d:.2})"),
            None => "none".to_string(),
        },
        |b| format!("${b:.2}"),
    );
    app.store.update_ticket(id, |t| {
        if !matches!(t.status, Status::Pending | Status::Active) {
            return Err(conflict(format!(
                "{id} is {}: only a pending or active ticket has a budget to change",
                t.status
            )));
        }
        t.budget_usd = usd;
        t.record(now(), "budget_set", Some(format!("budget set to {shown}")));
        Ok(())
    })?;
    let default = app.config.automation.budget_usd;
    let prices = &app.config.prices;
    let at = now();
    let activity = app.activity.update(id, |slot| {
        let a = slot.as_mut()?;
        a.budget_usd = usd;
        a.log(at, "budget_set", Some(format!("budget set to {shown}")));
        let spent = a.cost(prices).spent_usd;
        let budget = a.budget(default);
        if budget.is_none_or(|b| spent < 0.8 * b) {
            a.budget_warned = false;
        }
        if a.budget_hold() && budget.is_none_or(|b| spent < b) {
            a.kind = None;
            a.message = Some(format!("budget raised to {shown}"));
            a.set(at, Kind::Idle, Some(format!("budget raised to {shown}")));
        }
        Some(a.clone())
    })?;
    // Still used up: the hold (and the interrupt) stays.
    check_budget(app, id)?;
    Ok(activity.and_then(|_| app.activity.load(id)))
}

/// What one watchdog pass found.
#[derive(Debug, Clone, Default)]
pub struct WatchReport {
    pub stuck: Vec<String>,
    pub stalled: Vec<String>,
    pub over_time: Vec<String>,
    pub over_budget: Vec<String>,
}

fn minutes(d: TimeDelta) -> f64 {
    #[allow(clippy::cast_precision_loss)] // milliseconds of a session fit an f64
    let ms = d.num_milliseconds() as f64;
    ms / 60_000.0
}

/// The watchdog, run by every poll tick: sessions `starting` too long are `stuck` (with the
/// pane's last lines), `working` with no hook event too long are `stalled`, older than
/// `watch.max_session_minutes` are `over_time` (and interrupted with `watch.stop_over_time`);
/// and every budget is checked. Flags are raised once and cleared by the next hook event.
///
/// # Errors
/// The state file cannot be read.
pub fn watch(app: &App, dry_run: bool) -> Result<WatchReport> {
    let mut report = WatchReport::default();
    let active = app.store.load_where(|s| s == Status::Active)?;
    let w = &app.config.watch;
    for t in active {
        let Some(s) = &t.session else { continue };
        if t.session_lost_at.is_some() {
            continue;
        }
        let id = &t.id;
        let Some(a) = app.activity.load(id) else {
            continue;
        };
        let at = now();
        let started = s.started_at.unwrap_or(a.since);
        let mut raise: Vec<(String, String, Option<String>)> = Vec::new();
        if a.state == Kind::Starting
            && a.flag("stuck").is_none()
            && at - a.since > TimeDelta::seconds(i64::try_from(w.start_seconds).unwrap_or(i64::MAX))
        {
            let screen = session::capture_screen(&app.config, s, 15)
                .map(|text| text.map(|t| activity::clip(&t, true, 8 * 1024)))
                .unwrap_or_else(|e| Some(format!("(the pane cannot be read: {e:#})")))
                .unwrap_or_else(|| "(the session is gone)".into());
            raise.push((
                "stuck".into(),
                format!(
                    "stuck before start: no word from Claude Code {} after the session started \
                     (a trust, login or first-run screen?); `plane-orch attach {id}` to see it",
                    activity::age(at - a.since)
                ),
                Some(screen),
            ));
        }
        if a.state == Kind::Working
            && a.flag("stalled").is_none()
            && minutes(at - a.last_activity_at) > w.stall_minutes
        {
            raise.push((
                "stalled".into(),
                format!(
                    "stalled: working, but no hook event for {}",
                    activity::age(at - a.last_activity_at)
                ),
                None,
            ));
        }
        if let Some(max) = w.max_session_minutes {
            if a.flag("over_time").is_none()
                && a.state != Kind::Ended
                && minutes(at - started) > max
            {
                raise.push((
                    "over_time".into(),
                    format!(
                        "over time: the session has run {} (watch.max_session_minutes is {max})",
                        activity::age(at - started)
                    ),
                    None,
                ));
            }
        }
        let notice_of = |flag: &str, screen: &Option<String>| match flag {
            "stuck" => Notice::Stuck {
                screen: screen.clone().unwrap_or_default(),
            },
            "stalled" => Notice::Stalled {
                minutes: minutes(at - a.last_activity_at),
            },
            _ => Notice::OverTime {
                minutes: minutes(at - started),
            },
        };
        if !raise.is_empty() && !dry_run {
            let stop = w.stop_over_time;
            let interrupt = app.activity.update(id, |slot| {
                let Some(a) = slot.as_mut() else { return false };
                let mut interrupt = false;
                for (flag, detail, screen) in &raise {
                    if a.flag(flag).is_some() {
                        continue;
                    }
                    a.log(at, flag, Some(detail.clone()));
                    a.flags.push(Flag {
                        flag: flag.clone(),
                        at,
                        detail: detail.clone(),
                        screen: screen.clone(),
                    });
                    activity::emit(a, id, at, &notice_of(flag, screen));
                    if flag == "over_time" && stop && !a.budget_hold() {
                        a.tool = None;
                        a.kind = Some("over_time".into());
                        a.message = Some(detail.clone());
                        a.state = Kind::Idle;
                        a.set(at, Kind::Waiting, Some(detail.clone()));
                        interrupt = true;
                    }
                }
                interrupt
            })?;
            if interrupt {
                if let Err(e) = session::interrupt(&app.config, &s.name) {
                    log::warn!("{id}: over time, but the agent could not be interrupted: {e:#}");
                }
            }
        }
        for (flag, _, _) in &raise {
            let list = match flag.as_str() {
                "stuck" => &mut report.stuck,
                "stalled" => &mut report.stalled,
                _ => &mut report.over_time,
            };
            list.push(id.to_string());
        }
        if !dry_run && check_budget(app, id)?.is_some() {
            report.over_budget.push(id.to_string());
        }
    }
    Ok(report)
}

/// Copies what hooks and the watchdog noticed into the tickets' audit trails (`waiting`,
/// `stuck`, `stalled`, `over_time`, `budget` events) and refreshes each active ticket's
/// `waiting` from its activity, in one write of the state file; notifications are sent from
/// there. Run by every poll tick: hooks themselves never write the state file. Returns how
/// many events were copied.
///
/// # Errors
/// The state file cannot be read or written.
pub fn sync_trail(app: &App) -> Result<usize> {
    let activities = app.activity.load_all();
    let active = app.store.load_where(|s| s == Status::Active)?;
    let wanted_waiting = |a: &Activity| {
        (a.state == Kind::Waiting).then(|| crate::ticket::Waiting {
            since: a.since,
            message: a.message.clone().unwrap_or_default(),
            kind: a.kind.clone(),
        })
    };
    let due: Vec<TicketId> = active
        .iter()
        .filter_map(|t| {
            let a = activities.get(&t.id)?;
            (!a.notices.is_empty() || t.waiting.as_deref() != wanted_waiting(a).as_ref())
                .then(|| t.id.clone())
        })
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let copied = app.store.update(|state| {
        let mut copied = Vec::new();
        for id in &due {
            let (Some(t), Some(a)) = (state.tickets.get_mut(id), activities.get(id)) else {
                continue;
            };
            if t.status != Status::Active {
                continue;
            }
            for n in &a.notices {
                t.record(n.at, &n.event, n.detail.clone());
            }
            t.waiting = wanted_waiting(a).map(Box::new);
            copied.push((id.clone(), a.notices.len()));
        }
        Ok(copied)
    })?;
    // Only the notices copied are dropped: one added since stays for the next tick.
    for (id, n) in &copied {
        app.activity.update(id, |slot| {
            if let Some(a) = slot.as_mut() {
                let n = (*n).min(a.notices.len());
                a.notices.drain(..n);
            }
        })?;
    }
    Ok(copied.iter().map(|(_, n)| n).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_and_reset_times_are_described() {
        let input = serde_json::json!({"command": "npm test\nmore", "description": "x"});
        assert_eq!(describe_tool("Bash", Some(&input)), "Bash(npm test)");
        assert_eq!(describe_tool("Agent", None), "Agent");
        assert_eq!(
            reset_time("Claude usage limit reached. Your limit resets 2pm (Europe/Berlin)."),
            Some("2pm".into())
        );
        assert_eq!(
            reset_time("This request would exceed your account's rate limit."),
            None
        );
    }
}
