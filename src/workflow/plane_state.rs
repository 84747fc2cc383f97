//! Moving a ticket's Plane state (`plane.transitions`), shared by approve and update-plane.

use anyhow::Result;

use crate::app::App;
use crate::plane::types::State as PlaneState;
use crate::plane::{self, Client};
use crate::ticket::{now, Status, TicketId};

/// The UUID of the state named `name` in `project` (case-insensitive, exactly one).
///
/// # Errors
/// `Error::Plane` when Plane fails; `Error::Config` when no or several states have the name.
pub(crate) fn resolve_state(
    client: &Client,
    project: &str,
    name: &str,
    setting: &str,
) -> Result<String> {
    let states = client.states(project)?;
    let state = plane::find_by_name(
        &states,
        |s: &PlaneState| &s.name,
        name,
        "state",
        project,
        setting,
    )?;
    Ok(state.id.clone())
}

/// After an approval: moves the ticket's Plane work item to `transitions.on_approve` when that
/// is set. A failure is recorded on the ticket (`last_error` and an event) and logged as a
/// warning; the approval stands. Tickets with no Plane work item are left alone.
pub(crate) fn move_state_on_approve(app: &App, id: &TicketId) {
    let cfg = &app.config.plane;
    let Some(target) = cfg.on_approve.clone() else {
        return;
    };
    let Ok(state) = app.store.load() else { return };
    let Some(ticket) = state.tickets.get(id) else {
        return;
    };
    let (Some(project), Some(issue)) = (ticket.project_id.clone(), ticket.issue_id.clone()) else {
        log::debug!("{id} has no Plane work item: its state is not moved");
        return;
    };
    if ticket.status != Status::Active || ticket.plane_sync.approve_state_set_at.is_some() {
        return;
    }
    let result = app.plane_client().and_then(|client| {
        let state_id = resolve_state(&client, &project, &target, "plane.transitions.on_approve")?;
        client.set_state(&project, &issue, &state_id)
    });
    let applied = app.store.update(|state| {
        let Some(t) = state.tickets.get_mut(id) else {
            return Ok(());
        };
        let at = now();
        match &result {
            Ok(()) => {
                t.plane_sync.approve_state_set_at = Some(at);
                t.record(
                    at,
                    "plane_state",
                    Some(format!("moved to {target:?} in Plane")),
                );
            }
            Err(e) => {
                let msg =
                    format!("approved, but the Plane state was not moved to {target:?}: {e:#}");
                t.last_error = Some(msg.clone());
                t.record(at, "plane_error", Some(msg));
            }
        }
        Ok(())
    });
    if let Err(e) = &result {
        log::warn!("{id} is approved, but its Plane state was not moved to {target:?}: {e:#}");
    }
    if let Err(e) = applied {
        log::warn!("{id}: cannot record the Plane state change: {e:#}");
    }
}
