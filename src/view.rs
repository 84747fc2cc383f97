//! Tickets as the outside world sees them: the `ApiTicket` shape the old orchestrator's
//! dashboard reads (SPEC §7), used by `list --json`, `show --json` and the HTTP API alike.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use crate::ticket::{Event, Snapshot, Status, Ticket, TriggerType};

/// A ticket in API answers: the orchestrator's ten keys first, then ours.
#[derive(Debug, Clone, Serialize)]
pub struct ApiTicket {
    // The old orchestrator's keys: present, same types, null rather than missing.
    pub id: String,
    pub uuid: Option<String>,
    pub project_id: Option<String>,
    pub title: String,
    pub description: String,
    pub trigger_type: TriggerType,
    pub summary: Option<String>,
    pub created_at: DateTime<FixedOffset>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    // plane-orch's keys.
    pub status: Status,
    pub url: Option<String>,
    pub priority: Option<String>,
    pub labels: Vec<String>,
    pub description_text: String,
    pub session: Option<ApiSession>,
    pub waiting: Option<ApiWaiting>,
    pub queued_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub session_lost_at: Option<DateTime<Utc>>,
    pub plane_closed_at: Option<DateTime<Utc>>,
}

/// The session part of an `ApiTicket`.
#[derive(Debug, Clone, Serialize)]
pub struct ApiSession {
    pub name: String,
    pub backend: String,
    pub workdir: String,
    pub branch: Option<String>,
    /// Whether the session runs now; null when it was not checked.
    pub alive: Option<bool>,
    pub agent_session: Option<String>,
}

/// Set while the session waits for the person.
#[derive(Debug, Clone, Serialize)]
pub struct ApiWaiting {
    pub since: DateTime<Utc>,
    pub message: String,
    pub kind: Option<String>,
}

/// One ticket with its history: `show --json` and `GET /api/tickets/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct ApiTicketDetail {
    #[serde(flatten)]
    pub ticket: ApiTicket,
    pub events: Vec<Event>,
    pub approved_snapshot: Option<Snapshot>,
}

impl ApiTicket {
    /// The API view of a ticket; `alive` is the session's liveness when it was checked.
    #[must_use]
    pub fn new(t: &Ticket, alive: Option<bool>) -> ApiTicket {
        ApiTicket {
            id: t.id.to_string(),
            uuid: t.issue_id.clone(),
            project_id: t.project_id.clone(),
            title: t.title.clone(),
            description: t.description_html.clone(),
            trigger_type: t.trigger_type,
            summary: t.summary.clone(),
            created_at: t
                .plane_created_at
                .unwrap_or_else(|| t.queued_at.fixed_offset()),
            updated_at: t.updated_at(),
            completed_at: t.completed_at,
            status: t.status,
            url: t.url.clone(),
            priority: t.priority.clone(),
            labels: t.labels.clone(),
            description_text: t.description_text.clone(),
            session: t.session.as_ref().map(|s| ApiSession {
                name: s.name.clone(),
                backend: s.backend.clone(),
                workdir: s.workdir.clone(),
                branch: s.branch.clone(),
                alive,
                agent_session: s.agent_session.clone(),
            }),
            waiting: t.waiting.as_ref().map(|w| ApiWaiting {
                since: w.since,
                message: w.message.clone(),
                kind: w.kind.clone(),
            }),
            queued_at: t.queued_at,
            approved_at: t.approved_at,
            done_at: t.done_at,
            last_error: t.last_error.clone(),
            session_lost_at: t.session_lost_at,
            plane_closed_at: t.plane_closed_at,
        }
    }
}

impl ApiTicketDetail {
    #[must_use]
    pub fn new(t: &Ticket, alive: Option<bool>) -> ApiTicketDetail {
        ApiTicketDetail {
            ticket: ApiTicket::new(t, alive),
            events: t.events.clone(),
            approved_snapshot: t.approved_snapshot.clone(),
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
                description_text: "d".into(),
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
