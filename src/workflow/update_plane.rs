//! completed → done: the summary goes to Plane as a comment, then the work item
//! moves to `transitions.on_update`. Each step is recorded on the ticket as soon as it
//! succeeds, so running it again after a failure never posts a second comment.

use anyhow::Result;

use crate::app::App;
use crate::error::{conflict, invalid, Error};
use crate::plane::{self, Client};
use crate::ticket::{escape_html, now, text_to_html, Status, Ticket, TicketId};

use super::complete::clean_summary;
use super::plane_state::resolve_state;

/// How to update Plane.
#[derive(Debug, Clone, Default)]
pub struct UpdatePlaneOptions {
    /// Send nothing; `plan` says what would be done.
    pub dry_run: bool,
    /// Replaces the recorded summary when non-empty (an event keeps the old).
    pub summary: Option<String>,
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
    /// The state was moved to `on_update` (now or earlier).
    pub state_updated: bool,
    /// Plane no longer has the work item (deleted there): the ticket was finished as done
    /// with that recorded, as there is nothing left to update.
    pub item_deleted: bool,
    /// What --dry-run would do.
    pub plan: Vec<String>,
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

/// The comment's HTML: the summary's paragraphs, escaped, and where the work was done.
#[must_use]
pub fn comment_html(ticket: &Ticket) -> String {
    let mut html = text_to_html(ticket.summary.as_deref().unwrap_or_default());
    if let Some(s) = &ticket.session {
        let mut place = Vec::new();
        if let Some(branch) = &s.branch {
            place.push(format!("branch <code>{}</code>", escape_html(branch)));
        }
        place.push(format!("session <code>{}</code>", escape_html(&s.name)));
        html.push_str(&format!("<p>plane-orch: {}</p>", place.join(", ")));
    }
    html
}

fn must_be_completed(ticket: &Ticket) -> Result<()> {
    if ticket.status != Status::Completed {
        // The one transition function words the refusal.
        ticket.clone().transition(Status::Done, now(), None)?;
    }
    Ok(())
}

/// Applies a recorded step under the lock, re-checking that the ticket is still completed.
fn apply(app: &App, id: &TicketId, step: impl FnOnce(&mut Ticket)) -> Result<Ticket> {
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

/// completed → done: post the summary, move the state, mark done.
///
/// # Errors
/// Unknown ticket (not found); not completed (conflict); Plane not configured (config);
/// Plane failed or has no such work item (`Error::Plane`, the ticket stays completed with
/// `last_error` set).
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
            }
        }
    };
    let ticket = if opts.dry_run {
        let mut t = app.store.load()?.get(id)?.clone();
        must_be_completed(&t)?;
        replace(&mut t);
        t
    } else {
        app.store.update(|state| {
            let t = state.get_mut(id)?;
            must_be_completed(t)?;
            replace(t);
            Ok(t.clone())
        })?
    };
    if ticket
        .summary
        .as_deref()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(invalid(format!(
            "{id} has no summary to post: pass one (the API's \"summary\")"
        )));
    }
    if opts.no_plane {
        let ticket = app.store.update(|state| {
            let t = state.get_mut(id)?;
            t.transition(Status::Done, now(), Some(NOT_POSTED.into()))?;
            Ok(t.clone())
        })?;
        return Ok(UpdatePlaneOutcome {
            comment_posted: ticket.plane_sync.comment_posted_at.is_some(),
            state_updated: ticket.plane_sync.state_updated_at.is_some(),
            item_deleted: false,
            plan: Vec::new(),
            ticket,
        });
    }
    if opts.dry_run {
        return Ok(UpdatePlaneOutcome {
            plan: plan(app, &ticket),
            comment_posted: false,
            state_updated: false,
            item_deleted: false,
            ticket,
        });
    }
    let client = app.plane_client()?;
    match write_back(app, &client, ticket) {
        Ok(outcome) => Ok(outcome),
        Err(err) if crate::error::is_item_deleted(&err) => finish_deleted(app, id, &err),
        Err(err) => {
            let msg = format!("{err:#}");
            let _ = app.store.update(|state| {
                if let Ok(t) = state.get_mut(id) {
                    if t.status == Status::Completed {
                        let at = now();
                        t.last_error = Some(msg.clone());
                        t.record(at, "plane_error", Some(msg.clone()));
                    }
                }
                Ok(())
            });
            Err(err)
        }
    }
}

