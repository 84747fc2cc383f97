//! Tickets as the outside world sees them: the `ApiTicket` shape the old orchestrator's
//! dashboard reads, used by `list --json`, `show --json` and the HTTP API alike.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use crate::activity::{self, Activity, Cost, Entry, Flag, Kind};
use crate::config::Config;
use crate::ticket::{Approved, BranchState, Event, Op, Status, Ticket, TriggerType};

/// A ticket in API answers: the orchestrator's ten keys first, then ours. It borrows from the
/// ticket: a list of a thousand tickets is written without copying their text.
#[derive(Debug, Clone, Serialize)]
pub struct ApiTicket<'a> {
    // The old orchestrator's keys: present, same types, null rather than missing.
    pub id: &'a str,
    pub uuid: Option<&'a str>,
    pub project_id: Option<&'a str>,
    pub title: &'a str,
    pub description: &'a str,
    pub trigger_type: TriggerType,
    pub summary: Option<&'a str>,
    pub created_at: DateTime<FixedOffset>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    // plane-orch's keys.
    pub status: Status,
    pub url: Option<&'a str>,
    pub priority: Option<&'a str>,
    pub labels: &'a [String],
    pub description_text: &'a str,
    pub session: Option<ApiSession<'a>>,
    pub waiting: Option<ApiWaiting<'a>>,
    pub queued_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub last_error: Option<&'a str>,
    pub session_lost_at: Option<DateTime<Utc>>,
    pub plane_closed_at: Option<DateTime<Utc>>,
    /// The operation under way on the ticket, or left by a process that died.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<&'a Op>,
    /// What the ticket's branch holds: commits, diffstat, uncommitted work; null without one.
    pub branch: Option<&'a BranchState>,
    /// What the session is doing (from Claude Code's hooks); null when nothing is known.
    pub activity: Option<ApiActivity<'a>>,
    /// Tokens and USD the ticket's sessions have used; null when nothing is known.
    pub cost: Option<Cost>,
}

/// The activity part of an `ApiTicket`.
#[derive(Debug, Clone, Serialize)]
pub struct ApiActivity<'a> {
    pub state: Kind,
    pub since: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub tool: Option<&'a str>,
    pub message: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub reset_at: Option<&'a str>,
    /// `stuck`, `stalled`, `over_time`, each with when and why (and the pane's text).
    pub flags: &'a [Flag],
    /// The budget that applies (the ticket's own, else `automation.budget_usd`).
    pub budget_usd: Option<f64>,
    /// The one line `list` shows in its STATE column.
    pub summary: String,
}

/// The session part of an `ApiTicket`.
#[derive(Debug, Clone, Serialize)]
pub struct ApiSession<'a> {
    pub name: &'a str,
    pub backend: &'a str,
    pub workdir: &'a str,
    pub branch: Option<&'a str>,
    /// Whether the session runs now; null when it was not checked.
    pub alive: Option<bool>,
    pub agent_session: Option<&'a str>,
}

/// Set while the session waits for the person.
#[derive(Debug, Clone, Serialize)]
pub struct ApiWaiting<'a> {
    pub since: DateTime<Utc>,
    pub message: &'a str,
    pub kind: Option<&'a str>,
}

/// One ticket with its history: `show --json` and `GET /api/tickets/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct ApiTicketDetail<'a> {
    #[serde(flatten)]
    pub ticket: ApiTicket<'a>,
    pub events: &'a [Event],
    pub approved_snapshot: Option<Approved<'a>>,
    /// The activity's changes and supervision events, oldest first.
    pub activity_history: &'a [Entry],
}

