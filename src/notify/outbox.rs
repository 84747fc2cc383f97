//! The outbox: per-ticket cursors into the audit trail, the messages not yet delivered to
//! every sink, and each sink's health. One process sends at a time (it holds the outbox's
//! lock for the whole run); the file is replaced atomically after every change.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::config::NotifyConfig;
use super::{sink, EventKind, Notification, PumpReport, TicketFacts};
use crate::ticket::{Event, Status, Ticket, TicketId};

const VERSION: u32 = 1;

/// When notifications are first configured, audit events younger than this are sent; older
/// ones are history nobody needs to hear about now.
const FIRST_RUN_LOOKBACK: TimeDelta = TimeDelta::hours(1);

/// At most this many messages wait in the outbox; past it the oldest are dropped (and
/// counted in the sink's health), so a sink down for a week cannot grow the file forever.
const MAX_QUEUED: usize = 1000;

/// The outbox file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outbox {
    pub version: u32,
    /// How many of each ticket's audit events were already turned into messages.
    #[serde(default)]
    cursors: BTreeMap<TicketId, usize>,
    /// Messages with at least one sink still to deliver to.
    #[serde(default)]
    queue: Vec<Queued>,
    /// The last `waiting` message per ticket, to coalesce repeats.
    #[serde(default)]
    waiting_sent: BTreeMap<TicketId, WaitingSent>,
    /// Each sink's record, by name.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Queued {
    note: Notification,
    /// The sinks still to deliver to, by name.
    pending: BTreeMap<String, Delivery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Delivery {
    attempts: u32,
    next_at: DateTime<Utc>,
    #[serde(default)]
    last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WaitingSent {
    at: DateTime<Utc>,
    question: String,
}

/// What is known of a sink's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkHealth {
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub last_ok_at: Option<DateTime<Utc>>,
    /// Failed attempts since the last delivery that landed.
    #[serde(default)]
    pub failures_in_row: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_error_at: Option<DateTime<Utc>>,
    /// Messages given up after `notify.max_attempts` (or dropped from a full outbox).
    #[serde(default)]
    pub given_up: u64,
}

impl SinkHealth {
    /// Whether the sink is failing now: its last attempt failed.
    #[must_use]
    pub fn failing(&self) -> bool {
        self.failures_in_row > 0
    }
}

