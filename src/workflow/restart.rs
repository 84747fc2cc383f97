use anyhow::Result;

use crate::app::App;
use crate::error::conflict;
use crate::session;
use crate::ticket::{now, Status, Ticket, TicketId};

use super::approve::{start_session, Claim};

/// An active ticket whose session is gone: starts a new session in the same workdir that
/// resumes the agent's conversation (`--resume <the same uuid>`).
///
/// # Errors
/// Unknown ticket; not active, no session, or the session still runs (conflict); the session
/// could not start (`Error::Session`).
pub fn restart(app: &App, id: &TicketId) -> Result<Ticket> {
    app.store.load()?.get(id)?;
    let _claim = Claim::take(app, id)?;
    let ticket = app.store.load()?.get(id)?.clone();
    if ticket.status != Status::Active {
        return Err(conflict(format!(
            "{id} is {}: only an active ticket's session can be restarted",
            ticket.status
        )));
    }
    let Some(old) = ticket.session.clone() else {
        return Err(conflict(format!(
            "{id} was approved without a session: there is nothing to restart"
        )));
    };
    if session::is_alive(&app.config, &old.name)? {
        return Err(conflict(format!(
            "the session {} of {id} is still running: `plane-orch attach {id}`",
            old.name
        )));
    }
    let agent_session = old
        .agent_session
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let info = start_session(
        app,
        id,
        &agent_session,
        old.agent_session.is_some(),
        ticket.budget_usd,
    )?;
    app.store.update(|state| {
        let ticket = state.get_mut(id)?;
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
        ticket.session = Some(info.clone());
        ticket.session_lost_at = None;
        ticket.waiting = None;
        ticket.last_error = None;
        Ok(ticket.clone())
    })
}
