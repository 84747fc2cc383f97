use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::app::App;
use crate::error::{conflict, Error};
use crate::session::{self, claude, worktree, SessionSpec};
use crate::ticket::{now, SessionInfo, Snapshot, Status, Ticket, TicketId};

/// How to approve.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApproveOptions {
    /// Mark the ticket active without starting a session (the person works on it themselves).
    pub no_session: bool,
    /// The session's spend limit in USD; `None`: `automation.budget_usd`.
    pub budget_usd: Option<f64>,
}

/// pending → active. Freezes what the person approved as `approved_snapshot`: the agent is
/// given that text, never a later edit. Without `no_session` it makes the workdir, writes the
/// `/complete` skill and hooks, starts the session, and only then records the ticket active.
///
/// # Errors
/// Unknown ticket (not found); not pending, being approved, or `max_active_sessions` reached
/// (conflict); the workdir or the session could not be made (`Error::Session`; the ticket
/// stays pending with `last_error` set).
pub fn approve(app: &App, id: &TicketId, opts: ApproveOptions) -> Result<Ticket> {
    if let Some(b) = opts.budget_usd {
        super::supervise::valid_budget(b)?;
    }
    if opts.no_session {
        return approve_without_session(app, id, opts.budget_usd);
    }
    // Held until the ticket is recorded active: a second approve of the same ticket is a
    // conflict at once, and approves of different tickets take turns, so the cap holds.
    app.store.load()?.get(id)?;
    let _claim = Claim::take(app, id)?;
    let agent_session = uuid::Uuid::new_v4().to_string();
    let limit = app.config.automation.max_active_sessions;
    app.store.update(|state| {
        let running = state
            .tickets
            .values()
            .filter(|t| t.status == Status::Active && t.session.is_some())
            .count();
        let ticket = state.get_mut(id)?;
        if ticket.status != Status::Pending {
            // The transition's own refusal says what the status is.
            ticket.clone().transition(Status::Active, now(), None)?;
        }
        if running >= limit {
            return Err(conflict(format!(
                "{running} sessions are active and max_active_sessions is {limit}: complete or \
                 remove one first (or raise automation.max_active_sessions)"
            )));
        }
        ticket.approved_snapshot = Some(snapshot(ticket));
        Ok(())
    })?;

    let budget = opts
        .budget_usd
        .or(app.store.find(id)?.and_then(|t| t.budget_usd));
    let started = start_session(app, id, &agent_session, false, budget);
    let info = match started {
        Ok(info) => info,
        Err(err) => {
            let message = format!("{err:#}");
            app.store.update(|state| {
                if let Ok(ticket) = state.get_mut(id) {
                    if ticket.status == Status::Pending {
                        ticket.last_error = Some(message.clone());
                        ticket.record(now(), "approve_failed", Some(message.clone()));
                    }
                }
                Ok(())
            })?;
            return Err(err.context(format!("{id} stays pending; approve it again once fixed")));
        }
    };

    let recorded = app.store.update(|state| {
        let ticket = state.get_mut(id)?;
        let detail = format!(
            "session {} ({}) in {}",
            info.name, info.backend, info.workdir
        );
        ticket.transition(Status::Active, now(), Some(detail))?;
        ticket.run_id = Some(uuid::Uuid::new_v4().to_string());
        ticket.session = Some(info.clone());
        ticket.session_lost_at = None;
        ticket.waiting = None;
        if opts.budget_usd.is_some() {
            ticket.budget_usd = opts.budget_usd;
        }
        Ok(ticket.clone())
    });
    match recorded {
        Ok(ticket) => {
            log::info!("{id}: approved, session {} started", info.name);
            Ok(after_approval(app, ticket))
        }
        Err(e) => {
            log::warn!("{id}: approved, but not recorded: {e:#}");
            // Removed (or changed) while the session started: leave no session nobody tracks.
            if let Err(e) = session::kill(&app.config, &info) {
                log::warn!("cannot end the session {}: {e:#}", info.name);
            }
            Err(e)
        }
    }
}

