use std::borrow::Cow;
use std::fmt::Write as _;

use anyhow::Result;
use chrono::{DateTime, TimeDelta, Utc};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::app::App;
use crate::cli::{GlobalArgs, ListArgs, StatusFilter};
use crate::session::Liveness;
use crate::term::inert;
use crate::ticket::{Status, Ticket};
use crate::view::ApiTicket;

use super::{print_json, Run};

impl Run for ListArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        // The table needs no ticket's text: only --json decodes tickets whole.
        let owned = if self.json {
            app.store.load_listed(|s| wanted(self.status, s))?
        } else {
            app.store.load_listed_light(|s| wanted(self.status, s))?
        };
        let tickets: Vec<&Ticket> = owned.iter().collect();
        let activities = app.activity.load_all();
        let now = display_now();
        if self.json {
            let live = Liveness::check(&app.config, tickets.iter().copied());
            let api: Vec<ApiTicket> = tickets
                .iter()
                .map(|t| {
                    ApiTicket::new(t, live.of(t)).with_activity(
                        t,
                        activities.get(&t.id),
                        &app.config,
                        now,
                    )
                })
                .collect();
            return print_json(&api);
        }
        let states: Vec<String> = tickets
            .iter()
            .map(|t| state_of(&app, t, activities.get(&t.id), now))
            .collect();
        let live = Liveness::check(&app.config, tickets.iter().copied());
        print!(
            "{}",
            table(&tickets, &states, &live, now, &Layout::for_stdout())
        );
        Ok(())
    }
}

/// The STATE column: what an active ticket's session is doing and its spend; for other
/// tickets only the spend, when known.
#[must_use]
pub fn state_of(
    app: &App,
    t: &Ticket,
    a: Option<&crate::activity::Activity>,
    now: DateTime<Utc>,
) -> String {
    let Some(a) = a else {
        return "-".to_string();
    };
    let cost = a.cost(&app.config.prices);
    let budget = t.budget_usd.or(a.budget(app.config.automation.budget_usd));
    if t.status == Status::Active {
        crate::activity::state_column(a, &cost, budget, now)
    } else if cost.spent_usd > 0.0 {
        format!("${:.2}", cost.spent_usd)
    } else {
        "-".to_string()
    }
}

/// The environment variable that fixes the clock `list` and `show` measure ages against
/// (RFC 3339). A testing aid: golden outputs need ages that do not move.
pub const NOW_ENV: &str = "PLANE_ORCH_NOW";

/// The time ages are measured against: `$PLANE_ORCH_NOW` when it is set and valid, else now.
#[must_use]
pub fn display_now() -> DateTime<Utc> {
    std::env::var(NOW_ENV)
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
        .map_or_else(crate::ticket::now, |t| t.with_timezone(&Utc))
}

/// How the table fits its output: the title column's width and whether to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The terminal's width, when stdout is a terminal; titles are cut to fit it.
    pub terminal_width: Option<usize>,
    /// Colour the status column.
    pub color: bool,
}

/// The title width when stdout is not a terminal (a pipe, a file, cron's mail).
pub const PIPE_TITLE_WIDTH: usize = 60;

/// Titles are never cut shorter than this, however narrow the terminal.
const MIN_TITLE_WIDTH: usize = 12;

impl Layout {
    /// The layout for this process's stdout: its width when it is a terminal, and colour
    /// unless stdout is not a terminal or `NO_COLOR` is set (`CLICOLOR_FORCE` forces it).
    #[must_use]
    pub fn for_stdout() -> Layout {
        let stdout = std::io::stdout();
        Layout {
            terminal_width: terminal_size::terminal_size_of(&stdout).map(|(w, _)| usize::from(w.0)),
            color: anstream::AutoStream::choice(&stdout) != anstream::ColorChoice::Never,
        }
    }

    /// Plain text, titles cut at [`PIPE_TITLE_WIDTH`].
    #[cfg(test)]
    #[must_use]
    pub fn plain() -> Layout {
        Layout {
            terminal_width: None,
            color: false,
        }
    }
}

