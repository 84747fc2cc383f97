//! Recorded operations: how a workflow step that spans network calls or sessions (approve,
//! restart, update-plane, remove, a Plane state move) is made safe against a second caller
//! and against a crash.
//!
//! - **Lease.** An operation holds an exclusive [`Lock`] on the ticket's lease file
//!   (`locks/<ID>.lock` beside the state file) for its whole life. A second operation on the
//!   ticket while it is held is a conflict (exit 4, HTTP 409) naming the holder: "CSLOG-12 is
//!   being updated in Plane by pid 4711 (plane-orch serve) since 12:03:05". The OS frees a
//!   lease when its process dies.
//! - **Record.** [`Running::begin`] writes the ticket's `op` (what, by whom, since when) under
//!   the state lock together with the checks that allow it; [`Running::step`] adds a landed
//!   step (one write, the fast one-ticket path) as soon as the network call or session start
//!   has landed; [`Running::finish`] applies the transition and clears `op` in one write.
//! - **Resumption.** An `op` whose lease is free was left by a process that died. `list`,
//!   `show` and the API show it ([`status`]), and the next operation of the same kind on the
//!   ticket resumes it: [`Running::resumed`] is the op as it was left, its steps say what has
//!   landed already. A left state move is retried by every poll until it lands.
//!
//! Adding a step to a workflow is one line once it has landed:
//!
//! ```ignore
//! op.step("link_added", Some(&link_id), |_| ())?;
//! ```
//!
//! and a resumed run checks `op.resumed_has("link_added")` (or the value it recorded) before
//! doing it again. The closure sets the ticket fields that mirror the step in the same write.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::app::App;
use crate::error::conflict;
use crate::lock::{held_by, Holder, Lock};
use crate::store::State;
use crate::ticket::{now, Op, OpKind, OpStep, Status, Ticket, TicketId};

/// The lease file of a ticket.
#[must_use]
pub fn lease_path(app: &App, id: &TicketId) -> PathBuf {
    lease_path_of(app.store.path(), id)
}

/// The lease file of a ticket of the state file at `state`.
#[must_use]
pub fn lease_path_of(state: &Path, id: &TicketId) -> PathBuf {
    locks_dir_of(state).join(format!("{id}.lock"))
}

/// The folder of lease files and the session-start lock.
#[must_use]
pub fn locks_dir(app: &App) -> PathBuf {
    locks_dir_of(app.store.path())
}

fn locks_dir_of(state: &Path) -> PathBuf {
    state
        .parent()
        .map_or_else(|| PathBuf::from("locks"), |p| p.join("locks"))
}

/// Held while a session starts: starts take turns, so `max_active_sessions` is never
/// overshot by two approvals counting at once.
///
/// # Errors
/// The lock file cannot be made or locked.
pub fn session_start_lock(app: &App) -> Result<Lock> {
    Lock::exclusive(
        &locks_dir(app).join("sessions.lock"),
        "the session-start lock",
    )
}

/// "in progress: …" or "interrupted: update_plane after comment posted" for a ticket with an
/// `op`; `None` without one.
#[must_use]
pub fn status(app: &App, ticket: &Ticket) -> Option<String> {
    status_of(app.store.path(), ticket)
}

/// [`status`] for a ticket of the state file at `state`.
#[must_use]
pub fn status_of(state: &Path, ticket: &Ticket) -> Option<String> {
    let op = ticket.op.as_ref()?;
    Some(if Lock::is_held(&lease_path_of(state, &ticket.id)) {
        format!("in progress: {} by {}", op.kind.doing(), op.by.describe())
    } else {
        format!("interrupted: {}", op.describe())
    })
}

/// Takes the ticket's lease for `doing` (words for conflicts: "being approved"), or says who
/// holds it.
///
/// # Errors
/// Conflict when another process holds it; the lock file cannot be made.
pub fn lease(app: &App, id: &TicketId, doing: &str) -> Result<Lock> {
    let path = lease_path(app, id);
    match Lock::try_exclusive_doing(&path, "the ticket's lease", doing)? {
        Some(lock) => Ok(lock),
        None => Err(held_by(&path, id.as_str(), "being changed")),
    }
}

/// Removes the lease file of a ticket no longer in the queue (dropped by poll), so lock
/// files do not pile up one per ticket ever seen.
///
/// Only its holder may remove a lock file: a process that opened the file just before the
/// unlink and then takes (or waits for) the lock finds that the path no longer names the file
/// it locked ([`Lock`] compares inodes after locking) and starts over on a fresh file, so two
/// processes never both believe they hold one ticket's lease. A lease another process holds
/// is left alone; removal is tidiness, never needed for correctness.
pub fn forget_lease(app: &App, id: &TicketId) {
    let path = lease_path(app, id);
    if !path.exists() {
        return;
    }
    if let Ok(Some(lock)) = Lock::try_exclusive(&path, "the ticket's lease") {
        lock.remove();
    }
}

/// An operation under way on one ticket; its lease is held until it is dropped.
pub struct Running<'a> {
    app: &'a App,
    id: TicketId,
    kind: OpKind,
    lease: Lock,
    /// The op left by a process that died, which this one resumes.
    resumed: Option<Op>,
}

