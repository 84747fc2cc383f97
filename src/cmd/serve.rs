use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, ServeArgs};
use crate::server::{self, ServeOptions};

use super::Run;

impl Run for ServeArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        server::serve(
            app,
            &ServeOptions {
                bind: self.bind,
                poll: self.poll,
            },
        )
    }
}
