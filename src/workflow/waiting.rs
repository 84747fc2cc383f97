use anyhow::Result;

use crate::app::App;
use crate::ticket::{now, Status, TicketId, Waiting};

/// Marks an active ticket as waiting for the person (Claude Code's Notification hook). The
/// first notification of a wait is an event; repeats only refresh the message.
///
/// # Errors
/// Unknown ticket; the state file cannot be written.
pub fn mark_waiting(app: &App, id: &TicketId, message: &str, kind: Option<&str>) -> Result<bool> {
    app.store.update_ticket(id, |ticket| {
        if ticket.status != Status::Active {
            return Ok(false);
        }
        let at = now();
        if ticket.waiting.is_none() {
            let what = kind.unwrap_or("notification");
            ticket.record(at, "waiting", Some(format!("{what}: {message}")));
        }
        ticket.waiting = Some(Waiting {
            since: ticket.waiting.as_ref().map_or(at, |w| w.since),
            message: message.to_string(),
            kind: kind.map(str::to_string),
        });
        Ok(true)
    })
}

/// Clears `waiting`: the person answered (any prompt submitted). Nothing is written when the
/// ticket was not waiting.
///
/// # Errors
/// The state file cannot be written.
pub fn clear_waiting(app: &App, id: &TicketId) -> Result<()> {
    let cleared = app.store.update_ticket(id, |ticket| {
        ticket.waiting = None;
        Ok(())
    });
    match cleared {
        Err(e) if crate::error::Kind::of(&e) == crate::error::Kind::NotFound => Ok(()),
        other => other,
    }
}
