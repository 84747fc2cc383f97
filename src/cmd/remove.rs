use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, RemoveArgs};
use crate::workflow::{self, RemoveOptions};

use super::Run;

impl Run for RemoveArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let opts = RemoveOptions {
            kill_session: self.kill_session,
        };
        let ticket = workflow::remove(&app, &self.id, opts)?;
        println!("{} removed (it was {})", ticket.id, ticket.status);
        Ok(())
    }
}