impl Outbox {
    /// How many messages wait for at least one sink.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The outbox at `path`; `None` when there is none yet.
    ///
    /// # Errors
    /// It exists but cannot be read or decoded.
    pub fn read(path: &Path) -> Result<Option<Outbox>> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
                format!(
                    "the notification outbox {} is damaged; remove it to start afresh \
                     (messages not yet sent are then lost)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read the outbox {}", path.display())),
        }
    }

    /// The tickets whose trail is followed (those with a cursor).
    pub(super) fn followed(&self) -> impl Iterator<Item = &TicketId> {
        self.cursors.keys()
    }

    /// Turns audit events past each ticket's cursor into queued messages; returns how many
    /// messages were queued. Tickets not given (gone from the state) lose their cursor.
    pub(super) fn take_events(
        &mut self,
        tickets: &[&Ticket],
        cfg: &NotifyConfig,
        now: DateTime<Utc>,
    ) -> usize {
        let first_run = self.version == 0;
        self.version = VERSION;
        let mut queued_tickets: Vec<TicketFacts> = Vec::new();
        let mut notes: Vec<Notification> = Vec::new();
        for &ticket in tickets {
            let seen = match self.cursors.get(&ticket.id) {
                // A ticket removed and queued again starts a new trail.
                Some(&n) if n <= ticket.events.len() => n,
                Some(_) => 0,
                None if first_run => ticket
                    .events
                    .iter()
                    .take_while(|e| e.at < now - FIRST_RUN_LOOKBACK)
                    .count(),
                None => 0,
            };
            for (i, event) in ticket.events.iter().enumerate().skip(seen) {
                let Some(kind) = kind_of(ticket, i, event) else {
                    continue;
                };
                let facts = facts(ticket, cfg);
                if kind == EventKind::Queued {
                    queued_tickets.push(facts);
                    continue;
                }
                // A wait the person already answered (or a ticket that moved on) needs no
                // message: the sender saw it late (a cron tick a minute later).
                if kind == EventKind::Waiting
                    && (ticket.waiting.is_none()
                        || ticket.status != Status::Active
                        || !self.waiting_is_new(ticket, event, cfg, now))
                {
                    continue;
                }
                notes.push(message(kind, ticket, event, facts));
            }
            self.cursors.insert(ticket.id.clone(), ticket.events.len());
        }
        let given: std::collections::HashSet<&TicketId> = tickets.iter().map(|t| &t.id).collect();
        self.cursors.retain(|id, _| given.contains(id));
        self.waiting_sent.retain(|id, _| given.contains(id));
        if !queued_tickets.is_empty() {
            notes.insert(0, queued_message(queued_tickets, cfg, now));
        }
        let count = notes.len();
        for note in notes {
            let pending: BTreeMap<String, Delivery> = cfg
                .sinks
                .iter()
                .filter(|s| s.wants(note.event))
                .map(|s| {
                    let d = Delivery {
                        attempts: 0,
                        next_at: now,
                        last_error: None,
                    };
                    (s.name.clone(), d)
                })
                .collect();
            if !pending.is_empty() {
                self.queue.push(Queued { note, pending });
            }
        }
        count
    }

    /// Whether a `waiting` event deserves a message: not when the same question was sent for
    /// this ticket within `notify.repeat_minutes`.
    fn waiting_is_new(
        &mut self,
        ticket: &Ticket,
        event: &Event,
        cfg: &NotifyConfig,
        now: DateTime<Utc>,
    ) -> bool {
        let question = event.detail.clone().unwrap_or_default();
        let repeat = TimeDelta::from_std(cfg.repeat).unwrap_or(TimeDelta::MAX);
        if let Some(last) = self.waiting_sent.get(&ticket.id) {
            if last.question == question && now - last.at < repeat {
                return false;
            }
        }
        self.waiting_sent
            .insert(ticket.id.clone(), WaitingSent { at: now, question });
        true
    }

    /// Forgets deliveries to sinks that are gone from the config, and keeps the queue bounded.
    pub(super) fn prune(&mut self, cfg: &NotifyConfig) {
        for q in &mut self.queue {
            q.pending
                .retain(|name, _| cfg.sinks.iter().any(|s| &s.name == name));
        }
        self.queue.retain(|q| !q.pending.is_empty());
        if self.queue.len() > MAX_QUEUED {
            let drop = self.queue.len() - MAX_QUEUED;
            for q in self.queue.drain(..drop) {
                for name in q.pending.keys() {
                    self.sinks.entry(name.clone()).or_default().given_up += 1;
                }
            }
        }
        self.sinks
            .retain(|name, _| cfg.sinks.iter().any(|s| &s.name == name));
    }
}

/// The outbox with its lock held: only the holder sends.
pub(super) struct Held {
    path: PathBuf,
    pub(super) outbox: Outbox,
    _lock: File,
}

