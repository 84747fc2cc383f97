use anyhow::{Context, Result};

use crate::app::App;
use crate::error::{conflict, Error};
use crate::lock::Holder;
use crate::session::{self, claude, made, worktree, SessionSpec};
use crate::ticket::{now, Op, OpKind, SessionInfo, Status, Ticket, TicketId};

use super::op::{self, Running};

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
    app.store
        .find(id)?
        .ok_or_else(|| Error::NotFound(id.to_string()))?;
    // A second approve of the ticket is refused at once; session starts take turns, so the
    // cap counted below holds. Leases are only ever tried: no two callers wait on each other.
    let lease = op::lease(app, id, OpKind::Approve.doing())?;
    let _starting = op::session_start_lock(app)?;
    let limit = app.config.automation.max_active_sessions;
    let (op, _) = Running::begin_leased(app, id, OpKind::Approve, lease, |state| {
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
        ticket.approve_text();
        Ok(())
    })?;
    // A session an interrupted approve started cannot be told apart from a stranger using
    // its name: it is stopped, and a fresh one started with a new conversation.
    if let Some(left) = op
        .resumed()
        .and_then(|o| o.step("session_starting").flatten())
    {
        stop_left_session(app, id, left);
    }
    let agent_session = uuid::Uuid::new_v4().to_string();
    let name = session::session_name(&app.config, id);
    op.step(
        "session_starting",
        Some(&format!(
            "{} {name} {agent_session}",
            app.config.sessions.backend.as_str()
        )),
        |_| (),
    )?;

    let budget = opts
        .budget_usd
        .or(app.store.find(id)?.and_then(|t| t.budget_usd));
    let info = match start_session(app, id, &agent_session, false, budget) {
        Ok(info) => info,
        Err(err) => {
            let message = format!("{err:#}");
            op.fail(false, |ticket| {
                if ticket.status == Status::Pending {
                    ticket.last_error = Some(message.clone());
                    ticket.record(now(), "approve_failed", Some(message.clone()));
                }
            })?;
            return Err(err.context(format!("{id} stays pending; approve it again once fixed")));
        }
    };

    let follow_up = state_move_op(app);
    let recorded = op.finish(|ticket| {
        let detail = format!(
            "session {} ({}) in {}",
            info.name, info.backend, info.workdir
        );
        ticket.transition(Status::Active, now(), Some(detail))?;
        ticket.run_id = Some(uuid::Uuid::new_v4().to_string());
        ticket.session = Some(Box::new(info.clone()));
        ticket.session_lost_at = None;
        ticket.waiting = None;
        if opts.budget_usd.is_some() {
            ticket.budget_usd = opts.budget_usd;
        }
        if ticket.issue_id.is_some() {
            ticket.op = follow_up.clone().map(Box::new);
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

/// Ends the session an interrupted approve or restart recorded as starting
/// (`"<backend> <name> <conversation>"`), if it runs.
pub(super) fn stop_left_session(app: &App, id: &TicketId, recorded: &str) {
    let mut parts = recorded.split(' ');
    let (Some(backend), Some(name)) = (parts.next(), parts.next()) else {
        return;
    };
    if backend != app.config.sessions.backend.as_str() {
        return;
    }
    if session::is_alive(&app.config, name).unwrap_or(false) {
        log::info!("{id}: stopping the session {name} an interrupted run started");
        let info = SessionInfo {
            name: name.to_string(),
            backend: backend.to_string(),
            workdir: String::new(),
            branch: None,
            agent_session: parts.next().map(str::to_string),
            started_at: None,
        };
        if let Err(e) = session::kill(&app.config, &info) {
            log::warn!("cannot end the session {name}: {e:#}");
        }
    }
}

/// The state move to make once a ticket is approved (`transitions.on_approve`), as an op
/// recorded with the approval itself: a crash right after still leaves it to poll.
fn state_move_op(app: &App) -> Option<Op> {
    app.config.plane.on_approve.as_ref().map(|_| Op {
        kind: OpKind::MoveState,
        by: Holder::me(),
        steps: Vec::new(),
    })
}

/// Moves the Plane state (`transitions.on_approve`) once the ticket is active, and returns the
/// ticket as it is then: a failed move shows in its `last_error` and is retried by poll; the
/// approval stands.
fn after_approval(app: &App, ticket: Ticket) -> Ticket {
    if ticket
        .op
        .as_ref()
        .is_none_or(|o| o.kind != OpKind::MoveState)
    {
        return ticket;
    }
    super::plane_state::resume_state_move(app, &ticket.id);
    app.store.find(&ticket.id).ok().flatten().unwrap_or(ticket)
}

fn approve_without_session(app: &App, id: &TicketId, budget: Option<f64>) -> Result<Ticket> {
    let lease = op::lease(app, id, OpKind::Approve.doing())?;
    let follow_up = state_move_op(app);
    let ticket = app.store.update_ticket(id, |ticket| {
        let at = now();
        if budget.is_some() {
            ticket.budget_usd = budget;
        }
        ticket.transition(Status::Active, at, Some("no session started".into()))?;
        if let Some(left) = ticket.op.as_ref().filter(|o| o.kind != OpKind::MoveState) {
            return Err(conflict(format!(
                "{id} has an interrupted {}: finish it first, or remove the ticket",
                left.describe()
            )));
        }
        ticket.approve_text();
        ticket.run_id = Some(uuid::Uuid::new_v4().to_string());
        if ticket.issue_id.is_some() {
            ticket.op = follow_up.clone().map(Box::new);
        }
        Ok(ticket.clone())
    })?;
    drop(lease);
    log::info!("{id}: approved, now active (no session)");
    Ok(after_approval(app, ticket))
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
        let made_entry = claude::trust(&workdir.path).map_err(as_session)?;
        // Written down so `cleanup` removes the entry with the worktree, and only ours.
        if made_entry {
            let mut made = made::Made::new(id.clone());
            made.made_trust = true;
            made.worktree = Some(workdir.path.clone());
            if let Err(e) = made::append(&made::path_for(&config.state.path), &made) {
                log::warn!("{id}: cannot record its trust entry: {e:#}");
            }
        }
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
