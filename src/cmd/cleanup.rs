use anyhow::{Context, Result};

use crate::app::App;
use crate::cli::{CleanupArgs, GlobalArgs};
use crate::workflow::{self, human_bytes, CleanupOptions};

use super::{print_json, Run};

impl Run for CleanupArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let opts = CleanupOptions {
            dry_run: self.dry_run,
            older_than_days: self
                .older_than
                .unwrap_or(app.config.cleanup.older_than_days),
            // Absolute: git writes the bundle from inside the repository.
            bundle_dir: match &self.bundle {
                Some(dir) => Some(std::path::absolute(dir).with_context(|| {
                    format!("cannot resolve the bundle folder {}", dir.display())
                })?),
                None => app.config.cleanup.bundle_dir.clone(),
            },
        };
        let report = workflow::cleanup(&app, &opts)?;
        if self.json {
            return print_json(&report);
        }
        if self.dry_run {
            println!("dry run: nothing was changed; cleanup would do this:");
        }
        if report.tickets.is_empty() {
            println!("nothing to clean up");
        }
        for t in &report.tickets {
            println!("{} ({}):", t.ticket, t.was);
            if let Some(b) = &t.bundle {
                println!("  bundle   {}", b.display());
            }
            let verb = if self.dry_run { "remove" } else { "removed" };
            for r in &t.removed {
                println!("  {verb:<8} {r}");
            }
            for k in &t.kept {
                println!("  kept     {k}");
            }
        }
        let verb = if self.dry_run { "would free" } else { "freed" };
        println!("{verb} {}", human_bytes(report.freed_bytes));
        Ok(())
    }
}