impl Held {
    /// Takes the outbox's lock without waiting; `None` when another sender has it.
    pub(super) fn try_open(path: &Path) -> Result<Option<Held>> {
        let lock_path = path.with_extension("lock");
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the folder {}", dir.display()))?;
        }
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        if fs2::FileExt::try_lock_exclusive(&lock).is_err() {
            return Ok(None);
        }
        let outbox = Outbox::read(path)?.unwrap_or_default();
        Ok(Some(Held {
            path: path.to_path_buf(),
            outbox,
            _lock: lock,
        }))
    }

    /// Replaces the outbox file with what is held.
    pub(super) fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec(&self.outbox).context("cannot encode the outbox")?;
        crate::store::write_atomically(&self.path, &bytes)
            .with_context(|| format!("cannot write the outbox {}", self.path.display()))
    }

    /// Delivers every due message to each of its sinks, saving after each attempt.
    pub(super) fn deliver(&mut self, cfg: &NotifyConfig, report: &mut PumpReport) -> Result<()> {
        let now = crate::ticket::now();
        let mut i = 0;
        while i < self.outbox.queue.len() {
            let names: Vec<String> = self.outbox.queue[i]
                .pending
                .iter()
                .filter(|(_, d)| d.next_at <= now)
                .map(|(n, _)| n.clone())
                .collect();
            for name in names {
                let Some(s) = cfg.sinks.iter().find(|s| s.name == name) else {
                    continue;
                };
                let result = sink::deliver(s, &self.outbox.queue[i].note, &cfg.secret_vars);
                let at = crate::ticket::now();
                let health = self.outbox.sinks.entry(name.clone()).or_default();
                let q = &mut self.outbox.queue[i];
                match result {
                    Ok(_) => {
                        q.pending.remove(&name);
                        health.delivered += 1;
                        health.last_ok_at = Some(at);
                        health.failures_in_row = 0;
                        report.delivered += 1;
                    }
                    Err(why) => {
                        log::warn!(
                            "notification {} to {name} failed: {why}",
                            q.note.event.as_str()
                        );
                        health.failures_in_row += 1;
                        health.last_error = Some(why.clone());
                        health.last_error_at = Some(at);
                        report.failed += 1;
                        let d = q.pending.get_mut(&name).expect("a pending delivery");
                        d.attempts += 1;
                        d.last_error = Some(why);
                        if d.attempts >= cfg.max_attempts {
                            q.pending.remove(&name);
                            health.given_up += 1;
                            report.given_up += 1;
                        } else {
                            let wait = cfg.retry_base * 2u32.saturating_pow(d.attempts - 1);
                            d.next_at = at + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
                        }
                    }
                }
                self.save()?;
            }
            if self.outbox.queue[i].pending.is_empty() {
                self.outbox.queue.remove(i);
                self.save()?;
            } else {
                i += 1;
            }
        }
        Ok(())
    }
}

/// The notification an audit event calls for, if any. `index` is the event's place in the
/// ticket's trail (an update failure is one only after the ticket was completed).
fn kind_of(ticket: &Ticket, index: usize, event: &Event) -> Option<EventKind> {
    Some(match event.event.as_str() {
        "queued" => EventKind::Queued,
        "waiting" => EventKind::Waiting,
        "stuck" => EventKind::Stuck,
        "stalled" => EventKind::Stalled,
        "over_time" => EventKind::OverTime,
        "budget" => EventKind::Budget,
        "completed" => EventKind::Completed,
        "session_lost" => EventKind::SessionLost,
        "done" => EventKind::Done,
        "plane_error" => {
            let completed_before = ticket.events[..index]
                .iter()
                .any(|e| e.event == "completed");
            if !completed_before {
                return None;
            }
            EventKind::UpdateFailed
        }
        _ => return None,
    })
}

fn link(ticket: &Ticket, cfg: &NotifyConfig) -> Option<String> {
    match &cfg.link_base {
        Some(base) => Some(format!("{base}/#{}", ticket.id)),
        None => ticket.url.clone(),
    }
}

fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}

fn facts(ticket: &Ticket, cfg: &NotifyConfig) -> TicketFacts {
    TicketFacts {
        id: ticket.id.to_string(),
        title: ticket.title.clone(),
        status: ticket.status.as_str().to_string(),
        activity: ticket
            .waiting
            .as_ref()
            .map(|w| format!("waiting: {}", w.message)),
        cost: None,
        summary: ticket.summary.as_deref().map(|s| excerpt(s, 300)),
        link: link(ticket, cfg),
        url: ticket.url.clone(),
    }
}

