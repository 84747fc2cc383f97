//! The workflow: one function per transition, shared by the command line and the HTTP
//! API. This is the only layer that combines the store with Plane or sessions, and it never
//! holds the store's lock across a network call or a wait on a person: a step that spans one
//! runs as a recorded, lease-backed operation ([`op`]).

mod add;
mod approve;
mod cleanup;
mod complete;
mod lost;
pub mod op;
mod plane_state;
mod poll;
mod remove;
mod report;
mod restart;
mod results;
pub mod supervise;
mod update_plane;

pub use add::{add, AddRequest};
pub use approve::{approve, ApproveOptions};
pub use cleanup::{cleanup, human_bytes, CleanupOptions, CleanupReport, TicketCleanup};
pub use complete::{complete, SummarySource};
pub use lost::flag_lost_sessions;
pub use poll::{
    poll, poll_items, poll_keeping, poll_lock_path, PollOptions, PollReport, ProjectFailure,
    ProjectViews,
};
pub use remove::{remove, RemoveOptions};
pub use restart::restart;
pub use results::{look as look_at_branch, warnings as branch_warnings};
pub use update_plane::{update_plane, UpdatePlaneOptions, UpdatePlaneOutcome};

/// The most bytes a summary may have (the same limit as a completion file).
pub const MAX_SUMMARY_BYTES: usize = 64 * 1024;
