use anyhow::Result;

use crate::app::App;
use crate::error::{conflict, Error};
use crate::session;
use crate::ticket::{now, OpKind, Status, Ticket, TicketId};

use super::approve::{start_session, stop_left_session};
use super::op::{self, Running};

/// An active ticket whose session is gone: starts a new session in the same workdir that
/// resumes the agent's conversation (`--resume <the same uuid>`). One recorded operation: a
/// second restart meanwhile is refused naming this one, and one interrupted after starting
/// its session has that session stopped and starts it again.
///
/// # Errors
/// Unknown ticket; not active, no session, the session still runs, or being changed by
/// another process (conflict); the session could not start (`Error::Session`).
pub fn restart(app: &App, id: &TicketId) -> Result<Ticket> {
    app.store
        .find(id)?
        .ok_or_else(|| Error::NotFound(id.to_string()))?;
    let lease = op::lease(app, id, OpKind::Restart.doing())?;
    let _starting = op::session_start_lock(app)?;
    let (op, ticket) = Running::begin_leased(app, id, OpKind::Restart, lease, |state| {
        let ticket = state.get(id)?;
        if ticket.status != Status::Active {
            return Err(conflict(format!(
                "{id} is {}: only an active ticket's session can be restarted",
                ticket.status
            )));
        }
        if ticket.session.is_none() {
            return Err(conflict(format!(
                "{id} was approved without a session: there is nothing to restart"
            )));
        }
        Ok(())
    })?;
    let old = ticket.session.clone().expect("checked when the op began");
    if let Some(left) = op
        .resumed()
        .and_then(|o| o.step("session_starting").flatten())
    {
        stop_left_session(app, id, left);
    }
    match session::is_alive(&app.config, &old.name) {
        Ok(false) => {}
        Ok(true) => {
            op.fail(false, |_| {})?;
            return Err(conflict(format!(
                "the session {} of {id} is still running: `plane-orch attach {id}`",
                old.name
            )));
        }
        Err(e) => {
            op.fail(false, |_| {})?;
            return Err(e);
        }
    }
    let agent_session = old
        .agent_session
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    op.step(
        "session_starting",
        Some(&format!(
            "{} {} {agent_session}",
            app.config.sessions.backend.as_str(),
            session::session_name(&app.config, id)
        )),
        |_| (),
    )?;
    let info = match start_session(
        app,
        id,
        &agent_session,
        old.agent_session.is_some(),
        ticket.budget_usd,
    ) {
        Ok(info) => info,
        Err(err) => {
            op.fail(false, |_| {})?;
            return Err(err);
        }
    };
    let recorded = op.finish(|ticket| {
        if ticket.status != Status::Active {
            return Err(conflict(format!(
                "{id} became {} while its session restarted",
                ticket.status
            )));
        }
        ticket.record(
            now(),
            "session_restarted",
            Some(format!(
                "session {} ({}) in {}, resuming {agent_session}",
                info.name, info.backend, info.workdir
            )),
        );
        ticket.session = Some(Box::new(info.clone()));
        ticket.session_lost_at = None;
        ticket.waiting = None;
        ticket.last_error = None;
        Ok(ticket.clone())
    });
    if recorded.is_err() {
        // Not recorded: leave no session nobody tracks.
        if let Err(e) = session::kill(&app.config, &info) {
            log::warn!("cannot end the session {}: {e:#}", info.name);
        }
    }
    recorded
}