fn message(kind: EventKind, ticket: &Ticket, event: &Event, facts: TicketFacts) -> Notification {
    let id = &ticket.id;
    let detail = event.detail.as_deref().unwrap_or_default();
    let (title, message) = match kind {
        EventKind::Waiting => (
            format!("{id} is waiting for you"),
            format!("{}\n{}", ticket.title, excerpt(detail, 500)),
        ),
        EventKind::Completed => (
            format!("{id} is ready for review"),
            format!(
                "{}\n{}",
                ticket.title,
                excerpt(ticket.summary.as_deref().unwrap_or(detail), 300)
            ),
        ),
        EventKind::UpdateFailed => (
            format!("Plane refused the update of {id}"),
            format!("{}\n{}", ticket.title, excerpt(detail, 500)),
        ),
        EventKind::SessionLost => (
            format!("{id}'s session ended without a summary"),
            format!("{}\n{}", ticket.title, excerpt(detail, 500)),
        ),
        EventKind::Done => (
            format!("{id} is done"),
            format!("{}\nThe summary is in Plane.", ticket.title),
        ),
        EventKind::Stuck => (
            format!("{id} is stuck before it started"),
            format!("{}\n{}", ticket.title, excerpt(detail, 500)),
        ),
        EventKind::Stalled => (
            format!("{id} has stalled"),
            format!("{}\n{}", ticket.title, excerpt(detail, 500)),
        ),
        EventKind::OverTime => (
            format!("{id} is over its time"),
            format!("{}\n{}", ticket.title, excerpt(detail, 500)),
        ),
        EventKind::Budget => (
            if detail.starts_with("80 %") {
                format!("{id} has used 80 % of its budget")
            } else {
                format!("{id} has used its budget")
            },
            format!("{}\n{}", ticket.title, excerpt(detail, 500)),
        ),
        EventKind::Queued | EventKind::Test => (id.to_string(), ticket.title.clone()),
    };
    Notification {
        event_id: uuid::Uuid::new_v4().to_string(),
        event: kind,
        time: event.at,
        title,
        message,
        link: facts.link.clone(),
        tickets: vec![facts],
    }
}

fn queued_message(
    tickets: Vec<TicketFacts>,
    cfg: &NotifyConfig,
    now: DateTime<Utc>,
) -> Notification {
    let title = match tickets.as_slice() {
        [one] => format!("{} is waiting for approval", one.id),
        many => format!("{} new tickets are waiting for approval", many.len()),
    };
    let message = tickets
        .iter()
        .take(20)
        .map(|t| format!("{} {}", t.id, excerpt(&t.title, 100)))
        .chain((tickets.len() > 20).then(|| format!("and {} more", tickets.len() - 20)))
        .collect::<Vec<_>>()
        .join("\n");
    let link = if tickets.len() == 1 {
        tickets[0].link.clone()
    } else {
        cfg.link_base.clone().or_else(|| tickets[0].link.clone())
    };
    Notification {
        event_id: uuid::Uuid::new_v4().to_string(),
        event: EventKind::Queued,
        time: now,
        title,
        message,
        link,
        tickets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::NewTicket;

    #[test]
    fn supervision_and_workflow_events_map_to_their_notifications() {
        let at = crate::ticket::now();
        let mut t = Ticket::new(NewTicket::manual(TicketId::parse("A-1").unwrap(), "t"), at);
        for name in [
            "stuck",
            "stalled",
            "over_time",
            "budget",
            "session_lost",
            "plane_error",
            "completed",
            "plane_error",
            "done",
            "title_changed",
        ] {
            t.record(at, name, None);
        }
        let kinds: Vec<Option<EventKind>> = t
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| kind_of(&t, i, e))
            .collect();
        use EventKind as K;
        assert_eq!(
            kinds,
            [
                Some(K::Queued),
                Some(K::Stuck),
                Some(K::Stalled),
                Some(K::OverTime),
                Some(K::Budget),
                Some(K::SessionLost),
                None, // a Plane error before completion (approve's state move) is no update failure
                Some(K::Completed),
                Some(K::UpdateFailed),
                Some(K::Done),
                None,
            ]
        );
    }
}
