//! completed → done: the summary goes to Plane as a comment, then the work item moves to
//! `transitions.on_update`. It runs as one recorded operation ([`super::op`]): each step is
//! recorded on the ticket as soon as it lands, so running it again after a failure or a crash
//! never posts a second comment, and two callers at once never both post.

use anyhow::Result;

use crate::app::App;
use crate::error::{conflict, invalid, Error};
use crate::plane::{self, Client};
use crate::ticket::{now, OpKind, Status, Ticket, TicketId};

use super::op::Running;

use super::complete::clean_summary;
use super::plane_state::resolve_state;

/// How to update Plane.
#[derive(Debug, Clone, Default)]
pub struct UpdatePlaneOptions {
    /// Send nothing; `plan` says what would be done.
    pub dry_run: bool,
    /// Replaces the recorded summary when non-empty (an event keeps the old).
    pub summary: Option<String>,
    /// Post even when the branch warnings say not to (no commits, commits on no remote).
    pub force: bool,
    /// Mark the ticket done without asking Plane anything (recorded in its `done` event).
    pub no_plane: bool,
}

/// The `done` event's detail of a ticket marked done with `--no-plane`.
pub const NOT_POSTED: &str = "marked done without posting to Plane (update-plane --no-plane)";

/// What update-plane did.
#[derive(Debug, Clone)]
pub struct UpdatePlaneOutcome {
    pub ticket: Ticket,
    /// The summary comment is in Plane (posted now or earlier).
    pub comment_posted: bool,
    /// The comment was edited to hold a corrected summary.
    pub comment_edited: bool,
    /// The state was moved to `on_update` (now or earlier).
    pub state_updated: bool,
    /// Plane no longer has the work item (deleted there): the ticket was finished as done
    /// with that recorded, as there is nothing left to update.
    pub item_deleted: bool,
    /// What --dry-run would do.
    pub plan: Vec<String>,
    /// The branch warnings, posted past with `force` (or what would stop a real run).
    pub warnings: Vec<String>,
}

/// The comment's idempotency key: unique per approval of the ticket, so a retry gets Plane's
/// 409 and a re-triggered, re-approved ticket gets a new comment.
#[must_use]
pub fn external_id(ticket: &Ticket) -> String {
    let run = ticket.run_id.clone().unwrap_or_else(|| {
        ticket
            .approved_at
            .unwrap_or(ticket.queued_at)
            .timestamp_millis()
            .to_string()
    });
    format!("{}:{run}", ticket.id)
}

/// The comment's HTML: the report for the reviewer (see `report`).
#[must_use]
pub fn comment_html(ticket: &Ticket) -> String {
    super::report::comment_html(ticket)
}

fn must_be_completed(ticket: &Ticket) -> Result<()> {
    if ticket.status != Status::Completed {
        // The one transition function words the refusal.
        ticket.clone().transition(Status::Done, now(), None)?;
    }
    Ok(())
}

fn has_summary(ticket: &Ticket) -> Result<()> {
    if ticket
        .summary
        .as_deref()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(invalid(format!(
            "{} has no summary to post: pass one (the API's \"summary\")",
            ticket.id
        )));
    }
    Ok(())
}

/// Applies a recorded step under the lock, re-checking that the ticket is still completed.
pub(super) fn apply(app: &App, id: &TicketId, step: impl FnOnce(&mut Ticket)) -> Result<Ticket> {
    app.store.update(|state| {
        let t = state.get_mut(id)?;
        if t.status != Status::Completed {
            return Err(conflict(format!(
                "{id} changed to {} while Plane was being updated: nothing more was done",
                t.status
            )));
        }
        step(t);
        Ok(t.clone())
    })
}

