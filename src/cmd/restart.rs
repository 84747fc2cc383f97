use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, RestartArgs};
use crate::view::ApiTicket;
use crate::workflow;

use super::{print_json, Run};

impl Run for RestartArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let ticket = workflow::restart(&app, &self.id)?;
        if self.json {
            return print_json(&ApiTicket::new(&ticket, Some(true)));
        }
        if let Some(s) = &ticket.session {
            println!(
                "{} restarted: session {} in {} (`plane-orch attach {}`)",
                ticket.id, s.name, s.workdir, ticket.id
            );
        }
        Ok(())
    }
}
