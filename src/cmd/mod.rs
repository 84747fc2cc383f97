//! One file per subcommand: each parses nothing (clap did), calls the workflow, prints.

mod add;
mod approve;
mod complete;
mod list;
mod remove;
mod serve;
mod show;

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{Cli, Command, GlobalArgs};

/// A subcommand: runs with the global options and prints its result on stdout.
pub trait Run {
    /// # Errors
    /// Whatever the command fails with.
    fn run(&self, global: &GlobalArgs) -> Result<()>;
}

/// Runs the subcommand the command line names.
///
/// # Errors
/// Whatever the command fails with.
pub fn dispatch(cli: Cli) -> Result<()> {
    let global = &cli.global;
    match &cli.command {
        Command::List(args) => args.run(global),
        Command::Show(args) => args.run(global),
        Command::Add(args) => args.run(global),
        Command::Approve(args) => args.run(global),
        Command::Complete(args) => args.run(global),
        Command::Remove(args) => args.run(global),
        Command::Serve(args) => args.run(global),
    }
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).context("cannot write JSON")?;
    writeln!(out).context("cannot write to stdout")?;
    Ok(())
}
