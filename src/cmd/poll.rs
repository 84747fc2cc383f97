use std::time::Duration;

use anyhow::Result;

use crate::app::App;
use crate::cli::{GlobalArgs, PollArgs};
use crate::workflow::{self, PollOptions, PollReport};

use super::{print_json, Run};

impl Run for PollArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let app = App::load(global.config.as_deref())?;
        let opts = PollOptions {
            dry_run: self.dry_run,
            // The progress line is for a person at a terminal; never with -q or --json.
            progress: !global.quiet && !self.json,
        };
        if !self.repeat {
            let report = workflow::poll(&app, &opts)?;
            self.print(&app, &report, global.quiet)?;
            // The projects that were read are merged; the exit status says some were not.
            return report.failure().map_or(Ok(()), Err);
        }
        let interval = self
            .interval
            .map_or(app.config.poll.interval, Duration::from_secs);
        loop {
            // One failed tick (Plane down) must not end the loop: the next one may work.
            match workflow::poll(&app, &opts) {
                Ok(report) => {
                    self.print(&app, &report, global.quiet)?;
                    if let Some(e) = report.failure() {
                        eprintln!("error: {e:#}");
                    }
                }
                Err(e) => eprintln!("error: {e:#}"),
            }
            std::thread::sleep(interval);
        }
    }
}

impl PollArgs {
    /// Prints the tick's report: JSON, or lines for people. `--quiet` prints nothing (errors
    /// still go to stderr), so a cron job mails only when something went wrong.
    fn print(&self, app: &App, report: &PollReport, quiet: bool) -> Result<()> {
        if self.json {
            return print_json(report);
        }
        if quiet {
            return Ok(());
        }
        if report.skipped {
            println!(
                "another poll is running (it holds {}): nothing done",
                workflow::poll_lock_path(app).display()
            );
            return Ok(());
        }
        if report.dry_run {
            println!("dry run: nothing was changed; a poll would have:");
        }
        for line in &report.actions {
            println!("  {line}");
        }
        for f in &report.failed_projects {
            println!(
                "  skipped Plane project {}: it could not be read: {}",
                f.project_id, f.error
            );
        }
        println!(
            "{} queued, {} completed, {} sessions lost",
            report.queued, report.completed, report.sessions_lost
        );
        Ok(())
    }
}
