//! One poll tick: completion files become completed tickets; every watched
//! Plane project is read whole, and the queue is reconciled with it in one locked update.
//! Everything is fetched before the store is touched, so a Plane failure changes nothing.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::App;
use crate::completion;
use crate::config::PlaneConfig;
use crate::plane::types::{Label, State as PlaneState, WorkItem};
use crate::plane::{self, html_to_text, Client};
use crate::progress::Progress;
use crate::store::State;
use crate::ticket::{now, NewTicket, Status, Ticket, TicketId, TriggerType};

use super::complete::{complete, SummarySource};

/// How to poll.
#[derive(Debug, Clone, Default)]
pub struct PollOptions {
    /// Read Plane and the completion folder, change nothing, report what would happen.
    pub dry_run: bool,
    /// Show projects and pages on stderr while reading Plane (only when it is a terminal).
    pub progress: bool,
}

/// What one tick did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PollReport {
    pub queued: usize,
    pub completed: usize,
    pub sessions_lost: usize,
    /// Another poll held the poll lock: this one did nothing.
    pub skipped: bool,
    /// Pending tickets that left every trigger (or Plane) and so left the queue.
    pub dropped: usize,
    /// Active tickets whose Plane state moved to a completed or cancelled group.
    pub flagged: usize,
    /// Tickets whose title or description changed in Plane.
    pub changed: usize,
    /// Ids, for --dry-run and logs.
    pub queued_ids: Vec<String>,
    pub completed_ids: Vec<String>,
    pub dropped_ids: Vec<String>,
    pub flagged_ids: Vec<String>,
    pub changed_ids: Vec<String>,
    /// One line per thing done (or that would be done), for people.
    pub actions: Vec<String>,
    /// Sessions the watchdog flagged this tick: never started, stalled, over time.
    pub stuck_ids: Vec<String>,
    pub stalled_ids: Vec<String>,
    pub over_time_ids: Vec<String>,
    /// Sessions whose budget is used up.
    pub over_budget_ids: Vec<String>,
    /// Whether Plane was read (false: not configured, only completion files were handled).
    pub plane_polled: bool,
    pub dry_run: bool,
    /// What the notification sender did in this tick (absent without sinks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<crate::notify::PumpReport>,
}

impl PollReport {
    fn act(&mut self, line: String) {
        log::info!("{line}");
        self.actions.push(line);
    }
}

/// The lock beside the state file that keeps two polls from running at once.
#[must_use]
pub fn poll_lock_path(app: &App) -> PathBuf {
    let path = app.store.path();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".poll.lock");
    path.with_file_name(name)
}

/// A held poll lock; released when dropped (or when the process ends).
struct PollLock(File);

impl Drop for PollLock {
    fn drop(&mut self) {
        let _ = fs2::FileExt::unlock(&self.0);
    }
}