fn write_back(app: &App, client: &Client, mut ticket: Ticket) -> Result<UpdatePlaneOutcome> {
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
            ticket = apply(app, &id, |t| {
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

    if ticket.plane_sync.comment_posted_at.is_none() {
        let posted = client.post_comment(
            &project,
            &issue,
            &comment_html(&ticket),
            &external_id(&ticket),
        )?;
        ticket = apply(app, &id, |t| {
            let at = now();
            t.plane_sync.comment_posted_at = Some(at);
            t.plane_sync.comment_id.clone_from(&posted.id);
            let detail = if posted.already {
                "Plane had the summary comment already (409): not posted again".to_string()
            } else {
                format!(
                    "summary posted as comment {}",
                    posted.id.as_deref().unwrap_or("?")
                )
            };
            t.record(at, "plane_comment", Some(detail));
        })?;
    }

    if let (Some(target), None) = (
        app.config.plane.on_update.clone(),
        ticket.plane_sync.state_updated_at,
    ) {
        let state_id = resolve_state(client, &project, &target, "plane.transitions.on_update")?;
        client.set_state(&project, &issue, &state_id)?;
        apply(app, &id, |t| {
            let at = now();
            t.plane_sync.state_updated_at = Some(at);
            t.record(
                at,
                "plane_state",
                Some(format!("moved to {target:?} in Plane")),
            );
        })?;
    }

    let ticket = app.store.update(|state| {
        let t = state.get_mut(&id)?;
        t.transition(Status::Done, now(), Some("summary posted to Plane".into()))?;
        Ok(t.clone())
    })?;
    Ok(UpdatePlaneOutcome {
        comment_posted: ticket.plane_sync.comment_posted_at.is_some(),
        state_updated: ticket.plane_sync.state_updated_at.is_some(),
        item_deleted: false,
        plan: Vec::new(),
        ticket,
    })
}

/// The work item is gone from Plane: retrying can never succeed, so the ticket is finished as
/// done with the deletion recorded (and whatever reached Plane before it).
fn finish_deleted(app: &App, id: &TicketId, err: &anyhow::Error) -> Result<UpdatePlaneOutcome> {
    let why = format!("{err:#}");
    log::warn!("{id}: {why}; finishing it as done");
    let ticket = app.store.update(|state| {
        let t = state.get_mut(id)?;
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
        state_updated: ticket.plane_sync.state_updated_at.is_some(),
        item_deleted: true,
        plan: Vec::new(),
        ticket,
    })
}

/// What a real run would do, for --dry-run: nothing is sent to find out.
fn plan(app: &App, ticket: &Ticket) -> Vec<String> {
    let cfg = &app.config.plane;
    let id = &ticket.id;
    let mut plan = Vec::new();
    if let Some(why) = plane::not_configured(cfg, false) {
        plan.push(format!("cannot run: Plane is not configured ({why})"));
    }
    if ticket.issue_id.is_none() {
        plan.push(format!(
            "look up {id} in Plane by its readable id (it was added by hand)"
        ));
    }
    match ticket.plane_sync.comment_posted_at {
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
        t.session = Some(SessionInfo {
            name: "plane-A-1".into(),
            backend: "tmux".into(),
            workdir: "/w".into(),
            branch: Some("claude/a-1".into()),
            agent_session: None,
            started_at: None,
        });
        assert_eq!(
            comment_html(&t),
            "<p>&lt;script&gt;x&lt;/script&gt; &amp; done</p><p>second</p>\
             <p>plane-orch: branch <code>claude/a-1</code>, session <code>plane-A-1</code></p>"
        );
        t.run_id = Some("r1".into());
        assert_eq!(external_id(&t), "A-1:r1");
    }
}
