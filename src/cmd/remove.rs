use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, RemoveArgs};
use crate::workflow::{self, RemoveOptions};

use crate::view::ApiTicket;

use super::{print_json, Run};

impl Run for RemoveArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let opts = RemoveOptions {
            kill_session: self.kill_session,
        };
        let ticket = workflow::remove(&app, &self.id, opts)?;
        if self.json {
            return print_json(&ApiTicket::new(&ticket, None));
        }
        println!("{} removed (it was {})", ticket.id, ticket.status);
        Ok(())
    }
}