/// completed → done: post the summary (or edit the posted comment when the summary was
/// corrected), move the state, mark done. One recorded operation: a second caller meanwhile
/// is refused naming this one, and a run after a crash resumes from the recorded steps,
/// looking for its comment in Plane before posting.
///
/// # Errors
/// Unknown ticket (not found); not completed, or being updated by another process
/// (conflict); Plane not configured (config); Plane failed or has no such work item
/// (`Error::Plane`, the ticket stays completed with `last_error` set).
pub fn update_plane(
    app: &App,
    id: &TicketId,
    opts: &UpdatePlaneOptions,
) -> Result<UpdatePlaneOutcome> {
    let replacement = match opts.summary.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Some(clean_summary(s)?),
        _ => None,
    };
    let replace = |t: &mut Ticket| {
        if let Some(s) = &replacement {
            if t.summary.as_ref() != Some(s) {
                let old = t.summary.replace(s.clone());
                t.record(now(), "summary_replaced", old);
                // Plane holds the old text: the comment is edited, not posted again.
                if t.plane_sync.comment_posted_at.is_some() {
                    t.plane_sync.comment_outdated = true;
                }
            }
        }
    };
    if opts.dry_run {
        let mut ticket = app.store.load()?.get(id)?.clone();
        must_be_completed(&ticket)?;
        replace(&mut ticket);
        has_summary(&ticket)?;
        if let Some(b) = super::results::look(&app.config, &ticket) {
            ticket.branch = Some(Box::new(b));
        }
        let warnings = if ticket.plane_sync.comment_posted_at.is_none() {
            super::results::warnings(&app.config, &ticket)
        } else {
            Vec::new()
        };
        return Ok(UpdatePlaneOutcome {
            plan: plan(app, &ticket, &warnings),
            comment_posted: false,
            comment_edited: false,
            state_updated: false,
            item_deleted: false,
            warnings,
            ticket,
        });
    }
    if opts.no_plane {
        let lease = super::op::lease(app, id, OpKind::UpdatePlane.doing())?;
        let ticket = app.store.update(|state| {
            let t = state.get_mut(id)?;
            must_be_completed(t)?;
            replace(t);
            has_summary(t)?;
            t.op = None;
            t.transition(Status::Done, now(), Some(NOT_POSTED.into()))?;
            Ok(t.clone())
        })?;
        lease.remove();
        return Ok(UpdatePlaneOutcome {
            comment_posted: ticket.plane_sync.comment_posted_at.is_some(),
            comment_edited: false,
            state_updated: ticket.plane_sync.state_updated_at.is_some(),
            item_deleted: false,
            plan: Vec::new(),
            warnings: Vec::new(),
            ticket,
        });
    }
    let (op, ticket) = Running::begin(app, id, OpKind::UpdatePlane, |state| {
        let t = state.get_mut(id)?;
        must_be_completed(t)?;
        replace(t);
        has_summary(t)
    })?;
    // The branch, looked at again and warned about before anything is sent. Only before the
    // comment is posted: a retry after a forced post is not stopped again.
    let checked = super::results::refresh(app, ticket).and_then(|ticket| {
        let warnings = if ticket.plane_sync.comment_posted_at.is_none() {
            super::results::warnings(&app.config, &ticket)
        } else {
            Vec::new()
        };
        if !warnings.is_empty() && !opts.force {
            return Err(conflict(format!(
                "{id} was not posted to Plane: {}; pass --force (the API's \"force\": true) \
                 to post anyway",
                warnings.join("; ")
            )));
        }
        Ok((ticket, warnings))
    });
    let (ticket, warnings) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            op.fail(false, |_| {})?;
            return Err(e);
        }
    };
    let result = app
        .plane_client()
        .and_then(|client| write_back(&op, &client, ticket));
    match result {
        Ok((_, edited)) => {
            let ticket = op.finish(|t| {
                t.transition(Status::Done, now(), Some("summary posted to Plane".into()))?;
                Ok(t.clone())
            })?;
            Ok(UpdatePlaneOutcome {
                comment_posted: ticket.plane_sync.comment_posted_at.is_some(),
                comment_edited: edited,
                state_updated: ticket.plane_sync.state_updated_at.is_some(),
                item_deleted: false,
                plan: Vec::new(),
                warnings,
                ticket,
            })
        }
        Err(err) if crate::error::is_item_deleted(&err) => finish_deleted(op, id, &err),
        Err(err) => {
            let msg = format!("{err:#}");
            // The op stays: a POST that timed out may still have landed, and the next run
            // looks for its comment before posting again.
            let kept = op.fail(true, |t| {
                if t.status == Status::Completed {
                    t.last_error = Some(msg.clone());
                    t.record(now(), "plane_error", Some(msg.clone()));
                }
            });
            if let Err(e) = kept {
                log::warn!("{id}: cannot record the Plane error: {e:#}");
            }
            Err(err)
        }
    }
}

