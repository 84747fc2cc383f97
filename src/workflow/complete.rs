use std::fmt;

use anyhow::Result;

use crate::app::App;
use crate::error::invalid;
use crate::ticket::{now, Status, Ticket, TicketId};

use super::MAX_SUMMARY_BYTES;

/// Where a summary came from, for the ticket's audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummarySource {
    Argument,
    File,
    Stdin,
    Hook,
    Worker,
    CompletionFile,
    Api,
}

impl fmt::Display for SummarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SummarySource::Argument => "the command line",
            SummarySource::File => "a file",
            SummarySource::Stdin => "standard input",
            SummarySource::Hook => "/complete in Claude Code",
            SummarySource::Worker => "the worker's prompt",
            SummarySource::CompletionFile => "a completion file",
            SummarySource::Api => "the HTTP API",
        })
    }
}

/// Checks a summary: surrounding white space dropped, not empty, at most 64 KiB.
///
/// # Errors
/// `Error::Invalid` saying which.
pub fn clean_summary(summary: &str) -> Result<String> {
    let s = summary.trim();
    if s.is_empty() {
        return Err(invalid("the summary is empty: say what was done"));
    }
    if s.len() > MAX_SUMMARY_BYTES {
        return Err(invalid(format!(
            "the summary has {} bytes; at most {MAX_SUMMARY_BYTES} are allowed",
            s.len()
        )));
    }
    Ok(s.to_string())
}

/// active → completed with the summary. Clears `waiting`: nobody needs to answer any more.
///
/// # Errors
/// An empty or oversized summary (invalid); unknown ticket; not active (conflict).
pub fn complete(app: &App, id: &TicketId, summary: &str, source: SummarySource) -> Result<Ticket> {
    let summary = clean_summary(summary)?;
    let ticket = app.store.update_ticket(id, |ticket| {
        ticket.transition(
            Status::Completed,
            now(),
            Some(format!("summary from {source}")),
        )?;
        ticket.summary = Some(summary);
        ticket.waiting = None;
        Ok(ticket.clone())
    })?;
    log::info!("{id}: completed with a summary from {source}");
    // What the branch holds, for the reviewer: looked at after the lock is released.
    // A failure here is logged: the completion itself is recorded.
    Ok(
        super::results::refresh(app, ticket.clone()).unwrap_or_else(|e| {
            log::warn!("{id}: cannot record what its branch holds: {e:#}");
            ticket
        }),
    )
}