/// Moves the Plane state (`transitions.on_approve`) once the ticket is active, and returns the
/// ticket as it is then: a failed move shows in its `last_error`, the approval stands.
fn after_approval(app: &App, ticket: Ticket) -> Ticket {
    if app.config.plane.on_approve.is_none() {
        return ticket;
    }
    super::plane_state::move_state_on_approve(app, &ticket.id);
    app.store
        .load()
        .ok()
        .and_then(|s| s.tickets.get(&ticket.id).cloned())
        .unwrap_or(ticket)
}

fn approve_without_session(app: &App, id: &TicketId, budget: Option<f64>) -> Result<Ticket> {
    let ticket = app.store.update_ticket(id, |ticket| {
        let at = now();
        if budget.is_some() {
            ticket.budget_usd = budget;
        }
        ticket.transition(Status::Active, at, Some("no session started".into()))?;
        ticket.approved_snapshot = Some(snapshot(ticket));
        ticket.run_id = Some(uuid::Uuid::new_v4().to_string());
        Ok(ticket.clone())
    })?;
    log::info!("{id}: approved, now active (no session)");
    Ok(after_approval(app, ticket))
}

fn snapshot(ticket: &Ticket) -> Snapshot {
    Snapshot {
        title: ticket.title.clone(),
        description_html: ticket.description_html.clone(),
        description_text: ticket.description_text.clone(),
        url: ticket.url.clone(),
    }
}

/// Makes the workdir, writes Claude Code's files, pre-accepts the trust question and starts the
/// session. Every failure is an `Error::Session`.
pub(super) fn start_session(
    app: &App,
    id: &TicketId,
    agent_session: &str,
    restart: bool,
    budget: Option<f64>,
) -> Result<SessionInfo> {
    let config = &app.config;
    let as_session = |e: anyhow::Error| -> anyhow::Error {
        if crate::error::Kind::of(&e) == crate::error::Kind::Session {
            e
        } else {
            Error::Session(format!("{e:#}")).into()
        }
    };
    let workdir = worktree::prepare(config, id).map_err(as_session)?;
    let exe = session::current_exe().map_err(as_session)?;
    claude::write_files(config, &exe)
        .context("cannot write the /complete skill and hooks into automation.claude_dir")
        .map_err(as_session)?;
    if config.automation.trust_worktrees && workdir.branch.is_some() {
        claude::trust(&workdir.path).map_err(as_session)?;
    }
    let spec = SessionSpec {
        name: session::session_name(config, id),
        ticket: id.clone(),
        workdir: workdir.path.clone(),
        agent_session: agent_session.to_string(),
        restart,
    };
    // Before the start: the session's first hook must find it `starting`, not be overwritten.
    if let Err(e) = super::supervise::session_started(app, id, budget) {
        log::warn!("{id}: cannot record the session's activity: {e:#}");
    }
    session::start(config, &spec)?;
    Ok(SessionInfo {
        name: spec.name,
        backend: config.sessions.backend.as_str().to_string(),
        workdir: workdir.path.display().to_string(),
        branch: workdir.branch,
        agent_session: Some(agent_session.to_string()),
        started_at: Some(now()),
    })
}

/// A claim on starting a ticket's session, held across the slow part of approve and restart.
/// Two `flock`s, which the OS drops when the process ends, so a crash leaves no stale claim:
/// one per ticket (tried: a second claimant is refused at once) and one for all tickets
/// (waited on: session starts take turns, so `max_active_sessions` is never overshot).
pub(super) struct Claim {
    _ticket: File,
    _all: File,
}

impl Claim {
    pub(super) fn take(app: &App, id: &TicketId) -> Result<Claim> {
        let dir = locks_dir(app);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the lock folder {}", dir.display()))?;
        let ticket = open_lock(&dir.join(format!("session-{id}.lock")))?;
        if fs2::FileExt::try_lock_exclusive(&ticket).is_err() {
            return Err(conflict(format!(
                "{id} is being approved or restarted right now by another request"
            )));
        }
        let all = open_lock(&dir.join("sessions.lock"))?;
        fs2::FileExt::lock_exclusive(&all)
            .with_context(|| format!("cannot lock {}", dir.join("sessions.lock").display()))?;
        Ok(Claim {
            _ticket: ticket,
            _all: all,
        })
    }
}

fn locks_dir(app: &App) -> PathBuf {
    app.store
        .path()
        .parent()
        .map_or_else(|| PathBuf::from("locks"), |p| p.join("locks"))
}

fn open_lock(path: &std::path::Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}
