//! The hidden commands a session calls: Claude Code's hooks (claude-code.md) and the worker's
//! helpers, so the worker needs no JSON parser.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::app::App;
use crate::cli::{GlobalArgs, HookCommand};
use crate::error::{invalid, Error};
use crate::term::inert;
use crate::ticket::{Status, Ticket, TicketId};
use crate::workflow::supervise::{self, Hook, HookInput};
use crate::workflow::{self, SummarySource, MAX_SUMMARY_BYTES};

use super::Run;

/// How long the worker's `hook prompt` waits for approve to record the session.
const ACTIVE_WAIT: Duration = Duration::from_secs(30);

impl Run for HookCommand {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        match self {
            HookCommand::PromptSubmit => prompt_submit(global),
            HookCommand::SessionStart => event(global, Hook::SessionStart),
            HookCommand::PreToolUse => event(global, Hook::PreToolUse),
            HookCommand::Notify => event(global, Hook::Notification),
            HookCommand::Stop => event(global, Hook::Stop),
            HookCommand::StopFailure => event(global, Hook::StopFailure),
            HookCommand::SessionEnd => event(global, Hook::SessionEnd),
            HookCommand::StatusLine => event(global, Hook::StatusLine),
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
    // A PreToolUse input carries the tool's whole input (a file Claude writes): room for it.
    let limit = u64::try_from(1024 * MAX_SUMMARY_BYTES).unwrap_or(u64::MAX);
    std::io::stdin()
        .take(limit)
        .read_to_string(&mut buf)
        .context("cannot read the hook's input")?;
    Ok(buf)
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

/// What a hook prints for Claude Code: `systemMessage` is shown in the pane even when no model
/// turn follows; `additionalContext` is what the model reads.
#[must_use]
pub fn hook_answer(event: &str, message: &str) -> String {
    serde_json::json!({
        "systemMessage": message,
        "hookSpecificOutput": {"hookEventName": event, "additionalContext": message},
    })
    .to_string()
}

/// Reads and parses the hook's input; `None` (after a one-line message) when it is unusable.
fn hook_input(what: &str) -> Option<HookInput> {
    let raw = match read_stdin() {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("plane-orch: {what}: {}", inert(&format!("{e:#}")));
            return None;
        }
    };
    match serde_json::from_str(&raw) {
        Ok(input) => Some(input),
        Err(e) => {
            eprintln!("plane-orch: {what}: the hook's input is not JSON ({e}); ignored");
            None
        }
    }
}

/// Every hook but UserPromptSubmit: records the activity. A problem never stops Claude: one
/// line on stderr, exit 0. Only a used-up budget refuses a tool call (exit 2, which Claude
/// Code reports to the agent instead of running the tool).
fn event(global: &GlobalArgs, hook: Hook) -> Result<()> {
    let Some(id) = session_ticket() else {
        return Ok(());
    };
    let what = format!("{hook:?} hook for {id}");
    let Some(input) = hook_input(&what) else {
        return Ok(());
    };
    let app = match App::load(global.config.as_deref()) {
        Ok(app) => app,
        Err(e) => {
            eprintln!(
                "plane-orch: {what}: {}",
                crate::activity::text(&format!("{e:#}"))
            );
            return Ok(());
        }
    };
    let outcome = match supervise::on_hook(&app, &id, hook, &input) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!(
                "plane-orch: {what}: {}",
                crate::activity::text(&format!("{e:#}"))
            );
            return Ok(());
        }
    };
    if hook == Hook::StatusLine {
        let a = outcome.activity.as_ref();
        let cost = a.map(|a| a.cost(&app.config.prices)).unwrap_or_default();
        let budget = a.and_then(|a| a.budget(app.config.automation.budget_usd));
        let spend = match budget {
            Some(b) => format!("${:.2}/{b:.2}", cost.spent_usd),
            None => format!("${:.2}", cost.spent_usd),
        };
        println!("plane-orch {id} · {spend}");
        return Ok(());
    }
    if let (Hook::PreToolUse, Some(message)) = (hook, outcome.over_budget) {
        return Err(Error::Invalid(message).into());
    }
    Ok(())
}

/// `UserPromptSubmit`: records the activity; then, when the prompt is `/complete ...`, records
/// the summary and answers with a `systemMessage` (shown in the pane with or without a model
/// turn). `/complete` with nothing after it → usage on stderr, exit 2 (Claude Code blocks the
/// prompt). Any other prompt while the budget is used up is blocked the same way.
fn prompt_submit(global: &GlobalArgs) -> Result<()> {
    let Some(id) = session_ticket() else {
        return Ok(());
    };
    let Some(input) = hook_input(&format!("UserPromptSubmit hook for {id}")) else {
        return Ok(());
    };
    let prompt = input.prompt.clone().unwrap_or_default();
    let summary = complete_summary(&prompt);
    if summary == Some("") {
        return Err(invalid(
            "usage: /complete <summary of what was done>: the summary must not be empty",
        ));
    }
    let app = match App::load(global.config.as_deref()) {
        Ok(app) => app,
        Err(e) => {
            if summary.is_some() {
                let why = crate::activity::text(&format!("{e:#}"));
                println!(
                    "{}",
                    hook_answer(
                        "UserPromptSubmit",
                        &format!("plane-orch: NOT recorded: {why}")
                    )
                );
            }
            return Ok(());
        }
    };
    let over_budget = match supervise::on_hook(&app, &id, Hook::PromptSubmit, &input) {
        Ok(outcome) => outcome.over_budget,
        Err(e) => {
            eprintln!(
                "plane-orch: cannot record the activity of {id}: {}",
                inert(&format!("{e:#}"))
            );
            None
        }
    };
    let Some(summary) = summary else {
        if let Some(message) = over_budget {
            return Err(Error::Invalid(message).into());
        }
        return Ok(());
    };
    let message = match workflow::complete(&app, &id, summary, SummarySource::Hook) {
        Ok(_) => format!("plane-orch: recorded the summary for {id}"),
        Err(e) => format!(
            "plane-orch: NOT recorded: {}",
            crate::activity::text(&format!("{e:#}"))
        ),
    };
    println!("{}", hook_answer("UserPromptSubmit", &message));
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
    let approved = ticket.approved();
    let title = approved.map_or(ticket.title.as_str(), |a| a.title);
    let description = approved.map_or_else(|| ticket.description_text(), |a| a.description_text);
    let url = approved.map_or(ticket.url.as_deref(), |a| a.url);
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
                description_html: "<p>edited later</p>".into(),
                description_text: Some("edited later".into()),
                url: None,
                trigger_type: TriggerType::Manual,
            },
            now(),
        );
        t.approved_snapshot = Some(Box::new(Snapshot {
            title: Some("Approved title".into()),
            description_html: Some(String::new()),
            description_text: Some("Approved text".into()),
            url: Some("https://plane.example/P-1".into()),
        }));
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
        snap.description_text = Some("é long line of text\n".repeat(10_000));
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
