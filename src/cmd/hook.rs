//! The hidden commands a session calls: Claude Code's hooks (claude-code.md) and the worker's
//! helpers, so the worker needs no JSON parser.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::app::App;
use crate::cli::{GlobalArgs, HookCommand};
use crate::error::{invalid, Error};
use crate::term::inert;
use crate::ticket::{Status, Ticket, TicketId};
use crate::workflow::{self, SummarySource, MAX_SUMMARY_BYTES};

use super::Run;

/// How long the worker's `hook prompt` waits for approve to record the session.
const ACTIVE_WAIT: Duration = Duration::from_secs(30);

impl Run for HookCommand {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        match self {
            HookCommand::PromptSubmit => prompt_submit(global),
            HookCommand::Notify => notify(global),
            HookCommand::Prompt { id, restart } => {
                let app = App::load(global.config.as_deref())?;
                let ticket = wait_until_approved(&app, id)?;
                print!("{}", prompt(&ticket, *restart));
                Ok(())
            }
            HookCommand::Agent => {
                let app = App::load(global.config.as_deref())?;
                let a = &app.config.automation;
                let mut out = std::io::stdout().lock();
                for word in std::iter::once(&a.agent_command).chain(&a.agent_args) {
                    out.write_all(word.as_bytes())?;
                    out.write_all(b"\0")?;
                }
                out.flush().context("cannot write to stdout")
            }
            HookCommand::Status { id } => {
                let app = App::load(global.config.as_deref())?;
                println!("{}", app.store.load()?.get(id)?.status);
                Ok(())
            }
        }
    }
}

/// The ticket the session works on, from `PLANE_ORCH_TICKET`; none outside a session.
fn session_ticket() -> Option<TicketId> {
    let raw = std::env::var("PLANE_ORCH_TICKET").ok()?;
    TicketId::parse(raw.trim()).ok()
}

fn read_stdin() -> Result<String> {
    let mut buf = String::new();
    let limit = u64::try_from(16 * MAX_SUMMARY_BYTES).unwrap_or(u64::MAX);
    std::io::stdin()
        .take(limit)
        .read_to_string(&mut buf)
        .context("cannot read the hook's input")?;
    Ok(buf)
}

#[derive(Deserialize)]
struct PromptInput {
    #[serde(default)]
    prompt: String,
}

/// The summary when `prompt` is `/complete ...`: the rest of the text, trimmed.
fn complete_summary(prompt: &str) -> Option<&str> {
    let rest = prompt.strip_prefix("/complete")?;
    if rest.is_empty() || rest.starts_with(char::is_whitespace) {
        Some(rest.trim())
    } else {
        None
    }
}

/// `UserPromptSubmit`: not our session or not `/complete` → silent exit 0; `/complete` with
/// nothing after it → usage on stderr, exit 2 (Claude Code blocks the prompt); otherwise the
/// summary is recorded and the outcome printed for Claude, exit 0 either way.
fn prompt_submit(global: &GlobalArgs) -> Result<()> {
    let Some(id) = session_ticket() else {
        return Ok(());
    };
    let Ok(input) = read_stdin() else {
        return Ok(());
    };
    let Ok(input) = serde_json::from_str::<PromptInput>(&input) else {
        log::debug!("the UserPromptSubmit hook got input that is not JSON; ignored");
        return Ok(());
    };
    let summary = complete_summary(&input.prompt);
    if summary == Some("") {
        return Err(invalid(
            "usage: /complete <summary of what was done>: the summary must not be empty",
        ));
    }
    let app = match App::load(global.config.as_deref()) {
        Ok(app) => app,
        Err(e) => {
            if summary.is_some() {
                println!("plane-orch: NOT recorded: {}", inert(&format!("{e:#}")));
            }
            return Ok(());
        }
    };
    // Any prompt means the person is back: the session no longer waits for them.
    if let Err(e) = workflow::clear_waiting(&app, &id) {
        log::warn!("cannot clear the waiting mark of {id}: {e:#}");
    }
    let Some(summary) = summary else {
        return Ok(());
    };
    match workflow::complete(&app, &id, summary, SummarySource::Hook) {
        Ok(_) => println!("plane-orch: recorded completion summary for {id}"),
        Err(e) => println!("plane-orch: NOT recorded: {}", inert(&format!("{e:#}"))),
    }
    Ok(())
}