fn try_poll_lock(app: &App) -> Result<Option<PollLock>> {
    let path = poll_lock_path(app);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state folder {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the poll lock {}", path.display()))?;
    match fs2::FileExt::try_lock_exclusive(&file) {
        Ok(()) => Ok(Some(PollLock(file))),
        Err(e) if e.kind() == fs2::lock_contended_error().kind() => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// One poll tick: completion files, then Plane (when configured). A second poll while one
/// runs returns at once with `skipped` set.
///
/// # Errors
/// Plane failed (`Error::Plane`, the queue unchanged), a trigger name matches no or several
/// states or labels (`Error::Config`), or the state file cannot be read or written.
pub fn poll(app: &App, opts: &PollOptions) -> Result<PollReport> {
    let mut result = poll_plane(app, opts);
    // Messages go out after the tick's changes, and also when Plane failed: a session lost or
    // a completion file handled before the failure still tells its person.
    if !opts.dry_run && !result.as_ref().is_ok_and(|r| r.skipped) {
        match crate::notify::pump(app) {
            Ok(sent) => {
                if let Ok(report) = &mut result {
                    report.notifications = app.config.notify.enabled().then_some(sent);
                }
            }
            Err(e) => log::warn!("notifications: {e:#}"),
        }
    }
    result
}

fn poll_plane(app: &App, opts: &PollOptions) -> Result<PollReport> {
    // A dry run writes nothing, the lock file included.
    let _lock = if opts.dry_run {
        None
    } else {
        match try_poll_lock(app)? {
            Some(lock) => Some(lock),
            None => {
                log::info!(
                    "another poll is running (it holds {}): this one does nothing",
                    poll_lock_path(app).display()
                );
                return Ok(PollReport {
                    skipped: true,
                    ..PollReport::default()
                });
            }
        }
    };
    let mut report = PollReport {
        dry_run: opts.dry_run,
        ..PollReport::default()
    };
    completion_files(app, opts, &mut report)?;
    // After the completion files (a ticket completed by one is not lost) and before Plane (a
    // Plane outage must not keep lost sessions from being flagged).
    report.sessions_lost = match super::flag_lost_sessions(app, opts.dry_run) {
        Ok(n) => n,
        Err(e) => {
            log::warn!("cannot tell which sessions ended: {e:#}");
            0
        }
    };

    match super::supervise::watch(app, opts.dry_run) {
        Ok(w) => {
            for id in &w.stuck {
                report.act(format!(
                    "{id}: stuck before start (see `plane-orch show {id}`)"
                ));
            }
            for id in &w.stalled {
                report.act(format!(
                    "{id}: stalled (no hook event for watch.stall_minutes)"
                ));
            }
            for id in &w.over_time {
                report.act(format!("{id}: over time (watch.max_session_minutes)"));
            }
            report.stuck_ids = w.stuck;
            report.stalled_ids = w.stalled;
            report.over_time_ids = w.over_time;
            report.over_budget_ids = w.over_budget;
        }
        Err(e) => log::warn!("the session watchdog failed: {e:#}"),
    }
    if !opts.dry_run {
        if let Err(e) = super::supervise::sync_trail(app) {
            log::warn!("cannot copy the sessions' events into the tickets' history: {e:#}");
        }
    }

    let cfg = &app.config.plane;
    if let Some(why) = plane::not_configured(cfg, true) {
        log::warn!("Plane is not configured ({why}): polling handled completion files only");
    } else {
        let client = Client::new(cfg)?;
        let progress = if opts.progress {
            Progress::new()
        } else {
            Progress::hidden()
        };
        let fetched = fetch(&client, cfg, &progress).inspect_err(|_| {
            if !report.completed_ids.is_empty() {
                log::warn!(
                    "completed from completion files before Plane failed: {}",
                    report.completed_ids.join(", ")
                );
            }
        })?;
        let at = now();
        if opts.dry_run {
            let mut state = app.store.load()?;
            merge(&mut state, &fetched, cfg, at, &mut report);
        } else {
            report = app.store.update(|state| {
                let mut r = report;
                merge(state, &fetched, cfg, at, &mut r);
                Ok(r)
            })?;
        }
        report.plane_polled = true;
    }
    // One line per tick, so a cron or --loop log shows every poll, quiet ones included.
    log::info!(
        "poll{}: {} queued, {} completed, {} sessions lost, {} dropped, {} flagged, {} edited in \
         Plane{}",
        if opts.dry_run { " (dry run)" } else { "" },
        report.queued,
        report.completed,
        report.sessions_lost,
        report.dropped,
        report.flagged,
        report.changed,
        if report.plane_polled {
            ""
        } else {
            " (Plane not read: not configured)"
        }
    );
    Ok(report)
}

// ---- completion files -----------------------------------------------------------------

fn completion_files(app: &App, opts: &PollOptions, report: &mut PollReport) -> Result<()> {
    let found = completion::find(&app.config.completion)?;
    if found.is_empty() {
        return Ok(());
    }
    let state = app.store.load()?;
    for file in found {
        let shown = file.path.display();
        match state.tickets.get(&file.id).map(|t| t.status) {
            None => {
                log::warn!(
                    "completion file {shown}: no ticket {} in the queue; left alone",
                    file.id
                );
                continue;
            }
            Some(status) if status != Status::Active => {
                log::warn!(
                    "completion file {shown}: {} is {status}, not active; left alone",
                    file.id
                );
                continue;
            }
            Some(_) => {}
        }
        let summary = match completion::read(&file.path) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("completion file refused and left in place: {e:#}");
                continue;
            }
        };
        if let Err(e) = super::complete::clean_summary(&summary) {
            log::warn!("completion file {shown} refused and left in place: {e:#}");
            continue;
        }
        if opts.dry_run {
            report.act(format!("would complete {} from {shown}", file.id));
        } else {
            match complete(app, &file.id, &summary, SummarySource::CompletionFile) {
                Ok(_) => {
                    if let Err(e) = std::fs::remove_file(&file.path) {
                        log::warn!(
                            "{} is completed, but {shown} cannot be deleted: {e}",
                            file.id
                        );
                    }
                    report.act(format!("completed {} from {shown}", file.id));
                }
                Err(e) => {
                    log::warn!("completion file {shown} left in place: {e:#}");
                    continue;
                }
            }
        }
        report.completed += 1;
        report.completed_ids.push(file.id.to_string());
    }
    Ok(())
}

// ---- reading Plane --------------------------------------------------------------------

/// A work item as one poll saw it.
#[derive(Debug, Clone)]
struct Seen {
    item: WorkItem,
    id: Option<TicketId>,
    trigger: Option<TriggerType>,
    /// The state's name and group.
    state: Option<(String, String)>,
    label_names: Vec<String>,
}

/// One watched project, read whole.
#[derive(Debug, Clone)]
struct Fetched {
    project_id: String,
    items: Vec<Seen>,
}

fn fetch(client: &Client, cfg: &PlaneConfig, progress: &Progress) -> Result<Vec<Fetched>> {
    let mut out = Vec::new();
    for pid in &cfg.project_ids {
        out.push(
            fetch_project(client, cfg, pid, progress)
                .with_context(|| format!("polling Plane project {pid}"))?,
        );
    }
    progress.finish();
    Ok(out)
}

fn fetch_project(
    client: &Client,
    cfg: &PlaneConfig,
    pid: &str,
    progress: &Progress,
) -> Result<Fetched> {
    // One configured identifier names the one project; several projects each have their own.
    let identifier = match (&cfg.project_identifier, cfg.project_ids.len()) {
        (Some(ident), 1) => ident.clone(),
        _ => client.project(pid)?.identifier.to_ascii_uppercase(),
    };
    let shown = format!("{identifier} ({pid})");
    let states = client.states(pid)?;
    let labels = client.labels(pid)?;
    let mut trigger_states = HashSet::new();
    for name in &cfg.trigger_states {
        let s = plane::find_by_name(
            &states,
            |s: &PlaneState| &s.name,
            name,
            "state",
            &shown,
            "plane.trigger.states",
        )?;
        trigger_states.insert(s.id.clone());
    }
    let mut trigger_labels = HashSet::new();
    for name in &cfg.trigger_labels {
        let l = plane::find_by_name(
            &labels,
            |l: &Label| &l.name,
            name,
            "label",
            &shown,
            "plane.trigger.labels",
        )?;
        trigger_labels.insert(l.id.clone());
    }
    let state_info: HashMap<&str, (String, String)> = states
        .iter()
        .map(|s| (s.id.as_str(), (s.name.clone(), s.group.clone())))
        .collect();
    let label_names: HashMap<&str, &str> = labels
        .iter()
        .map(|l| (l.id.as_str(), l.name.as_str()))
        .collect();
    progress.step(&format!("Plane project {shown}: reading work items"));
    let items = client.work_items_paged(pid, &|pages, items| {
        progress.step(&format!(
            "Plane project {shown}: page {pages}, {items} work items"
        ));
    })?;
    log::info!("Plane project {shown}: {} work items", items.len());
    let seen = items
        .into_iter()
        .map(|item| {
            let by_state = item
                .state
                .as_ref()
                .is_some_and(|s| trigger_states.contains(s));
            let by_label = item.labels.iter().any(|l| trigger_labels.contains(l));
            let trigger = if by_state {
                Some(TriggerType::StatusChange)
            } else if by_label {
                Some(TriggerType::Label)
            } else {
                None
            };
            let id = TicketId::parse(&format!("{identifier}-{}", item.sequence_id));
            if let Err(e) = &id {
                log::warn!("Plane work item {} has no usable id: {e}", item.id);
            }
            Seen {
                state: item
                    .state
                    .as_deref()
                    .and_then(|s| state_info.get(s).cloned()),
                label_names: item
                    .labels
                    .iter()
                    .filter_map(|l| label_names.get(l.as_str()).map(|n| (*n).to_string()))
                    .collect(),
                id: id.ok(),
                trigger,
                item,
            }
        })
        .collect();
    Ok(Fetched {
        project_id: pid.to_string(),
        items: seen,
    })
}

// ---- reconciling ----------------------------------------------------------------------

/// The title and text a later Plane edit is compared with: the last one recorded as an event,
/// else the ticket's own (which, once approved, is what the agent got).
fn known(ticket: &Ticket, event: &str, own: &str) -> String {
    ticket
        .events
        .iter()
        .rev()
        .find(|e| e.event == event)
        .and_then(|e| e.detail.clone())
        .unwrap_or_else(|| own.to_string())
}

fn merge(
    state: &mut State,
    fetched: &[Fetched],
    cfg: &PlaneConfig,
    at: DateTime<Utc>,
    report: &mut PollReport,
) {
    let by_issue: HashMap<String, TicketId> = state
        .tickets
        .iter()
        .filter_map(|(id, t)| t.issue_id.clone().map(|i| (i, id.clone())))
        .collect();
    let mut drop: Vec<(TicketId, String)> = Vec::new();
    for project in fetched {
        let mut seen_issues = HashSet::new();
        for seen in &project.items {
            seen_issues.insert(seen.item.id.as_str());
            if let Some(tid) = by_issue.get(&seen.item.id) {
                if let Some(ticket) = state.tickets.get_mut(tid) {
                    reconcile(ticket, seen, at, report, &mut drop);
                }
                continue;
            }
            let Some(trigger) = seen.trigger else {
                if state.dismissed.remove(&seen.item.id).is_some() {
                    let name = seen
                        .id
                        .as_ref()
                        .map_or(seen.item.id.as_str(), |i| i.as_str());
                    report.act(format!(
                        "{name} (removed earlier) has left every trigger: it is queued again once re-triggered"
                    ));
                }
                continue;
            };
            let Some(id) = &seen.id else { continue };
            if state.dismissed.contains_key(&seen.item.id) {
                log::debug!("{id} was removed and has not left its trigger since: not queued");
                continue;
            }
            if state.knows(id) {
                // In the queue (added by hand?) or done and archived: never queued twice.
                log::debug!("{id} is known already: not queued");
                continue;
            }
            let ticket = new_ticket(id.clone(), project, seen, trigger, cfg, at);
            report.queued += 1;
            report.queued_ids.push(id.to_string());
            report.act(format!("queued {id}: {}", ticket.title));
            state.tickets.insert(id.clone(), ticket);
        }
        // A pending ticket whose work item is gone from the project (deleted or archived).
        for (id, t) in &state.tickets {
            if t.status == Status::Pending
                && t.trigger_type != TriggerType::Manual
                && t.project_id.as_deref() == Some(project.project_id.as_str())
                && t.issue_id
                    .as_deref()
                    .is_some_and(|i| !seen_issues.contains(i))
            {
                drop.push((
                    id.clone(),
                    "its work item is no longer in Plane (deleted or archived)".into(),
                ));
            }
        }
    }
    for (id, why) in drop {
        if state.tickets.remove(&id).is_some() {
            report.dropped += 1;
            report.dropped_ids.push(id.to_string());
            report.act(format!("dropped pending {id}: {why}"));
        }
    }
}

fn new_ticket(
    id: TicketId,
    project: &Fetched,
    seen: &Seen,
    trigger: TriggerType,
    cfg: &PlaneConfig,
    at: DateTime<Utc>,
) -> Ticket {
    let html = seen.item.description_html.clone().unwrap_or_default();
    let mut ticket = Ticket::new(
        NewTicket {
            title: seen.item.name.trim().to_string(),
            description_text: html_to_text(&html),
            description_html: html,
            url: Some(format!(
                "{}/{}/browse/{id}/",
                cfg.web_url, cfg.workspace_slug
            )),
            trigger_type: trigger,
            id,
        },
        at,
    );
    ticket.issue_id = Some(seen.item.id.clone());
    ticket.project_id = Some(
        seen.item
            .project
            .clone()
            .unwrap_or_else(|| project.project_id.clone()),
    );
    ticket.priority.clone_from(&seen.item.priority);
    ticket.labels.clone_from(&seen.label_names);
    ticket.plane_created_at = seen.item.created_at;
    ticket.plane_updated_at = seen.item.updated_at;
    ticket
}

fn reconcile(
    ticket: &mut Ticket,
    seen: &Seen,
    at: DateTime<Utc>,
    report: &mut PollReport,
    drop: &mut Vec<(TicketId, String)>,
) {
    let id = ticket.id.clone();
    let html = seen.item.description_html.clone().unwrap_or_default();
    let title = seen.item.name.trim().to_string();
    let mut changed = false;
    match ticket.status {
        Status::Done => return,
        Status::Pending => {
            let Some(trigger) = seen.trigger else {
                let state = seen.state.as_ref().map_or("?", |(n, _)| n.as_str());
                drop.push((
                    id,
                    format!("it left every trigger in Plane (state {state:?}, no trigger label)"),
                ));
                return;
            };
            // Nobody approved this text yet: keep it current.
            if ticket.title != title {
                ticket.record(at, "title_changed", Some(title.clone()));
                ticket.title = title;
                changed = true;
            }
            if ticket.description_html != html {
                let text = html_to_text(&html);
                if text != ticket.description_text {
                    ticket.record(at, "description_changed", Some(text.clone()));
                    changed = true;
                }
                ticket.description_html = html;
                ticket.description_text = text;
            }
            ticket.trigger_type = trigger;
            ticket.priority.clone_from(&seen.item.priority);
            ticket.labels.clone_from(&seen.label_names);
            ticket.plane_updated_at = seen.item.updated_at;
        }
        Status::Active | Status::Completed => {
            // What was approved stays what the agent got; an edit is recorded, once. A ticket
            // added by hand (and linked to Plane later) never had Plane's text to compare.
            let from_plane = ticket.trigger_type != TriggerType::Manual;
            if from_plane && known(ticket, "title_changed", &ticket.title) != title {
                ticket.record(at, "title_changed", Some(title));
                changed = true;
            }
            if from_plane && ticket.description_html != html {
                let text = html_to_text(&html);
                if known(ticket, "description_changed", &ticket.description_text) != text {
                    ticket.record(at, "description_changed", Some(text));
                    changed = true;
                }
            }
            let closed = seen
                .state
                .as_ref()
                .filter(|(_, group)| group == "completed" || group == "cancelled");
            if let (Status::Active, Some((name, group)), None) =
                (ticket.status, closed, ticket.plane_closed_at)
            {
                ticket.plane_closed_at = Some(at);
                ticket.record(
                    at,
                    "plane_closed",
                    Some(format!(
                        "moved to {name:?} ({group}) in Plane while active; the session was left running"
                    )),
                );
                report.flagged += 1;
                report.flagged_ids.push(id.to_string());
                report.act(format!(
                    "flagged active {id}: Plane moved it to {name:?} ({group})"
                ));
            }
        }
    }
    if changed {
        report.changed += 1;
        report.changed_ids.push(id.to_string());
        report.act(format!("{id} was edited in Plane (recorded as an event)"));
    }
}
