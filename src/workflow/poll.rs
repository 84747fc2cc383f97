//! One poll tick: queue newly triggered Plane tickets, turn completion files into completed
//! tickets, flag sessions that ended without a summary.
//!
//! This is a stand-in with the final signature: a tick that finds nothing.

use anyhow::Result;

use crate::app::App;

/// How to poll.
#[derive(Debug, Clone, Default)]
pub struct PollOptions {
    /// Say what would change, change nothing.
    pub dry_run: bool,
}

/// What one tick did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PollReport {
    pub queued: usize,
    pub completed: usize,
    pub sessions_lost: usize,
    pub skipped: bool,
    pub dropped: usize,
    pub flagged: usize,
    pub changed: usize,
    pub queued_ids: Vec<String>,
}

/// Runs one poll tick.
///
/// # Errors
/// Plane could not be read, or the state file could not be changed.
pub fn poll(_app: &App, _opts: &PollOptions) -> Result<PollReport> {
    Ok(PollReport::default())
}
