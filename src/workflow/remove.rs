use anyhow::Result;

use crate::app::App;
use crate::ticket::{now, Ticket, TicketId};

/// How to remove.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    /// End the ticket's session too.
    pub kill_session: bool,
}

/// Drops a ticket from the queue, whatever its status. Its Plane issue is remembered as
/// dismissed, so polling does not queue it again until it has been re-triggered.
///
/// # Errors
/// Unknown ticket (not found).
pub fn remove(app: &App, id: &TicketId, _opts: RemoveOptions) -> Result<Ticket> {
    let ticket = app.store.update(|state| {
        state.get(id)?;
        let ticket = state.tickets.remove(id).expect("checked above");
        if let Some(issue) = &ticket.issue_id {
            state.dismissed.insert(issue.clone(), now());
        }
        Ok(ticket)
    })?;
    log::info!("{id}: removed from the queue (was {})", ticket.status);
    Ok(ticket)
}
