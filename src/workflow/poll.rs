//! One poll tick: completion files become completed tickets; every watched Plane project is
//! read whole, and the queue is reconciled with it in one locked update. Everything is
//! fetched before the store is touched. Each project stands on its own: one that cannot be
//! read is reported and skipped, and its tickets are left as they are, while the others are
//! merged. A webhook's nudge polls just the work items it names ([`poll_items`]).

use std::collections::{HashMap, HashSet};

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::App;
use crate::completion;
use crate::config::PlaneConfig;
use crate::error::{Error, Kind};
use crate::html;
use crate::lock::Lock;
use crate::plane::types::{is_project_identifier, is_uuid, Label, State as PlaneState, WorkItem};
use crate::plane::{self, Client};
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
    pub sessions_lost_ids: Vec<String>,
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
    /// Watched projects that could not be read this time: skipped, their tickets untouched.
    pub failed_projects: Vec<ProjectFailure>,
    pub dry_run: bool,
    /// What the notification sender did in this tick (absent without sinks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<crate::notify::PumpReport>,
}

/// A watched project a poll could not read, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectFailure {
    pub project_id: String,
    pub error: String,
    /// A setting is wrong (a trigger name the project lacks), rather than Plane failing.
    #[serde(skip)]
    pub config: bool,
}

impl PollReport {
    fn act(&mut self, line: String) {
        log::info!("{line}");
        self.actions.push(line);
    }

