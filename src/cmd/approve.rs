use anyhow::Result;

use crate::app::App;
use crate::cli::{ApproveArgs, GlobalArgs};
use crate::view::ApiTicket;
use crate::workflow::{self, ApproveOptions};

use super::{print_json, Run};

impl Run for ApproveArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let opts = ApproveOptions {
            no_session: self.no_session,
            budget_usd: self.budget,
        };
        let ticket = workflow::approve(&app, &self.id, opts)?;
        if self.json {
            // A session approve started is running: approve waits for it to start.
            let alive = ticket.session.as_ref().map(|_| true);
            return print_json(&ApiTicket::new(&ticket, alive));
        }
        match &ticket.session {
            Some(s) => println!(
                "{} is active: session {} in {} (`plane-orch attach {}`)",
                ticket.id, s.name, s.workdir, ticket.id
            ),
            None => println!("{} is active (no session)", ticket.id),
        }
        Ok(())
    }
}
