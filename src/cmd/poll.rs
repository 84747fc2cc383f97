use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, PollArgs};
use crate::workflow;

use super::Run;

impl Run for PollArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let lost = workflow::flag_lost_sessions(&app, self.dry_run)?;
        println!("0 queued, 0 completed, {lost} sessions lost");
        Ok(())
    }
}