impl<'a> ApiTicket<'a> {
    /// The API view of a ticket; `alive` is the session's liveness when it was checked.
    #[must_use]
    pub fn new(t: &'a Ticket, alive: Option<bool>) -> ApiTicket<'a> {
        ApiTicket {
            id: t.id.as_str(),
            uuid: t.issue_id.as_deref(),
            project_id: t.project_id.as_deref(),
            title: &t.title,
            description: &t.description_html,
            trigger_type: t.trigger_type,
            summary: t.summary.as_deref(),
            created_at: t
                .plane_created_at
                .unwrap_or_else(|| t.queued_at.fixed_offset()),
            updated_at: t.updated_at(),
            completed_at: t.completed_at,
            status: t.status,
            url: t.url.as_deref(),
            priority: t.priority.as_deref(),
            labels: &t.labels,
            description_text: t.description_text(),
            session: t.session.as_ref().map(|s| ApiSession {
                name: &s.name,
                backend: &s.backend,
                workdir: &s.workdir,
                branch: s.branch.as_deref(),
                alive,
                agent_session: s.agent_session.as_deref(),
            }),
            waiting: t.waiting.as_ref().map(|w| ApiWaiting {
                since: w.since,
                message: &w.message,
                kind: w.kind.as_deref(),
            }),
            queued_at: t.queued_at,
            approved_at: t.approved_at,
            done_at: t.done_at,
            last_error: t.last_error.as_deref(),
            session_lost_at: t.session_lost_at,
            plane_closed_at: t.plane_closed_at,
            op: t.op.as_deref(),
            branch: t.branch.as_deref(),
            activity: None,
            cost: None,
        }
    }

    /// Adds what the ticket's session is doing and has cost; `waiting` follows the activity.
    #[must_use]
    pub fn with_activity(
        mut self,
        t: &Ticket,
        a: Option<&'a Activity>,
        config: &Config,
        now: DateTime<Utc>,
    ) -> ApiTicket<'a> {
        let Some(a) = a else { return self };
        let cost = a.cost(&config.prices);
        let budget = t.budget_usd.or(a.budget(config.automation.budget_usd));
        if t.status == Status::Active {
            self.waiting = (a.state == Kind::Waiting).then(|| ApiWaiting {
                since: a.since,
                message: a.message.as_deref().unwrap_or(""),
                kind: a.kind.as_deref(),
            });
        }
        self.activity = Some(ApiActivity {
            state: a.state,
            since: a.since,
            last_activity_at: a.last_activity_at,
            tool: a.tool.as_deref(),
            message: a.message.as_deref(),
            kind: a.kind.as_deref(),
            reset_at: a.reset_at.as_deref(),
            flags: &a.flags,
            budget_usd: budget,
            summary: activity::state_column(a, &cost, budget, now),
        });
        self.cost = Some(cost);
        self
    }
}

impl<'a> ApiTicketDetail<'a> {
    #[must_use]
    pub fn new(t: &'a Ticket, alive: Option<bool>) -> ApiTicketDetail<'a> {
        ApiTicketDetail {
            ticket: ApiTicket::new(t, alive),
            events: &t.events,
            approved_snapshot: t.approved(),
            activity_history: &[],
        }
    }

    /// [`ApiTicketDetail::new`] with the ticket's activity, its history included.
    #[must_use]
    pub fn with_activity(
        t: &'a Ticket,
        alive: Option<bool>,
        a: Option<&'a Activity>,
        config: &Config,
        now: DateTime<Utc>,
    ) -> ApiTicketDetail<'a> {
        ApiTicketDetail {
            ticket: ApiTicket::new(t, alive).with_activity(t, a, config, now),
            events: &t.events,
            approved_snapshot: t.approved(),
            activity_history: a.map_or(&[], |a| a.history.as_slice()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{now, NewTicket, TicketId};

    #[test]
    fn the_orchestrators_ten_keys_are_always_present() {
        let t = Ticket::new(
            NewTicket {
                id: TicketId::parse("X-1").unwrap(),
                title: "t".into(),
                description_html: "<p>d</p>".into(),
                description_text: Some("d".into()),
                url: None,
                trigger_type: TriggerType::Manual,
            },
            now(),
        );
        let v = serde_json::to_value(ApiTicket::new(&t, None)).unwrap();
        for key in [
            "id",
            "uuid",
            "project_id",
            "title",
            "description",
            "trigger_type",
            "summary",
            "created_at",
            "updated_at",
            "completed_at",
        ] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert_eq!(v["trigger_type"], "manual");
        assert!(v["uuid"].is_null());
    }
}
