use std::io::Read;

use anyhow::{Context, Result};

use crate::app::App;
use crate::cli::{CompleteArgs, GlobalArgs};
use crate::error::invalid;
use crate::view::ApiTicket;
use crate::workflow::{self, SummarySource, MAX_SUMMARY_BYTES};

use super::{print_json, Run};

impl Run for CompleteArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let (summary, source) = self.summary()?;
        let app = App::load(global.config.as_deref())?;
        let ticket = workflow::complete(&app, &self.id, &summary, source)?;
        if self.json {
            print_json(&ApiTicket::new(&ticket, None))
        } else {
            println!(
                "{} is completed: `plane-orch update-plane {}` posts the summary",
                ticket.id, ticket.id
            );
            Ok(())
        }
    }
}

impl CompleteArgs {
    fn summary(&self) -> Result<(String, SummarySource)> {
        let limit = u64::try_from(MAX_SUMMARY_BYTES).unwrap_or(u64::MAX) + 1;
        match (&self.summary, &self.file) {
            (Some(s), None) if s == "-" => {
                let mut buf = String::new();
                std::io::stdin()
                    .take(limit)
                    .read_to_string(&mut buf)
                    .context("cannot read the summary from standard input (is it UTF-8?)")?;
                Ok((buf, SummarySource::Stdin))
            }
            (Some(s), None) => Ok((s.clone(), SummarySource::Argument)),
            (None, Some(path)) => {
                let mut buf = String::new();
                std::fs::File::open(path)
                    .and_then(|f| f.take(limit).read_to_string(&mut buf))
                    .with_context(|| {
                        format!(
                            "cannot read the summary file {} (is it UTF-8?)",
                            path.display()
                        )
                    })?;
                Ok((buf, SummarySource::File))
            }
            _ => Err(invalid(
                "give the summary as an argument, with --file F, or as - to read standard input",
            )),
        }
    }
}
