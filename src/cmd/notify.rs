use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, NotifyCommand};

use super::{print_json, Run};

impl Run for NotifyCommand {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let NotifyCommand::Test(args) = self;
        let app = App::load(global.config.as_deref())?;
        let results = crate::notify::test(&app, args.sink.as_deref())?;
        if args.json {
            print_json(&results)?;
        } else {
            for r in &results {
                let mark = if r.ok { "✓" } else { "✗" };
                println!("{mark} {} ({}): {}", r.sink, r.kind, r.answer);
            }
        }
        let failed = results.iter().filter(|r| !r.ok).count();
        if failed > 0 {
            anyhow::bail!(
                "{failed} of {} sinks did not take the test message",
                results.len()
            );
        }
        Ok(())
    }
}
