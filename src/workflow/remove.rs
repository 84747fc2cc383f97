use anyhow::Result;

use crate::app::App;
use crate::session;
use crate::store::State;
use crate::ticket::{now, OpKind, Ticket, TicketId};

use super::op::{self, Running};

/// How to remove.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    /// End the ticket's session too.
    pub kill_session: bool,
}

/// Drops a ticket from the queue, whatever its status. Its Plane issue is remembered as
/// dismissed, so polling does not queue it again until it has been re-triggered. Never while
/// another operation runs on the ticket (conflict, naming it); an interrupted one is taken
/// over. With `kill_session` its session is ended first, as a recorded operation: a remove
/// interrupted after that is finished by the next.
///
/// # Errors
/// Unknown ticket (not found); another operation runs on it (conflict); the session could not
/// be ended (the ticket stays).
pub fn remove(app: &App, id: &TicketId, opts: RemoveOptions) -> Result<Ticket> {
    if !opts.kill_session {
        // One write: nothing to record on the way.
        let lease = op::lease(app, id, OpKind::Remove.doing())?;
        let ticket = app.store.update(|state| drop_ticket(state, id))?;
        lease.remove();
        super::cleanup::note_removed(app, id);
        log::info!("{id}: removed from the queue (was {})", ticket.status);
        // Its activity goes with it: a ticket queued again under this id starts afresh.
        app.activity.remove(id);
        return Ok(ticket);
    }
    let (op, ticket) = Running::begin(app, id, OpKind::Remove, |state| {
        state.get(id)?;
        Ok(())
    })?;
    if opts.kill_session && !op.resumed_has("session_stopped") {
        if let Some(s) = &ticket.session {
            if let Err(e) = session::kill(&app.config, s) {
                op.fail(false, |_| {})?;
                return Err(e.context(format!(
                    "the session {} of {id} could not be ended: {id} stays in the queue",
                    s.name
                )));
            }
            op.step("session_stopped", Some(&s.name), |_| ())?;
        }
    }
    let ticket = op.finish_state(|state| drop_ticket(state, id))?;
    super::cleanup::note_removed(app, id);
    log::info!("{id}: removed from the queue (was {})", ticket.status);
    app.activity.remove(id);
    Ok(ticket)
}

fn drop_ticket(state: &mut State, id: &TicketId) -> Result<Ticket> {
    let mut ticket = state
        .tickets
        .remove(id)
        .ok_or_else(|| crate::error::Error::NotFound(id.to_string()))?;
    if let Some(issue) = &ticket.issue_id {
        state.dismissed.insert(issue.clone(), now());
    }
    ticket.op = None;
    Ok(ticket)
}
