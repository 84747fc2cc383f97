//! Moving a ticket's Plane state (`plane.transitions`): approve's move (retried by poll until
//! it lands) and the state lookup update-plane shares.

use anyhow::Result;

use crate::app::App;
use crate::lock::Lock;
use crate::plane::types::State as PlaneState;
use crate::plane::{self, Client};
use crate::ticket::{now, OpKind, Status, TicketId};

use super::op::lease_path;

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

/// Makes the state move a ticket's `op` asks for (`transitions.on_approve`, recorded with the
/// approval), unless another process is making it. Landed: the op is cleared and the move
/// recorded. Failed: the failure is recorded (`last_error`, an event when it is new) and
/// logged as a warning, and the op stays for the next poll to retry. A ticket with no Plane
/// work item, or a setting that was removed meanwhile, just has the op cleared.
pub(crate) fn resume_state_move(app: &App, id: &TicketId) {
    let Ok(Some(lease)) = Lock::try_exclusive_doing(
        &lease_path(app, id),
        "the ticket's lease",
        OpKind::MoveState.doing(),
    ) else {
        return;
    };
    let Ok(Some(ticket)) = app.store.find(id) else {
        return;
    };
    if ticket
        .op
        .as_ref()
        .is_none_or(|o| o.kind != OpKind::MoveState)
    {
        return;
    }
    let target = app.config.plane.on_approve.clone();
    let (Some(project), Some(issue), Some(target)) =
        (ticket.project_id.clone(), ticket.issue_id.clone(), target)
    else {
        log::debug!("{id}: no Plane work item or no plane.transitions.on_approve: no state move");
        let _ = clear(app, id, |_| {});
        return;
    };
    let result = app.plane_client().and_then(|client| {
        let state_id = resolve_state(&client, &project, &target, "plane.transitions.on_approve")?;
        client.set_state(&project, &issue, &state_id)
    });
    let applied = match &result {
        Ok(()) => clear(app, id, |t| {
            let at = now();
            t.plane_sync.approve_state_set_at = Some(at);
            if t.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with(MOVE_FAILED))
            {
                t.last_error = None;
            }
            t.record(
                at,
                "plane_state",
                Some(format!("moved to {target:?} in Plane")),
            );
        }),
        Err(e) => {
            log::warn!("{id} is approved, but its Plane state was not moved to {target:?}: {e:#}");
            let msg = format!("{MOVE_FAILED} {target:?}: {e:#}; poll tries again");
            app.store.update_ticket(id, |t| {
                if t.last_error.as_ref() != Some(&msg) {
                    t.last_error = Some(msg.clone());
                    t.record(now(), "plane_error", Some(msg.clone()));
                }
                Ok(())
            })
        }
    };
    if let Err(e) = applied {
        log::warn!("{id}: cannot record the Plane state change: {e:#}");
    }
    drop(lease);
}

const MOVE_FAILED: &str = "approved, but the Plane state was not moved to";

/// Clears a state-move op, with `also` in the same write.
fn clear(app: &App, id: &TicketId, also: impl FnOnce(&mut crate::ticket::Ticket)) -> Result<()> {
    app.store.update_ticket(id, |t| {
        if t.op.as_ref().is_some_and(|o| o.kind == OpKind::MoveState) {
            t.op = None;
        }
        also(t);
        Ok(())
    })
}

/// Every state move left to do (failed, or never tried because its process died), tried
/// once each; returns the ids tried. Found without decoding the queue: only a ticket's own
/// `op` can hold this byte run (inside a JSON string every `"` is escaped).
pub(crate) fn resume_state_moves(app: &App) -> Vec<TicketId> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: TicketId,
    }
    const KEY: &[u8] = b"\"op\":{\"kind\":\"move_state\"";
    let mut ids = Vec::new();
    let scanned = app.store.load_where_with(
        |_| false,
        |status, raw| {
            if status != Status::Done && memchr::memmem::find(raw, KEY).is_some() {
                let id = serde_json::from_slice::<IdOnly>(raw)?.id;
                // A file read a second way hands a ticket on again.
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Ok(())
        },
    );
    if let Err(e) = scanned {
        log::warn!("cannot look for Plane state moves left to do: {e:#}");
        return Vec::new();
    }
    for id in &ids {
        resume_state_move(app, id);
    }
    ids
}
