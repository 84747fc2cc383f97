use anyhow::Result;

use crate::app::App;
use crate::session;
use crate::ticket::{now, Ticket, TicketId};

/// How to remove.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    /// End the ticket's session too.
    pub kill_session: bool,
}

/// Drops a ticket from the queue, whatever its status. Its Plane issue is remembered as
/// dismissed, so polling does not queue it again until it has been re-triggered. With
/// `kill_session` its session is ended after the lock is released.
///
/// # Errors
/// Unknown ticket (not found); the session could not be ended (the ticket is gone already).
pub fn remove(app: &App, id: &TicketId, opts: RemoveOptions) -> Result<Ticket> {
    let ticket = app.store.update(|state| {
        state.get(id)?;
        let ticket = state.tickets.remove(id).expect("checked above");
        if let Some(issue) = &ticket.issue_id {
            state.dismissed.insert(issue.clone(), now());
        }
        Ok(ticket)
    })?;
    log::info!("{id}: removed from the queue (was {})", ticket.status);
    // Its activity goes with it: a ticket queued again under this id starts afresh.
    app.activity.remove(id);
    if opts.kill_session {
        if let Some(s) = &ticket.session {
            session::kill(&app.config, s).map_err(|e| {
                e.context(format!(
                    "{id} was removed, but its session {} could not be ended",
                    s.name
                ))
            })?;
        }
    }
    Ok(ticket)
}
