use std::io::Write;

use anyhow::{Context, Result};

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::doctor::{self, Status};

use super::{print_json, Run};

impl Run for DoctorArgs {
    fn run(&self, global: &GlobalArgs) -> Result<()> {
        let checks = doctor::run(global.config.as_deref());
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        if self.json {
            print_json(&checks)?;
        } else {
            // anstream drops the colour when stdout is not a terminal or NO_COLOR is set.
            let width =
                terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0));
            let mut out = anstream::stdout().lock();
            for check in &checks {
                let style = match check.status {
                    Status::Ok => anstyle::AnsiColor::Green.on_default(),
                    Status::Warn => anstyle::AnsiColor::Yellow.on_default(),
                    Status::Fail => anstyle::AnsiColor::Red.on_default().bold(),
                };
                let text = check.render(width);
                let (mark, rest) = text.split_at(check.status.mark().len());
                writeln!(out, "{style}{mark}{style:#}{rest}").context("cannot write to stdout")?;
            }
        }
        match failed {
            0 => Ok(()),
            1 => Err(anyhow::anyhow!("1 check failed")),
            n => Err(anyhow::anyhow!("{n} checks failed")),
        }
    }
}
