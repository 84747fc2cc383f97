use std::fmt::Write as _;

use anyhow::Result;
use chrono::TimeDelta;

use crate::app::App;
use crate::cli::{GlobalArgs, ListArgs, StatusFilter};
use crate::ticket::{Status, Ticket};
use crate::view::ApiTicket;

use super::{print_json, Run};

impl Run for ListArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let state = app.store.load()?;
        let archived = if wanted(self.status, Status::Done) {
            app.store.load_archive()?
        } else {
            Vec::new()
        };
        let mut tickets: Vec<&Ticket> = state
            .tickets
            .values()
            .chain(
                archived
                    .iter()
                    .filter(|t| !state.tickets.contains_key(&t.id)),
            )
            .filter(|t| wanted(self.status, t.status))
            .collect();
        tickets.sort_by(|a, b| {
            (status_rank(a.status), a.queued_at, &a.id).cmp(&(
                status_rank(b.status),
                b.queued_at,
                &b.id,
            ))
        });
        // An id archived twice (a crash between append and write) is listed once.
        tickets.dedup_by(|a, b| a.id == b.id);
        if self.json {
            let api: Vec<ApiTicket> = tickets.iter().map(|t| ApiTicket::new(t, None)).collect();
            return print_json(&api);
        }
        print!("{}", table(&tickets, crate::ticket::now()));
        Ok(())
    }
}

/// Whether a ticket with `status` is shown for the filter (default: all but done).
#[must_use]
pub fn wanted(filter: Option<StatusFilter>, status: Status) -> bool {
    match filter {
        None => status != Status::Done,
        Some(StatusFilter::All) => true,
        Some(StatusFilter::Pending) => status == Status::Pending,
        Some(StatusFilter::Active) => status == Status::Active,
        Some(StatusFilter::Completed) => status == Status::Completed,
        Some(StatusFilter::Done) => status == Status::Done,
    }
}

fn status_rank(s: Status) -> usize {
    Status::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// A duration as a person reads it: `42s`, `5m`, `3h`, `2d`.
#[must_use]
pub fn age(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn session_column(t: &Ticket) -> String {
    let mut out = t
        .session
        .as_ref()
        .map_or_else(|| "-".to_string(), |s| s.name.clone());
    if let Some(w) = &t.waiting {
        let kind = w.kind.as_deref().unwrap_or("input");
        let kind = kind.strip_suffix("_prompt").unwrap_or(kind);
        let _ = write!(out, " (waiting: {kind})");
    }
    if t.session_lost_at.is_some() && t.status == Status::Active {
        out.push_str(" (session lost)");
    }
    if t.last_error.is_some() {
        out.push_str(" (error)");
    }
    out
}

fn cut(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut s: String = one_line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The table `list` prints: aligned columns and a last line with counts per status.
#[must_use]
pub fn table(tickets: &[&Ticket], now: chrono::DateTime<chrono::Utc>) -> String {
    let rows: Vec<[String; 5]> = tickets
        .iter()
        .map(|t| {
            [
                t.id.to_string(),
                t.status.to_string(),
                age(now - t.queued_at),
                cut(&t.title, 50),
                session_column(t),
            ]
        })
        .collect();
    let header = ["ID", "STATUS", "AGE", "TITLE", "SESSION"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let counts: Vec<String> = Status::ALL
        .iter()
        .map(|s| (s, tickets.iter().filter(|t| t.status == *s).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    if counts.is_empty() {
        out.push_str("no tickets\n");
    } else {
        out.push_str(&counts.join(", "));
        out.push('\n');
    }
    out
}
