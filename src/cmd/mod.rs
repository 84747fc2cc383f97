//! One file per subcommand: each parses nothing (clap did), calls the workflow, prints.

mod add;
mod approve;
mod attach;
mod budget;
mod cleanup;
mod complete;
mod completions;
mod doctor;
mod hook;
mod init;
mod list;
mod notify;
mod poll;
mod remove;
mod restart;
mod serve;
mod show;
mod update_plane;

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
    crate::logging::want_file(keeps_log(&cli.command));
    match &cli.command {
        Command::List(args) => args.run(global),
        Command::Show(args) => args.run(global),
        Command::Add(args) => args.run(global),
        Command::Approve(args) => args.run(global),
        Command::Complete(args) => args.run(global),
        Command::Remove(args) => args.run(global),
        Command::Doctor(args) => args.run(global),
        Command::Init(args) => args.run(global),
        Command::Completions(args) => args.run(global),
        Command::Attach(args) => args.run(global),
        Command::Budget(args) => args.run(global),
        Command::Restart(args) => args.run(global),
        Command::Cleanup(args) => args.run(global),
        Command::Poll(args) => args.run(global),
        Command::Hook(hook) => hook.run(global),
        Command::UpdatePlane(args) => args.run(global),
        Command::Serve(args) => args.run(global),
        Command::Notify(cmd) => cmd.run(global),
    }
}

/// Whether a command keeps a record in the log file: everything that changes state or runs
/// for long does; commands that only read or print do not.
fn keeps_log(command: &Command) -> bool {
    match command {
        Command::List(_)
        | Command::Show(_)
        | Command::Doctor(_)
        | Command::Init(_)
        | Command::Completions(_) => false,
        // A dry run changes nothing, so it leaves nothing behind, the log included.
        Command::Poll(args) => !args.dry_run,
        Command::UpdatePlane(args) => !args.dry_run,
        Command::Cleanup(args) => !args.dry_run,
        _ => true,
    }
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    // Buffered: serde writes token by token, and a large list would be thousands of writes.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value).context("cannot write JSON")?;
    writeln!(out).context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    Ok(())
}