    /// The error to exit with when some projects could not be read (the others' results
    /// stand): a config error when only settings were wrong, else a Plane error.
    #[must_use]
    pub fn failure(&self) -> Option<anyhow::Error> {
        let first = self.failed_projects.first()?;
        let mut text = if self.failed_projects.len() == 1 {
            format!(
                "Plane project {} could not be read: {}",
                first.project_id, first.error
            )
        } else {
            let each: Vec<String> = self
                .failed_projects
                .iter()
                .map(|f| format!("{}: {}", f.project_id, f.error))
                .collect();
            format!(
                "{} Plane projects could not be read: {}",
                self.failed_projects.len(),
                each.join("; ")
            )
        };
        if self.plane_polled {
            text.push_str(" (the other projects were polled and their tickets are queued)");
        }
        Some(if self.failed_projects.iter().all(|f| f.config) {
            Error::Config(text).into()
        } else {
            Error::Plane(text).into()
        })
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

fn try_poll_lock(app: &App) -> Result<Option<Lock>> {
    Lock::try_exclusive(&poll_lock_path(app), "the poll lock")
}

/// One poll tick: completion files, then Plane (when configured). A second poll while one
/// runs returns at once with `skipped` set.
///
/// # Errors
/// Plane failed (`Error::Plane`, the queue unchanged), a trigger name matches no or several
/// states or labels (`Error::Config`), or the state file cannot be read or written.
pub fn poll(app: &App, opts: &PollOptions) -> Result<PollReport> {
    poll_keeping(app, opts, &mut ProjectViews::default())
}

/// [`poll`], keeping what it learnt of each project in `views` for later [`poll_items`].
///
/// # Errors
/// As [`poll`].
pub fn poll_keeping(app: &App, opts: &PollOptions, views: &mut ProjectViews) -> Result<PollReport> {
    let mut result = poll_plane(app, opts, views);
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

fn poll_plane(app: &App, opts: &PollOptions, views: &mut ProjectViews) -> Result<PollReport> {
    // A dry run writes nothing, the lock file included.
    let _lock = if opts.dry_run {
        None
    } else {
        match try_poll_lock(app)? {
            Some(lock) => Some(lock),
            None => {
                let by = Lock::holder(&poll_lock_path(app))
                    .map_or_else(|| "another plane-orch".into(), |h| h.describe());
                log::info!(
                    "another poll is running ({by} holds {}): this one does nothing",
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
    match super::flag_lost_sessions(app, opts.dry_run) {
        Ok(ids) => {
            report.sessions_lost = ids.len();
            report.sessions_lost_ids = ids;
        }
        Err(e) => log::warn!("cannot tell which sessions ended: {e:#}"),
    }

    if app.config.cleanup.auto && !opts.dry_run {
        auto_cleanup(app, &mut report);
    }
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
    if cfg.workspace_slug.is_empty() || cfg.project_ids.is_empty() {
        let why = plane::not_configured(cfg, true).unwrap_or_default();
        log::warn!("Plane is not configured ({why}): polling handled completion files only");
    } else if let Some(why) = plane::not_configured(cfg, true) {
        // Plane is set up but this poll cannot reach it (typically cron or systemd without
        // the env file): an error, so the job fails where a person sees it.
        return Err(Error::Config(format!(
            "{} watches Plane, but {why}: export it, or for cron and systemd put \
             {}=... in their env file (see docs/operations.md)",
            app.config.path.display(),
            cfg.api_key_env
        ))
        .into());
    } else {
        let mut client = app.plane_client()?;
        if opts.dry_run {
            // A dry run creates no file, but its requests still spend the key's budget.
            client = client.budget_never_creating();
        }
        let progress = if opts.progress {
            Progress::new()
        } else {
            Progress::hidden()
        };
        let (fetched, failed) = fetch(&client, cfg, &progress, views);
        apply(app, opts.dry_run, &fetched, cfg, &mut report)?;
        report.plane_polled = !fetched.is_empty();
        report.failed_projects = failed;
        if !report.failed_projects.is_empty() && !report.completed_ids.is_empty() {
            log::warn!(
                "completed from completion files although Plane could not be read whole: {}",
                report.completed_ids.join(", ")
            );
        }
        if !opts.dry_run {
            // Approvals whose Plane state move failed, or whose process died before making it.
            for id in super::plane_state::resume_state_moves(app) {
                log::debug!("{id}: the Plane state move of its approval was tried again");
            }
        }
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
        match (report.plane_polled, report.failed_projects.len()) {
            (_, 0) if report.plane_polled => String::new(),
            (_, 0) => " (Plane not read: not configured)".to_string(),
            (true, n) => format!(" ({n} project(s) could not be read)"),
            (false, _) => " (no project could be read)".to_string(),
        }
    );
    Ok(report)
}

/// `cleanup.auto`: the tick cleans up after done and removed tickets; a failure is logged and
/// the tick goes on.
fn auto_cleanup(app: &App, report: &mut PollReport) {
    let opts = super::CleanupOptions {
        dry_run: false,
        older_than_days: app.config.cleanup.older_than_days,
        bundle_dir: app.config.cleanup.bundle_dir.clone(),
    };
    match super::cleanup(app, &opts) {
        Ok(done) => {
            for t in &done.tickets {
                for r in &t.removed {
                    report.act(format!("cleanup {}: removed {r}", t.ticket));
                }
                for k in &t.kept {
                    log::info!("cleanup {}: kept {k}", t.ticket);
                }
            }
        }
        Err(e) => log::warn!("cleanup failed: {e:#}"),
    }
}

/// Merges what was read into the queue (or, for a dry run, into a copy).
fn apply(
    app: &App,
    dry_run: bool,
    fetched: &[Fetched],
    cfg: &PlaneConfig,
    report: &mut PollReport,
) -> Result<()> {
    if fetched.is_empty() {
        return Ok(());
    }
    let at = now();
    if dry_run {
        let mut state = app.store.load()?;
        merge(&mut state, fetched, cfg, at, report);
    } else {
        let taken = std::mem::take(report);
        *report = app.store.update(|state| {
            let mut r = taken;
            merge(state, fetched, cfg, at, &mut r);
            Ok(r)
        })?;
        for id in &report.dropped_ids {
            if let Ok(id) = TicketId::parse(id) {
                super::op::forget_lease(app, &id);
            }
        }
    }
    Ok(())
}

/// The work items a webhook named, by project: each is fetched alone (not every page) and
/// merged like a poll would, except that nothing is dropped for being absent from a page.
/// `views` keeps what was learnt of each project (its states and labels) between calls.
/// Another poll holding the lock makes this one do nothing (`skipped`).
///
/// # Errors
/// The state file cannot be read or written; Plane is not configured.
pub fn poll_items(
    app: &App,
    client: &Client,
    items: &[(String, String)],
    views: &mut ProjectViews,
) -> Result<PollReport> {
    let Some(_lock) = try_poll_lock(app)? else {
        return Ok(PollReport {
            skipped: true,
            ..PollReport::default()
        });
    };
    let cfg = &app.config.plane;
    let mut report = PollReport::default();
    let mut fetched: Vec<Fetched> = Vec::new();
    for (pid, iid) in items {
        let one = views.get(client, cfg, pid).and_then(|view| {
            let item = client.work_item(pid, iid)?;
            Ok(match item {
                Some(item) => Fetched {
                    project_id: pid.clone(),
                    items: view.see(item).into_iter().collect(),
                    whole: false,
                    gone: Vec::new(),
                },
                None => Fetched {
                    project_id: pid.clone(),
                    items: Vec::new(),
                    whole: false,
                    gone: vec![iid.clone()],
                },
            })
        });
        match one {
            Ok(f) => fetched.push(f),
            Err(e) => {
                log::warn!("Plane work item {iid} of project {pid} could not be read: {e:#}");
                report.failed_projects.push(ProjectFailure {
                    project_id: pid.clone(),
                    error: format!("{e:#}"),
                    config: Kind::of(&e) == Kind::Config,
                });
            }
        }
    }
    apply(app, false, &fetched, cfg, &mut report)?;
    report.plane_polled = !fetched.is_empty();
    if let Err(e) = crate::notify::pump(app) {
        log::warn!("notifications: {e:#}");
    }
    log::info!(
        "webhook poll of {} work item(s): {} queued, {} dropped, {} flagged, {} edited in Plane",
        items.len(),
        report.queued,
        report.dropped,
        report.flagged,
        report.changed
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

/// What one poll read of a watched project.
#[derive(Debug, Clone)]
struct Fetched {
    project_id: String,
    items: Vec<Seen>,
    /// Every work item of the project was read: one absent was deleted or archived.
    whole: bool,
    /// Work items Plane said it no longer has.
    gone: Vec<String>,
}

/// What a poll needs to know of a project to judge its work items: its identifier, which
/// states and labels trigger, and the names of all of them.
#[derive(Debug, Clone)]
pub struct ProjectView {
    identifier: String,
    trigger_states: HashSet<String>,
    trigger_labels: HashSet<String>,
    state_info: HashMap<String, (String, String)>,
    label_names: HashMap<String, String>,
    read_at: std::time::Instant,
}

/// Project views kept between webhook polls; a full poll refreshes them.
#[derive(Debug, Default)]
pub struct ProjectViews(HashMap<String, ProjectView>);

/// How long a project's states and labels are trusted between full polls.
const VIEW_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl ProjectViews {
    fn get(&mut self, client: &Client, cfg: &PlaneConfig, pid: &str) -> Result<&ProjectView> {
        let stale = self
            .0
            .get(pid)
            .is_none_or(|v| v.read_at.elapsed() > VIEW_TTL);
        if stale {
            let view = project_view(client, cfg, pid)
                .with_context(|| format!("reading Plane project {pid}"))?;
            self.0.insert(pid.to_string(), view);
        }
        Ok(&self.0[pid])
    }
}

/// Reads every watched project; the ones that fail are returned apart, each with its error.
fn fetch(
    client: &Client,
    cfg: &PlaneConfig,
    progress: &Progress,
    views: &mut ProjectViews,
) -> (Vec<Fetched>, Vec<ProjectFailure>) {
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for pid in &cfg.project_ids {
        match fetch_project(client, cfg, pid, progress, views) {
            Ok(f) => out.push(f),
            Err(e) => {
                progress.finish();
                log::error!("Plane project {pid} skipped: {e:#}");
                failed.push(ProjectFailure {
                    project_id: pid.clone(),
                    error: format!("{e:#}"),
                    config: Kind::of(&e) == Kind::Config,
                });
            }
        }
    }
    progress.finish();
    (out, failed)
}

fn project_view(client: &Client, cfg: &PlaneConfig, pid: &str) -> Result<ProjectView> {
    // One configured identifier names the one project; several projects each have their own.
    let identifier = match (&cfg.project_identifier, cfg.project_ids.len()) {
        (Some(ident), 1) => ident.clone(),
        _ => client.project(pid)?.identifier.to_ascii_uppercase(),
    };
    if !is_project_identifier(&identifier) {
        return Err(Error::Plane(format!(
            "the project's identifier {:?} cannot start a ticket id (a letter, then up to 11 \
             letters or digits): project skipped; set plane.project_identifier or rename it in Plane",
            identifier.chars().take(40).collect::<String>()
        ))
        .into());
    }
    let shown = format!("{identifier} ({pid})");
    let mut states = client.states(pid)?;
    let mut labels = client.labels(pid)?;
    states.retain(|s| usable_id(&s.id, "state", &s.name, &shown));
    labels.retain(|l| usable_id(&l.id, "label", &l.name, &shown));
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
    Ok(ProjectView {
        identifier,
        trigger_states,
        trigger_labels,
        state_info: states
            .into_iter()
            .map(|s| (s.id, (s.name, s.group)))
            .collect(),
        label_names: labels.into_iter().map(|l| (l.id, l.name)).collect(),
        read_at: std::time::Instant::now(),
    })
}

impl ProjectView {
    /// A work item as this project's triggers see it; `None` (with a warning naming it) when
    /// its ids cannot be used: they would go into request paths and file names.
    fn see(&self, item: WorkItem) -> Option<Seen> {
        if let Some(why) = item.problem() {
            log::warn!(
                "Plane project {}: work item {:?} (sequence {}) skipped: {why}",
                self.identifier,
                item.name.chars().take(60).collect::<String>(),
                item.sequence_id
            );
            return None;
        }
        let by_state = item
            .state
            .as_ref()
            .is_some_and(|s| self.trigger_states.contains(s));
        let by_label = item.labels.iter().any(|l| self.trigger_labels.contains(l));
        let trigger = if by_state {
            Some(TriggerType::StatusChange)
        } else if by_label {
            Some(TriggerType::Label)
        } else {
            None
        };
        let id = TicketId::parse(&format!("{}-{}", self.identifier, item.sequence_id));
        if let Err(e) = &id {
            log::warn!("Plane work item {} has no usable id: {e}", item.id);
        }
        Some(Seen {
            state: item
                .state
                .as_deref()
                .and_then(|s| self.state_info.get(s).cloned()),
            label_names: item
                .labels
                .iter()
                .filter_map(|l| self.label_names.get(l.as_str()).cloned())
                .collect(),
            id: id.ok(),
            trigger,
            item,
        })
    }
}

/// Whether a state's or label's id may be used; one that is not a UUID is skipped, named.
fn usable_id(id: &str, kind: &str, name: &str, project: &str) -> bool {
    let ok = is_uuid(id);
    if !ok {
        log::warn!(
            "Plane project {project}: {kind} {:?} skipped: its id is not a UUID",
            name.chars().take(60).collect::<String>()
        );
    }
    ok
}

fn fetch_project(
    client: &Client,
    cfg: &PlaneConfig,
    pid: &str,
    progress: &Progress,
    views: &mut ProjectViews,
) -> Result<Fetched> {
    // A full poll reads the project afresh, and leaves what it read for webhook polls.
    let view = project_view(client, cfg, pid)?;
    views.0.insert(pid.to_string(), view.clone());
    let shown = format!("{} ({pid})", view.identifier);
    progress.step(&format!("Plane project {shown}: reading work items"));
    let items = client.work_items_paged(pid, &|pages, items| {
        progress.step(&format!(
            "Plane project {shown}: page {pages}, {items} work items"
        ));
    })?;
    log::info!("Plane project {shown}: {} work items", items.len());
    Ok(Fetched {
        project_id: pid.to_string(),
        items: items
            .into_iter()
            .filter_map(|item| view.see(item))
            .collect(),
        whole: true,
        gone: Vec::new(),
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
        // A pending ticket whose work item is gone from the project (deleted or archived):
        // known only when the whole project was read, or when Plane said so of that item.
        for (id, t) in &state.tickets {
            let gone = t.issue_id.as_deref().is_some_and(|i| {
                if project.whole {
                    !seen_issues.contains(i)
                } else {
                    project.gone.iter().any(|g| g == i)
                }
            });
            if t.status == Status::Pending
                && t.trigger_type != TriggerType::Manual
                && t.project_id.as_deref() == Some(project.project_id.as_str())
                && gone
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
    // Its text is the HTML's own: made from it when first asked for, not now.
    let html = html::clean(seen.item.description_html.as_deref().unwrap_or_default());
    let mut ticket = Ticket::new(
        NewTicket {
            title: seen.item.name.trim().to_string(),
            description_text: None,
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
    // Cleaned before it is compared or kept: the store holds no HTML from Plane as it came.
    let (html, text) = html::admit(seen.item.description_html.as_deref().unwrap_or_default());
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
            if ticket.description_html != html && ticket.set_description(html, &text) {
                ticket.record(at, "description_changed", Some(text));
                changed = true;
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
            if from_plane
                && ticket.description_html != html
                && known(ticket, "description_changed", ticket.description_text()) != text
            {
                ticket.record(at, "description_changed", Some(text));
                changed = true;
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