/// The steps against Plane, each recorded as soon as it lands; returns the ticket and
/// whether the comment was edited.
fn write_back(op: &Running<'_>, client: &Client, mut ticket: Ticket) -> Result<(Ticket, bool)> {
    let id = ticket.id.clone();
    // A ticket added by hand is found by its readable id.
    let (project, issue) = match (ticket.project_id.clone(), ticket.issue_id.clone()) {
        (Some(p), Some(i)) => (p, i),
        _ => {
            // Plane's sequence numbers are digits; Plane answers 500 to anything else.
            let numeric = id
                .as_str()
                .split_once('-')
                .is_some_and(|(_, seq)| seq.bytes().all(|b| b.is_ascii_digit()));
            let found = if numeric {
                client.work_item_by_identifier(&id)?
            } else {
                None
            };
            let item = found.ok_or_else(|| {
                Error::Plane(format!(
                    "{id} is not a Plane work item; remove it or fix the id \
                     (Plane has no {id} in workspace {:?})",
                    client.slug()
                ))
            })?;
            let project = item
                .project
                .clone()
                .ok_or_else(|| Error::Plane(format!("Plane's answer for {id} names no project")))?;
            ticket = op.step("linked", Some(&item.id), |t| {
                t.issue_id = Some(item.id.clone());
                t.project_id = Some(project.clone());
                t.record(
                    now(),
                    "plane_linked",
                    Some(format!("found in Plane as work item {}", item.id)),
                );
            })?;
            (project, item.id)
        }
    };

    let key = external_id(&ticket);
    // The push comes before the comment, so the branch it names is there.
    if op.app().config.automation.push && ticket.plane_sync.comment_posted_at.is_none() {
        ticket = super::results::push_step(op.app(), ticket)?;
    }
    if ticket.plane_sync.comment_posted_at.is_none() {
        // After a crash the comment may be in Plane already: look before posting.
        let found = if op.resumed().is_some() {
            client.comment_by_external_id(&project, &issue, &key)?
        } else {
            None
        };
        let (comment_id, detail) = match found {
            Some(c) => {
                let detail =
                    format!("comment {c} was in Plane already (posted before an interruption)");
                (Some(c), detail)
            }
            None => {
                let posted = client.post_comment(&project, &issue, &comment_html(&ticket), &key)?;
                let detail = if posted.already {
                    "Plane had the summary comment already (409): not posted again".to_string()
                } else {
                    format!(
                        "summary posted as comment {}",
                        posted.id.as_deref().unwrap_or("?")
                    )
                };
                (posted.id, detail)
            }
        };
        ticket = op.step("comment_posted", comment_id.as_deref(), |t| {
            let at = now();
            t.plane_sync.comment_posted_at = Some(at);
            t.plane_sync.comment_id.clone_from(&comment_id);
            // What was posted is the current summary.
            t.plane_sync.comment_outdated = false;
            t.record(at, "plane_comment", Some(detail));
        })?;
    }

    let mut edited = false;
    if ticket.plane_sync.comment_outdated {
        let comment = match ticket.plane_sync.comment_id.clone() {
            Some(c) => c,
            None => client
                .comment_by_external_id(&project, &issue, &key)?
                .ok_or_else(|| {
                    Error::Plane(format!(
                        "the summary comment of {id} (external_id {key}) is not in Plane any \
                         more: nothing to correct"
                    ))
                })?,
        };
        client.patch_comment(&project, &issue, &comment, &comment_html(&ticket))?;
        ticket = op.step("comment_edited", Some(&comment), |t| {
            t.plane_sync.comment_outdated = false;
            t.plane_sync.comment_id = Some(comment.clone());
            t.record(
                now(),
                "plane_comment_edited",
                Some(format!("comment {comment} now holds the corrected summary")),
            );
        })?;
        edited = true;
    }

    // The review link, added to the work item once.
    if ticket.plane_sync.link_added_at.is_none() {
        ticket = super::results::link_step(op.app(), client, &project, &issue, ticket)?;
    }

    if let (Some(target), None) = (app_on_update(op), ticket.plane_sync.state_updated_at) {
        let state_id = resolve_state(client, &project, &target, "plane.transitions.on_update")?;
        client.set_state(&project, &issue, &state_id)?;
        ticket = op.step("state_moved", Some(&state_id), |t| {
            let at = now();
            t.plane_sync.state_updated_at = Some(at);
            t.record(
                at,
                "plane_state",
                Some(format!("moved to {target:?} in Plane")),
            );
        })?;
    }
    Ok((ticket, edited))
}

