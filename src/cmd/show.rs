use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, ShowArgs};
use crate::term::{inert, inert_lines};
use crate::view::ApiTicketDetail;

use super::{
    list::{age, display_now},
    print_json, Run,
};

impl Run for ShowArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let state = app.store.load()?;
        let archived;
        let ticket = match state.get(&self.id) {
            Ok(t) => t,
            Err(not_found) => {
                archived = app.store.find_archived(&self.id)?.ok_or(not_found)?;
                &archived
            }
        };
        if self.json {
            let live = crate::session::Liveness::check(&app.config, [ticket]);
            return print_json(&ApiTicketDetail::new(ticket, live.of(ticket)));
        }
        // Everything below may hold text from Plane, a session or a completion file.
        let now = display_now();
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
        if let Some(w) = &ticket.waiting {
            println!(
                "waiting:   {} (since {})",
                inert(&w.message),
                w.since.to_rfc3339()
            );
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
        if !ticket.description_text.is_empty() {
            println!("description:\n{}", indent(&ticket.description_text));
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

/// Text indented two spaces, its line breaks kept and every other control made visible.
fn indent(text: &str) -> String {
    inert_lines(text)
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
