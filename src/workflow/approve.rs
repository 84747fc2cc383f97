use anyhow::Result;

use crate::app::App;
use crate::ticket::{now, Snapshot, Status, Ticket, TicketId};

/// How to approve.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApproveOptions {
    /// Mark the ticket active without starting a session (the person works on it themselves).
    pub no_session: bool,
}

/// pending → active. Freezes what the person approved as `approved_snapshot`: the agent is
/// given that text, never a later edit.
///
/// # Errors
/// Unknown ticket (not found); not pending (conflict).
pub fn approve(app: &App, id: &TicketId, _opts: ApproveOptions) -> Result<Ticket> {
    let ticket = app.store.update(|state| {
        let ticket = state.get_mut(id)?;
        let at = now();
        ticket.transition(Status::Active, at, Some("no session started".into()))?;
        ticket.approved_snapshot = Some(Snapshot {
            title: ticket.title.clone(),
            description_html: ticket.description_html.clone(),
            description_text: ticket.description_text.clone(),
            url: ticket.url.clone(),
        });
        ticket.run_id = Some(uuid::Uuid::new_v4().to_string());
        Ok(ticket.clone())
    })?;
    super::plane_state::move_state_on_approve(app, id);
    Ok(ticket)
}