fn status_style(s: Status) -> anstyle::Style {
    use anstyle::{AnsiColor, Style};
    match s {
        Status::Pending => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Status::Active => Style::new().fg_color(Some(AnsiColor::Green.into())).bold(),
        Status::Completed => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
        Status::Done => Style::new().dimmed(),
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

/// The SESSION column: the session's name while it runs (or when that cannot be told), `-`
/// once it has ended, and flags.
fn session_column(t: &Ticket, alive: Option<bool>) -> String {
    let mut out = match (&t.session, alive) {
        (Some(s), None | Some(true)) => s.name.clone(),
        _ => "-".to_string(),
    };
    if alive == Some(false) && t.status == Status::Active && t.session_lost_at.is_none() {
        // Ended since the last poll, which will flag it.
        out.push_str(" (session ended)");
    }
    if t.session_lost_at.is_some() && t.status == Status::Active {
        out.push_str(" (session lost)");
    }
    if t.last_error.is_some() {
        out.push_str(" (error)");
    }
    // Under way or interrupted: `show` tells which.
    if let Some(op) = &t.op {
        let _ = write!(out, " ({} unfinished)", op.kind);
    }
    out
}

/// How many terminal columns `text` takes (wide characters such as CJK and emoji take two).
fn width(text: &str) -> usize {
    // Printable ASCII takes a column a byte; only other text needs the tables.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.len();
    }
    UnicodeWidthStr::width(text)
}

/// `text` on one line, cut with `…` to at most `max` terminal columns.
fn cut(text: &str, max: usize) -> String {
    let one_line = inert(text);
    if width(&one_line) <= max {
        return one_line.into_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in one_line.chars() {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > max.saturating_sub(1) {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// The table `list` prints: aligned columns, titles cut to fit, and a last line with counts
/// per status; only `no tickets` when there are none.
#[must_use]
pub fn table(
    tickets: &[&Ticket],
    states: &[String],
    live: &Liveness,
    now: DateTime<Utc>,
    layout: &Layout,
) -> String {
    if tickets.is_empty() {
        return "no tickets\n".to_string();
    }
    // Each cell is made inert once and measured once: at 10,000 rows this is most of the work.
    let mut rows: Vec<[Cow<'_, str>; 6]> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let state = match states.get(i).map(|s| (s, inert(s))) {
                Some((_, one_line)) if width(&one_line) <= 60 => one_line,
                Some((s, _)) => Cow::Owned(cut(s, 60)),
                None => Cow::Borrowed("-"),
            };
            [
                Cow::Borrowed(t.id.as_str()),
                Cow::Borrowed(t.status.as_str()),
                Cow::Owned(age(now - t.queued_at)),
                state,
                // Titles come from Plane: controls made visible, never a second row.
                inert(&t.title),
                {
                    let session = session_column(t, live.of(t));
                    match inert(&session) {
                        Cow::Borrowed(_) => Cow::Owned(session),
                        Cow::Owned(shown) => Cow::Owned(shown),
                    }
                },
            ]
        })
        .collect();
    let header = ["ID", "STATUS", "AGE", "STATE", "TITLE", "SESSION"].map(Cow::Borrowed);
    let mut cell_widths: Vec<[usize; 6]> = rows
        .iter()
        .map(|r| r.each_ref().map(|c| width(c)))
        .collect();
    let widest = |cells: &[[usize; 6]], i: usize| {
        cells
            .iter()
            .map(|w| w[i])
            .chain(std::iter::once(width(&header[i])))
            .max()
            .unwrap_or(0)
    };
    let title_max = match layout.terminal_width {
        Some(term) => {
            let others: usize = [0, 1, 2, 3, 5]
                .iter()
                .map(|&i| widest(&cell_widths, i))
                .sum();
            // Five gaps of two spaces between six columns.
            term.saturating_sub(others + 10).max(MIN_TITLE_WIDTH)
        }
        None => PIPE_TITLE_WIDTH,
    };
    for (row, w) in rows.iter_mut().zip(&mut cell_widths) {
        if w[4] > title_max {
            row[4] = Cow::Owned(cut(&row[4], title_max));
            w[4] = width(&row[4]);
        }
    }
    let widths: Vec<usize> = (0..6).map(|i| widest(&cell_widths, i)).collect();
    let header_widths = header.each_ref().map(|c| width(c));
    let mut out = String::with_capacity(rows.len() * (widths.iter().sum::<usize>() + 16) + 64);
    let lines = std::iter::once((&header, &header_widths, None)).chain(
        rows.iter()
            .zip(&cell_widths)
            .zip(tickets)
            .map(|((row, w), t)| (row, w, Some(t.status))),
    );
    for (row, cell_width, status) in lines {
        let start = out.len();
        for (i, cell) in row.iter().enumerate() {
            match status {
                Some(s) if i == 1 && layout.color => {
                    let style = status_style(s);
                    let _ = write!(out, "{style}{cell}{style:#}");
                }
                _ => out.push_str(cell),
            }
            if i + 1 < row.len() {
                let pad = widths[i] - cell_width[i] + 2;
                // Spaces a run at a time, not a character at a time.
                const SPACES: &str =
                    "                                                                ";
                let mut left = pad;
                while left > 0 {
                    let n = left.min(SPACES.len());
                    out.push_str(&SPACES[..n]);
                    left -= n;
                }
            }
        }
        let end = out[start..].trim_end().len() + start;
        out.truncate(end);
        out.push('\n');
    }
    let counts: Vec<String> = Status::ALL
        .iter()
        .map(|s| (s, tickets.iter().filter(|t| t.status == *s).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    out.push_str(&counts.join(", "));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{NewTicket, TicketId};

    fn ticket(id: &str, title: &str, status: Status, queued: DateTime<Utc>) -> Ticket {
        let mut t = Ticket::new(
            NewTicket::manual(TicketId::parse(id).unwrap(), title),
            queued,
        );
        t.status = status;
        t
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_empty_queue_prints_only_no_tickets() {
        assert_eq!(
            table(
                &[],
                &[],
                &Liveness::default(),
                at("2026-01-01T00:00:00Z"),
                &Layout::plain()
            ),
            "no tickets\n"
        );
    }

    #[test]
    fn titles_are_cut_to_the_terminal_width_and_never_below_the_minimum() {
        let long = "x".repeat(200);
        let t = ticket("A-1", &long, Status::Pending, at("2026-01-01T00:00:00Z"));
        let now = at("2026-01-01T00:00:05Z");
        for width in [80, 120, 20] {
            let layout = Layout {
                terminal_width: Some(width),
                color: false,
            };
            let out = table(&[&t], &[], &Liveness::default(), now, &layout);
            let row = out.lines().nth(1).unwrap();
            let title_len = row.split_whitespace().nth(4).unwrap().chars().count();
            if width == 20 {
                assert_eq!(title_len, MIN_TITLE_WIDTH, "{out}");
            } else {
                let header = out.lines().next().unwrap();
                assert_eq!(header.chars().count(), width, "{out}");
                assert!(row.chars().count() <= width, "{out}");
            }
        }
        let piped = table(&[&t], &[], &Liveness::default(), now, &Layout::plain());
        let title = piped
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .nth(4)
            .unwrap();
        assert_eq!(title.chars().count(), PIPE_TITLE_WIDTH);
        assert!(title.ends_with('…'));
    }

    #[test]
    fn colour_wraps_only_the_status_and_keeps_columns_aligned() {
        let a = ticket("A-1", "one", Status::Pending, at("2026-01-01T00:00:00Z"));
        let b = ticket(
            "LONGER-22",
            "two",
            Status::Active,
            at("2026-01-01T00:00:00Z"),
        );
        let now = at("2026-01-01T03:00:00Z");
        let coloured = table(
            &[&a, &b],
            &[],
            &Liveness::default(),
            now,
            &Layout {
                terminal_width: None,
                color: true,
            },
        );
        assert!(coloured.contains("\u{1b}["));
        let plain = table(&[&a, &b], &[], &Liveness::default(), now, &Layout::plain());
        assert!(!plain.contains('\u{1b}'));
        let stripped: String = anstream::adapter::strip_str(&coloured).to_string();
        assert_eq!(stripped, plain);
    }

    #[test]
    fn wide_characters_count_as_two_columns() {
        let a = ticket(
            "A-1",
            "修复登录页面的重定向问题并补充测试用例",
            Status::Pending,
            at("2026-01-01T00:00:00Z"),
        );
        let b = ticket("B-2", "ascii", Status::Pending, at("2026-01-01T00:00:00Z"));
        let layout = Layout {
            terminal_width: Some(48),
            color: false,
        };
        let out = table(
            &[&a, &b],
            &[],
            &Liveness::default(),
            at("2026-01-01T00:00:01Z"),
            &layout,
        );
        let lines: Vec<&str> = out.lines().collect();
        // The SESSION column starts at the same terminal column on every line.
        let session_at = |l: &str| width(&l[..l.rfind(" -").unwrap_or(l.len())]);
        assert_eq!(session_at(lines[1]), session_at(lines[2]), "{out}");
        assert!(width(lines[0]) <= 48, "{out}");
        assert!(lines[1].contains('…'), "{out}");
    }
}
