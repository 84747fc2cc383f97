//! completed → done: post the summary to Plane and move the ticket's state.
//!
//! This is a stand-in with the final signature: it checks the ticket and then reports that
//! Plane is not configured, so the callers (the command line and the HTTP API) are built and
//! tested against the real contract.

use anyhow::Result;

use crate::app::App;
use crate::error::{conflict, Error};
use crate::ticket::{Status, Ticket, TicketId};

/// How to update Plane.
#[derive(Debug, Clone, Default)]
pub struct UpdatePlaneOptions {
    /// Say what would be done, change nothing.
    pub dry_run: bool,
    /// A non-empty summary replacing the recorded one (an event keeps the old).
    pub summary: Option<String>,
}

/// What `update_plane` did.
#[derive(Debug, Clone)]
pub struct UpdatePlaneOutcome {
    pub ticket: Ticket,
    pub comment_posted: bool,
    pub state_updated: bool,
    pub plan: Vec<String>,
}

/// completed → done: posts the summary as a Plane comment and moves the state (`on_update`).
///
/// # Errors
/// Unknown ticket (not found); not completed (conflict); Plane failed (plane).
pub fn update_plane(
    app: &App,
    id: &TicketId,
    _opts: &UpdatePlaneOptions,
) -> Result<UpdatePlaneOutcome> {
    let state = app.store.load()?;
    let ticket = state.get(id)?;
    if ticket.status != Status::Completed {
        return Err(conflict(format!(
            "{id} is {}: only a completed ticket can be posted to Plane",
            ticket.status
        )));
    }
    Err(Error::Plane(format!(
        "Plane is not configured: cannot post the summary of {id}; set plane.workspace_slug and {}",
        app.config.plane.api_key_env
    ))
    .into())
}