#[derive(Deserialize)]
struct NotifyInput {
    #[serde(default)]
    notification_type: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// `Notification`: the session waits for the person; marks the ticket `waiting`. Never fails
/// the hook: a problem is logged on stderr only.
fn notify(global: &GlobalArgs) -> Result<()> {
    let Some(id) = session_ticket() else {
        return Ok(());
    };
    let outcome = (|| -> Result<()> {
        let input: NotifyInput =
            serde_json::from_str(&read_stdin()?).context("the Notification hook's input")?;
        let app = App::load(global.config.as_deref())?;
        let message = input
            .message
            .unwrap_or_else(|| "Claude Code needs you".into());
        workflow::mark_waiting(&app, &id, &message, input.notification_type.as_deref())?;
        Ok(())
    })();
    if let Err(e) = outcome {
        eprintln!(
            "plane-orch: cannot mark {id} as waiting: {}",
            inert(&format!("{e:#}"))
        );
    }
    Ok(())
}

/// The worker starts before approve has recorded the ticket active; waits for that (briefly),
/// so the agent never runs for a ticket that is not active.
fn wait_until_approved(app: &App, id: &TicketId) -> Result<Ticket> {
    let deadline = Instant::now() + ACTIVE_WAIT;
    loop {
        let ticket = app.store.load()?.get(id)?.clone();
        if ticket.status != Status::Pending || Instant::now() >= deadline {
            if ticket.status == Status::Active && ticket.approved_snapshot.is_some() {
                return Ok(ticket);
            }
            return Err(Error::Conflict(format!(
                "{id} is {}, not active: there is nothing for the agent to do",
                ticket.status
            ))
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The most bytes of the description put into the prompt. The prompt is one argument of the
/// agent's command line, and Linux refuses a single argument over 128 KiB ("Argument list
/// too long"): a longer description is cut, with a line saying where to read the rest.
pub const MAX_PROMPT_DESCRIPTION: usize = 64 * 1024;
/// The most bytes of the title put into the prompt.
pub const MAX_PROMPT_TITLE: usize = 1024;

/// At most `max` bytes of `text`, cut at a line end when one is near, else at a character.
fn cut_at(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    match head.rfind('\n') {
        Some(nl) if nl + 1024 >= end => &head[..nl],
        _ => head,
    }
}

/// The agent's first message, built from what the person approved.
#[must_use]
pub fn prompt(ticket: &Ticket, restart: bool) -> String {
    let snap = ticket.approved_snapshot.as_ref();
    let title = snap.map_or(&ticket.title, |s| &s.title);
    let description = snap.map_or(&ticket.description_text, |s| &s.description_text);
    let url = snap.map_or(ticket.url.as_ref(), |s| s.url.as_ref());
    let id = &ticket.id;
    let finish = "When the work is done, say so and propose a short summary of what you did; \
                  the person finishes the ticket with /complete <summary>.";
    if restart {
        return format!(
            "This session was restarted. Continue the work on ticket {id}: {title}\n\n{finish}\n"
        );
    }
    let title = cut_at(title, MAX_PROMPT_TITLE);
    let mut text = format!("Work on ticket {id}: {title}\n");
    if let Some(url) = url {
        text.push_str(&format!("URL: {url}\n"));
    }
    text.push('\n');
    if description.trim().is_empty() {
        text.push_str("(no description)\n");
    } else {
        let kept = cut_at(description, MAX_PROMPT_DESCRIPTION);
        text.push_str(kept);
        text.push('\n');
        if kept.len() < description.len() {
            let whole = url.map_or_else(String::new, |u| format!(" at {u} or"));
            text.push_str(&format!(
                "\n[The description is cut here: it is longer than {} KiB. Read the whole \
                 ticket{whole} with `plane-orch show {id}`.]\n",
                MAX_PROMPT_DESCRIPTION / 1024
            ));
        }
    }
    text.push('\n');
    text.push_str(finish);
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::{complete_summary, prompt};
    use crate::ticket::{now, NewTicket, Snapshot, Ticket, TicketId, TriggerType};

    fn ticket() -> Ticket {
        let mut t = Ticket::new(
            NewTicket {
                id: TicketId::parse("P-1").unwrap(),
                title: "edited later".into(),
                description_html: String::new(),
                description_text: "edited later".into(),
                url: None,
                trigger_type: TriggerType::Manual,
            },
            now(),
        );
        t.approved_snapshot = Some(Snapshot {
            title: "Approved title".into(),
            description_html: String::new(),
            description_text: "Approved text".into(),
            url: Some("https://plane.example/P-1".into()),
        });
        t
    }

    #[test]
    fn the_prompt_is_built_from_the_approved_snapshot() {
        let p = prompt(&ticket(), false);
        assert!(p.starts_with("Work on ticket P-1: Approved title\nURL: https://plane.example/P-1\n\nApproved text\n"), "{p}");
        assert!(p.contains("/complete <summary>"));
        assert!(!p.contains("edited later"));
        let r = prompt(&ticket(), true);
        assert!(
            r.contains("restarted") && r.contains("Approved title"),
            "{r}"
        );
        assert!(!r.contains("Approved text"));
    }

    #[test]
    fn a_long_description_is_cut_with_a_pointer_to_the_ticket() {
        let mut t = ticket();
        let snap = t.approved_snapshot.as_mut().unwrap();
        snap.description_text = "é long line of text\n".repeat(10_000);
        let p = prompt(&t, false);
        assert!(
            p.len() < super::MAX_PROMPT_DESCRIPTION + 1024,
            "{}",
            p.len()
        );
        assert!(p.contains("[The description is cut here"), "{p}");
        assert!(p.contains("https://plane.example/P-1") && p.contains("plane-orch show P-1"));
        assert!(p.contains("/complete <summary>"));
    }

    #[test]
    fn only_the_complete_command_carries_a_summary() {
        assert_eq!(complete_summary("/complete done it"), Some("done it"));
        assert_eq!(complete_summary("/complete\nline two\n"), Some("line two"));
        assert_eq!(complete_summary("/complete"), Some(""));
        assert_eq!(complete_summary("/complete   "), Some(""));
        assert_eq!(complete_summary("/completed x"), None);
        assert_eq!(complete_summary("please /complete x"), None);
    }
}
