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
                "state_updated": out.state_updated,
                "item_deleted": out.item_deleted,
                "plan": out.plan,
                "ticket": ApiTicket::new(&out.ticket, None),
            }));
        }
        if self.dry_run {
            println!(
                "dry run: nothing was sent; update-plane {} would:",
                out.ticket.id
            );
            for line in &out.plan {
                println!("  {line}");
            }
            return Ok(());
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
        println!(
            "{} is done: summary posted to Plane, {state}",
            out.ticket.id
        );
        Ok(())
    }
}
