use anyhow::Result;

use crate::app::App;
use crate::session;
use crate::ticket::{now, Status, Ticket};

fn is_candidate(t: &Ticket) -> bool {
    t.status == Status::Active
        && t.session.is_some()
        && t.summary.is_none()
        && t.session_lost_at.is_none()
}

/// Flags active tickets whose session has ended without a summary: `session_lost_at` and one
/// `session_lost` event, once (a ticket already flagged is left alone until `restart`).
/// Returns the ids of those newly flagged (with `dry_run`, of those that would be; nothing is
/// written).
///
/// # Errors
/// The state file or the session backend cannot be read.
pub fn flag_lost_sessions(app: &App, dry_run: bool) -> Result<Vec<String>> {
    let state = app.store.load()?;
    let candidates: Vec<&Ticket> = state.tickets.values().filter(|t| is_candidate(t)).collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let live = session::live_sessions(&app.config)?;
    let lost: Vec<(crate::ticket::TicketId, crate::ticket::SessionInfo)> = candidates
        .into_iter()
        .filter_map(|t| {
            let s = t.session.as_deref()?;
            (!live.contains(&s.name)).then(|| (t.id.clone(), s.clone()))
        })
        .collect();
    if dry_run || lost.is_empty() {
        return Ok(lost.iter().map(|(id, _)| id.to_string()).collect());
    }
    app.store.update(|state| {
        let at = now();
        let mut flagged = Vec::new();
        for (id, seen) in &lost {
            let Some(ticket) = state.tickets.get_mut(id) else {
                continue;
            };
            // Re-checked under the lock: a restart or completion since the check wins.
            if !is_candidate(ticket) || ticket.session.as_deref() != Some(seen) {
                continue;
            }
            ticket.session_lost_at = Some(at);
            ticket.record(
                at,
                "session_lost",
                Some(format!(
                    "session {} ended without a summary: `plane-orch restart {id}` resumes it, \
                     `plane-orch complete {id} SUMMARY` finishes it",
                    seen.name
                )),
            );
            flagged.push(id.to_string());
        }
        Ok(flagged)
    })
}
