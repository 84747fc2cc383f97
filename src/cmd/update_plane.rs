use anyhow::Result;
use serde_json::json;

use crate::app::App;
use crate::cli::{GlobalArgs, UpdatePlaneArgs};
use crate::view::ApiTicket;
use crate::workflow::{self, UpdatePlaneOptions};

use super::{print_json, Run};

impl Run for UpdatePlaneArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let opts = UpdatePlaneOptions {
            dry_run: self.dry_run,
            summary: None,
            force: self.force,
            no_plane: self.no_plane,
        };
        let out = workflow::update_plane(&app, &self.id, &opts)?;
        if self.json {
            return print_json(&json!({
                "status": if self.dry_run {
                    "dry_run"
                } else if self.no_plane {
                    "done_without_plane"
                } else {
                    "updated"
                },
                "ticket_id": out.ticket.id,
                "comment_posted": out.comment_posted,
                "comment_edited": out.comment_edited,
                "state_updated": out.state_updated,
                "item_deleted": out.item_deleted,
                "plan": out.plan,
                "warnings": out.warnings,
                "ticket": ApiTicket::new(&out.ticket, None),
            }));
        }
        if self.dry_run {
            println!(
                "dry run: nothing was sent; update-plane {} would:",
                out.ticket.id
            );
            for line in &out.plan {
                println!("  {}", crate::term::inert(line));
            }
            return Ok(());
        }
        for w in &out.warnings {
            eprintln!("warning: {w} (posted anyway: --force)");
        }
        if self.no_plane {
            println!(
                "{} is done: nothing was posted to Plane (recorded in its history)",
                out.ticket.id
            );
            return Ok(());
        }
        if out.item_deleted {
            println!(
                "{} is done: the work item was deleted in Plane, so there is nothing left to \
                 update (recorded on the ticket; {})",
                out.ticket.id,
                if out.comment_posted {
                    "the summary comment was posted before"
                } else {
                    "no comment was posted"
                }
            );
            return Ok(());
        }
        let state = if out.state_updated {
            "state moved"
        } else {
            "state left alone"
        };
        let comment = if out.comment_edited {
            "the comment in Plane now holds the corrected summary"
        } else {
            "summary posted to Plane"
        };
        let sync = &out.ticket.plane_sync;
        let mut extra = String::new();
        if sync.branch_pushed_at.is_some() {
            extra.push_str(", branch pushed");
        }
        if sync.link_added_at.is_some() {
            extra.push_str(", link added");
        }
        println!("{} is done: {comment}{extra}, {state}", out.ticket.id);
        Ok(())
    }
}