fn app_on_update(op: &Running<'_>) -> Option<String> {
    op.app().config.plane.on_update.clone()
}

/// The work item is gone from Plane: retrying can never succeed, so the ticket is finished as
/// done with the deletion recorded (and whatever reached Plane before it).
fn finish_deleted(
    op: Running<'_>,
    id: &TicketId,
    err: &anyhow::Error,
) -> Result<UpdatePlaneOutcome> {
    let why = format!("{err:#}");
    log::warn!("{id}: {why}; finishing it as done");
    let ticket = op.finish(|t| {
        let at = now();
        t.record(at, "plane_item_deleted", Some(why.clone()));
        t.transition(
            Status::Done,
            at,
            Some("the work item was deleted in Plane: nothing left to update".into()),
        )?;
        Ok(t.clone())
    })?;
    Ok(UpdatePlaneOutcome {
        comment_posted: ticket.plane_sync.comment_posted_at.is_some(),
        comment_edited: false,
        state_updated: ticket.plane_sync.state_updated_at.is_some(),
        item_deleted: true,
        plan: Vec::new(),
        warnings: Vec::new(),
        ticket,
    })
}

/// What a real run would do, for --dry-run: nothing is sent to find out.
fn plan(app: &App, ticket: &Ticket, warnings: &[String]) -> Vec<String> {
    let cfg = &app.config.plane;
    let id = &ticket.id;
    let mut plan = Vec::new();
    for w in warnings {
        plan.push(format!("warning (stops the run unless --force): {w}"));
    }
    if let (true, Some(b)) = (app.config.automation.push, &ticket.branch) {
        if ticket.plane_sync.comment_posted_at.is_none() {
            plan.push(format!(
                "push {} to {} (never forced)",
                b.name, app.config.automation.remote
            ));
        }
    }
    if let Some(why) = plane::not_configured(cfg, false) {
        plan.push(format!("cannot run: Plane is not configured ({why})"));
    }
    if ticket.issue_id.is_none() {
        plan.push(format!(
            "look up {id} in Plane by its readable id (it was added by hand)"
        ));
    }
    match ticket.plane_sync.comment_posted_at {
        Some(at) if ticket.plane_sync.comment_outdated => plan.push(format!(
            "edit the comment posted at {} to hold the corrected summary",
            at.to_rfc3339()
        )),
        Some(at) => plan.push(format!(
            "skip the comment: it was posted at {}",
            at.to_rfc3339()
        )),
        None => {
            plan.push(format!(
                "post the summary as a comment (external_id {})",
                external_id(ticket)
            ));
            plan.push(format!("comment_html: {}", comment_html(ticket)));
        }
    }
    if ticket.plane_sync.link_added_at.is_none() {
        if let Some((url, _)) = super::results::link(&app.config, ticket) {
            plan.push(format!("add the link {url} to the work item (once)"));
        }
    }
    match (&cfg.on_update, ticket.plane_sync.state_updated_at) {
        (Some(_), Some(at)) => plan.push(format!(
            "skip the state change: it was made at {}",
            at.to_rfc3339()
        )),
        (Some(target), None) => plan.push(format!("move the work item to state {target:?}")),
        (None, _) => {
            plan.push("leave the state alone (plane.transitions.on_update is not set)".into());
        }
    }
    plan.push(format!("mark {id} done"));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{NewTicket, SessionInfo};

    #[test]
    fn the_comment_escapes_the_summary_and_names_the_session() {
        let mut t = Ticket::new(
            NewTicket::manual(TicketId::parse("A-1").unwrap(), "t"),
            now(),
        );
        t.summary = Some("<script>x</script> & done\n\nsecond".into());
        t.session = Some(Box::new(SessionInfo {
            name: "plane-A-1".into(),
            backend: "tmux".into(),
            workdir: "/w".into(),
            branch: Some("claude/a-1".into()),
            agent_session: None,
            started_at: None,
        }));
        assert_eq!(
            comment_html(&t),
            "<p>&lt;script&gt;x&lt;/script&gt; &amp; done</p><p>second</p>\
             <p>plane-orch: branch <code>claude/a-1</code>, session <code>plane-A-1</code></p>"
        );
        t.run_id = Some("r1".into());
        assert_eq!(external_id(&t), "A-1:r1");
    }
}