impl<'a> Running<'a> {
    /// Takes the lease, then in one write checks the ticket with `check` and records the op.
    /// An op of the same kind left by a dead process is resumed; a left state move is taken
    /// over by any other operation (and `remove` takes over anything).
    ///
    /// # Errors
    /// The lease is held (conflict); another kind of operation was interrupted (conflict,
    /// saying how to finish it); whatever `check` returns; the store fails.
    pub fn begin(
        app: &'a App,
        id: &TicketId,
        kind: OpKind,
        check: impl FnOnce(&mut State) -> Result<()>,
    ) -> Result<(Running<'a>, Ticket)> {
        let lease = lease(app, id, kind.doing())?;
        Running::begin_leased(app, id, kind, lease, check)
    }

    /// [`Running::begin`] with the lease already taken (by [`lease`]): to take another lock
    /// after it, such as the session-start lock, and before the checks.
    ///
    /// # Errors
    /// As [`Running::begin`].
    pub fn begin_leased(
        app: &'a App,
        id: &TicketId,
        kind: OpKind,
        lease: Lock,
        check: impl FnOnce(&mut State) -> Result<()>,
    ) -> Result<(Running<'a>, Ticket)> {
        let (resumed, ticket) = app.store.update(|state| {
            let left = state.get(id)?.op.as_deref().cloned();
            if let Some(left) = &left {
                let takes_over = kind == OpKind::Remove || left.kind == OpKind::MoveState;
                if left.kind != kind && !takes_over {
                    return Err(conflict(format!(
                        "{id} has an interrupted {}: finish it first (`plane-orch {} {id}`), \
                         or remove the ticket",
                        left.describe(),
                        left.kind.as_str().replace('_', "-")
                    )));
                }
            }
            check(state)?;
            let t = state.get_mut(id)?;
            let resumed = left.filter(|l| l.kind == kind);
            if let Some(l) = &resumed {
                t.record(
                    now(),
                    "op_resumed",
                    Some(format!("resuming {}", l.describe())),
                );
            }
            t.op = Some(Box::new(Op {
                kind,
                by: Holder::me(),
                steps: resumed
                    .as_ref()
                    .map(|l| l.steps.clone())
                    .unwrap_or_default(),
            }));
            Ok((resumed, t.clone()))
        })?;
        if let Some(l) = &resumed {
            log::info!("{id}: resuming the interrupted {}", l.describe());
        }
        Ok((
            Running {
                app,
                id: id.clone(),
                kind,
                lease,
                resumed,
            },
            ticket,
        ))
    }

    #[must_use]
    pub fn app(&self) -> &'a App {
        self.app
    }

    /// The op left by a process that died, when this run resumes one.
    #[must_use]
    pub fn resumed(&self) -> Option<&Op> {
        self.resumed.as_ref()
    }

    /// Whether the op being resumed had landed `step`.
    #[must_use]
    pub fn resumed_has(&self, step: &str) -> bool {
        self.resumed.as_ref().is_some_and(|o| o.has(step))
    }

    /// Records a landed step (and, in the same write, what `also` changes on the ticket).
    ///
    /// # Errors
    /// The ticket is gone or no longer carries this op (conflict), or the store fails.
    pub fn step(
        &self,
        step: &str,
        value: Option<&str>,
        also: impl FnOnce(&mut Ticket),
    ) -> Result<Ticket> {
        let id = &self.id;
        self.app.store.update_ticket(id, |t| {
            let Some(op) = t.op.as_mut().filter(|o| o.kind == self.kind) else {
                return Err(conflict(format!(
                    "{id} changed while it was {}: nothing more was done",
                    self.kind.doing()
                )));
            };
            op.steps.push(OpStep {
                step: step.to_string(),
                at: now(),
                value: value.map(str::to_string),
            });
            also(t);
            Ok(t.clone())
        })
    }

    /// Ends the op: `apply` makes the transition and the op is cleared (or replaced by
    /// `apply` setting `t.op` to a follow-up op), in one write. The lease file is removed
    /// when the ticket is done.
    ///
    /// # Errors
    /// Whatever `apply` returns (nothing is written then), or the store fails.
    pub fn finish<T>(self, apply: impl FnOnce(&mut Ticket) -> Result<T>) -> Result<T> {
        let kind = self.kind;
        let (out, done) = self.app.store.update(|state| {
            let t = state.get_mut(&self.id)?;
            if t.op.as_ref().is_some_and(|o| o.kind == kind) {
                t.op = None;
            }
            let out = apply(t)?;
            Ok((out, t.status == Status::Done && t.op.is_none()))
        })?;
        if done {
            self.lease.remove();
        }
        Ok(out)
    }

    /// Ends the op with the whole state in hand (`remove` drops the ticket); the lease file
    /// is removed when the ticket is gone.
    ///
    /// # Errors
    /// As [`Running::finish`].
    pub fn finish_state<T>(self, apply: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let kind = self.kind;
        let id = self.id.clone();
        let (out, gone) = self.app.store.update(|state| {
            if let Ok(t) = state.get_mut(&id) {
                if t.op.as_ref().is_some_and(|o| o.kind == kind) {
                    t.op = None;
                }
            }
            let out = apply(state)?;
            Ok((out, !state.tickets.contains_key(&id)))
        })?;
        if gone {
            self.lease.remove();
        }
        Ok(out)
    }

    /// Gives the op up after a failure: `note` records it on the ticket; with `keep` the op
    /// stays, so the next run resumes from its steps, else it is cleared.
    ///
    /// # Errors
    /// The store fails.
    pub fn fail(self, keep: bool, note: impl FnOnce(&mut Ticket)) -> Result<()> {
        let kind = self.kind;
        self.app.store.update_ticket(&self.id, |t| {
            if !keep && t.op.as_ref().is_some_and(|o| o.kind == kind) {
                t.op = None;
            }
            note(t);
            Ok(())
        })
    }
}
