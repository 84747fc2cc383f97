use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, ShowArgs};
use chrono::{DateTime, Utc};

use crate::activity::{clip, state_column, Activity};
use crate::term::{inert, inert_lines};
use crate::ticket::{Status, Ticket};
use crate::view::ApiTicketDetail;

use super::{
    list::{age, display_now},
    print_json, Run,
};

impl Run for ShowArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        // One ticket is read: from the queue, else through the archive's index.
        let found = match app.store.find(&self.id)? {
            Some(t) => Some(t),
            None => app.store.find_archived(&self.id)?,
        };
        let ticket = &found.ok_or_else(|| crate::error::Error::NotFound(self.id.to_string()))?;
        let activity = app.activity.load(&ticket.id);
        let now = display_now();
        if self.json {
            let live = crate::session::Liveness::check(&app.config, [ticket]);
            return print_json(&ApiTicketDetail::with_activity(
                ticket,
                live.of(ticket),
                activity.as_ref(),
                &app.config,
                now,
            ));
        }
        // Everything below may hold text from Plane, a session or a completion file.
        println!("{}  {}", ticket.id, inert(&ticket.title));
        println!("status:    {}", ticket.status);
        println!(
            "queued:    {} ({} ago)",
            ticket.queued_at.to_rfc3339(),
            age(now - ticket.queued_at)
        );
        if let Some(url) = &ticket.url {
            println!("url:       {}", inert(url));
        }
        if let Some(s) = &ticket.session {
            println!(
                "session:   {} ({}) in {}",
                inert(&s.name),
                inert(&s.backend),
                inert(&s.workdir)
            );
            if let Some(b) = &s.branch {
                println!("branch:    {}", inert(b));
            }
        }
        if let Some(b) = &ticket.branch {
            print_branch(b);
        }
        if let Some(a) = &activity {
            print_activity(&app, ticket, a, now);
        }
        if let Some(e) = &ticket.last_error {
            println!("error:     {}", inert(e));
        }
        if let Some(op) = crate::workflow::op::status(&app, ticket) {
            println!("operation: {op}");
        }
        if let Some(summary) = &ticket.summary {
            println!("summary:\n{}", indent(summary));
        }
        if !ticket.description_text().is_empty() {
            println!("description:\n{}", indent(ticket.description_text()));
        }
        println!("events:");
        for e in &ticket.events {
            match &e.detail {
                Some(d) => println!(
                    "  {}  {:<12} {}",
                    e.at.to_rfc3339(),
                    inert(&e.event),
                    inert(d)
                ),
                None => println!("  {}  {}", e.at.to_rfc3339(), inert(&e.event)),
            }
        }
        Ok(())
    }
}

/// What the branch holds, as `show` prints it.
fn print_branch(b: &crate::ticket::BranchState) {
    println!(
        "commits:   {} ({} files changed, +{} -{})",
        b.commit_count, b.files_changed, b.insertions, b.deletions
    );
    for c in &b.commits {
        println!(
            "  {} {}",
            inert(c.sha.get(..7).unwrap_or(&c.sha)),
            inert(&c.subject)
        );
    }
    let more = b.commit_count.saturating_sub(b.commits.len());
    if more > 0 {
        println!("  and {more} more");
    }
    if b.uncommitted + b.untracked > 0 {
        println!(
            "worktree:  {} changed, {} untracked file(s) not committed",
            b.uncommitted, b.untracked
        );
    }
    if let Some(n) = b.unpushed {
        println!("unpushed:  {n} commit(s) on no remote");
    }
    if let Some(url) = &b.review_url {
        println!("review:    {}", inert(url));
    }
}

fn print_activity(app: &App, t: &Ticket, a: &Activity, now: DateTime<Utc>) {
    let cost = a.cost(&app.config.prices);
    let budget = t.budget_usd.or(a.budget(app.config.automation.budget_usd));
    if t.status == Status::Active {
        println!("state:     {}", state_column(a, &cost, budget, now));
        if let Some(m) = &a.message {
            println!("message:   {}", clip(m, false, 300));
        }
        println!(
            "activity:  last hook event {} ago ({})",
            age(now - a.last_activity_at),
            a.last_activity_at.to_rfc3339()
        );
        for f in &a.flags {
            println!(
                "flag:      {} since {}: {}",
                f.flag,
                f.at.to_rfc3339(),
                inert(&f.detail)
            );
            if let Some(screen) = &f.screen {
                println!("  the pane shows:\n{}", indent(&clip(screen, true, 8192)));
            }
        }
    }
    let t = &cost.tokens;
    match budget {
        Some(b) => println!("budget:    ${b:.2} (${:.2} spent)", cost.spent_usd),
        None => println!("budget:    none (${:.2} spent)", cost.spent_usd),
    }
    println!(
        "cost:      ${:.4} from {} session(s) at the prices of {}{}",
        cost.usd,
        cost.sessions,
        cost.prices_date,
        cost.claude_reported_usd
            .map_or_else(String::new, |r| format!("; Claude Code says ${r:.4}"))
    );
    println!(
        "tokens:    {} input, {} output, {} cache read, {} cache write",
        t.input, t.output, t.cache_read, t.cache_write
    );
    for (model, m) in &cost.by_model {
        let priced = if cost.unpriced_models.contains(model) {
            " (no price in the config: tokens only)"
        } else {
            ""
        };
        println!(
            "  {}: {} in, {} out, {} cache read, {} cache write{priced}",
            clip(model, false, 60),
            m.input,
            m.output,
            m.cache_read,
            m.cache_write
        );
    }
    if !a.history.is_empty() {
        println!("activity history:");
        for e in &a.history {
            match &e.detail {
                Some(d) => println!(
                    "  {}  {:<12} {}",
                    e.at.to_rfc3339(),
                    e.event,
                    clip(d, false, 300)
                ),
                None => println!("  {}  {}", e.at.to_rfc3339(), e.event),
            }
        }
    }
}

/// Text indented two spaces, its line breaks kept and every other control made visible.
fn indent(text: &str) -> String {
    inert_lines(text)
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
