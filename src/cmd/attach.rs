use anyhow::Result;

use crate::app::App;
use crate::cli::{AttachArgs, GlobalArgs};
use crate::error::conflict;
use crate::session;
use crate::ticket::Status;

use super::Run;

impl Run for AttachArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let ticket = app.store.load()?.get(&self.id)?.clone();
        let id = &ticket.id;
        if ticket.status != Status::Active {
            return Err(conflict(format!(
                "{id} is {}: only an active ticket has a session to attach to",
                ticket.status
            )));
        }
        let Some(s) = &ticket.session else {
            return Err(conflict(format!("{id} was approved without a session")));
        };
        if !session::is_alive(&app.config, &s.name)? {
            return Err(conflict(format!(
                "the session {} of {id} has ended: `plane-orch restart {id}` starts it again",
                s.name
            )));
        }
        session::attach(&s.name)
    }
}
