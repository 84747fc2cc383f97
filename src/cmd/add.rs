use anyhow::Result;

use crate::app::App;
use crate::cli::{AddArgs, GlobalArgs};
use crate::view::ApiTicket;
use crate::workflow::{self, AddRequest};

use super::{print_json, Run};

impl Run for AddArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let ticket = workflow::add(
            &app,
            AddRequest {
                id: self.id.clone(),
                title: self.title.clone(),
                description: self.description.clone(),
                url: self.url.clone(),
            },
        )?;
        if self.json {
            print_json(&ApiTicket::new(&ticket, None))
        } else {
            println!("{} queued as pending", ticket.id);
            Ok(())
        }
    }
}
