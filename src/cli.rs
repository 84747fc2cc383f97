//! Every clap type of the command line, in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ticket::TicketId;

/// Turns Plane tickets into supervised Claude Code sessions and brings the results back,
/// with a person approving at both ends.
#[derive(Debug, Parser)]
#[command(
    name = "plane-orch",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else
    /// $XDG_CONFIG_HOME/plane-orch/config.yaml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Log more on stderr (-v info, -vv debug, -vvv trace)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log only errors on stderr
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List tickets in a table (or as JSON)
    List(ListArgs),
    /// Show one ticket with its history
    Show(ShowArgs),
    /// Queue a ticket by hand
    Add(AddArgs),
    /// Approve a pending ticket: it becomes active
    Approve(ApproveArgs),
    /// Record the summary of an active ticket: it becomes completed
    Complete(CompleteArgs),
    /// Drop a ticket from the queue (polling will not re-queue it until it is re-triggered)
    Remove(RemoveArgs),
    /// Queue newly triggered Plane tickets and turn completion files into completed tickets
    Poll(PollArgs),
    /// Post a completed ticket's summary to Plane and move its state: it becomes done
    UpdatePlane(UpdatePlaneArgs),
    /// Attach the terminal to a ticket's session
    Attach(AttachArgs),
    /// Start a new session for an active ticket whose session is gone, resuming its conversation
    Restart(RestartArgs),
    /// Remove the worktrees, branches and sessions of done and removed tickets, when no work is lost
    Cleanup(CleanupArgs),
    /// Set a ticket's spend limit in USD (`none`: back to automation.budget_usd)
    Budget(BudgetArgs),
    /// Called inside a session by Claude Code's hooks and the worker
    #[command(hide = true, subcommand)]
    Hook(HookCommand),
    /// Check the setup: config, state file, Plane key, git, the worker, tmux, the agent
    Doctor(DoctorArgs),
    /// Write a commented config.yaml of your own, with absolute paths
    Init(InitArgs),
    /// Print the shell completion script for bash, zsh or fish
    Completions(CompletionsArgs),
    /// Serve the HTTP API for dashboards
    Serve(ServeArgs),
    /// Notifications: send a test message to the configured sinks
    #[command(subcommand)]
    Notify(NotifyCommand),
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message to every sink (or the one named) and print what each answered
    Test(NotifyTestArgs),
}

#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    /// The sink's name (its `name`, else KIND-N as `notify test` lists them) [default: all]
    pub sink: Option<String>,

    /// Print the answers as JSON
    #[arg(long)]
    pub json: bool,
}

/// Which tickets `list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    Pending,
    Active,
    Completed,
    Done,
    /// Every status, done included
    All,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tickets with this status [default: all but done]
    #[arg(long, value_enum, value_name = "STATUS")]
    pub status: Option<StatusFilter>,

    /// Print a JSON array of tickets, in the HTTP API's shape
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The ticket, e.g. CSLOG-123 (any case)
    #[arg(value_parser = parse_id)]
    pub id: TicketId,

    /// Print a JSON object with its events and approved snapshot
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The new ticket's id, e.g. CSLOG-TEST
    #[arg(value_parser = parse_id)]
    pub id: TicketId,

    /// Its title
    #[arg(long, short = 't')]
    pub title: String,

    /// Its description, as plain text
    #[arg(long, short = 'd')]
    pub description: Option<String>,

    /// A link to it elsewhere
    #[arg(long)]
    pub url: Option<String>,

    /// Print the new ticket as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The pending ticket to approve
    #[arg(value_parser = parse_id)]
    pub id: TicketId,

    /// Mark it active without making a worktree or starting a session
    #[arg(long)]
    pub no_session: bool,

    /// The session's spend limit in USD [default: automation.budget_usd]
    #[arg(long, value_name = "USD")]
    pub budget: Option<f64>,

    /// Print the approved ticket as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BudgetArgs {
    /// The pending or active ticket
    #[arg(value_parser = parse_id)]
    pub id: TicketId,

    /// The new budget in USD, e.g. 10 or 12.50; `none` removes the ticket's own
    #[arg(value_name = "USD")]
    pub usd: String,

    /// Print the ticket's activity and cost as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The active ticket to complete
    #[arg(value_parser = parse_id)]
    pub id: TicketId,

    /// The summary of what was done; `-` reads it from standard input
    #[arg(conflicts_with = "file")]
    pub summary: Option<String>,

    /// Read the summary from this file
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Print the completed ticket as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The ticket to drop
    #[arg(value_parser = parse_id)]
    pub id: TicketId,

    /// End its session too
    #[arg(long)]
    pub kill_session: bool,

    /// Print the removed ticket as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The active ticket whose session to attach to
    #[arg(value_parser = parse_id)]
    pub id: TicketId,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The active ticket whose session is gone
    #[arg(value_parser = parse_id)]
    pub id: TicketId,

    /// Print the ticket as JSON
    #[arg(long)]
    pub json: bool,
}

/// The hidden commands sessions call.
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Claude Code's SessionStart hook: the session is working
    SessionStart,
    /// Claude Code's UserPromptSubmit hook: `/complete <summary>` records the summary
    PromptSubmit,
    /// Claude Code's PreToolUse hook: working, with the tool in use
    PreToolUse,
    /// Claude Code's Notification hook: marks the ticket as waiting for the person
    Notify,
    /// Claude Code's Stop hook: the turn ended
    Stop,
    /// Claude Code's StopFailure hook: the turn ended on an API error (a limit?)
    StopFailure,
    /// Claude Code's SessionEnd hook: the session ended
    SessionEnd,
    /// Claude Code's status line: records its cost, prints the ticket's state
    StatusLine,
    /// For the worker: prints the agent's prompt, built from the approved snapshot
    Prompt {
        /// The ticket
        #[arg(value_parser = parse_id)]
        id: TicketId,
        /// The prompt for a restarted session that resumes its conversation
        #[arg(long)]
        restart: bool,
    },
    /// For the worker: prints agent_command and agent_args, each ended by a NUL byte
    Agent,
    /// For the worker: prints the ticket's status
    Status {
        /// The ticket
        #[arg(value_parser = parse_id)]
        id: TicketId,
    },
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the checks as a JSON array of {name, status, detail, fix}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Keep polling, one tick every --interval seconds, until interrupted
    #[arg(long = "loop")]
    pub repeat: bool,

    /// Seconds between ticks with --loop [default: poll.interval_secs]
    #[arg(long, value_name = "S", requires = "repeat", value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: Option<u64>,

    /// Read Plane and the completion folder, change nothing, print what would be done
    #[arg(long)]
    pub dry_run: bool,

    /// Print the tick's report as JSON
    #[arg(long)]
    pub json: bool,
}

/// The shells `completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Args)]
pub struct UpdatePlaneArgs {
    /// The completed ticket whose summary goes to Plane
    #[arg(value_parser = parse_id)]
    pub id: TicketId,

    /// Send nothing; print what would be sent
    #[arg(long)]
    pub dry_run: bool,

    /// Post even when the branch has no commits, or has commits on no remote
    #[arg(long)]
    pub force: bool,

    /// Mark it done without posting to Plane (a ticket added by hand, or handled in Plane
    /// already); recorded as not posted
    #[arg(long, conflicts_with = "dry_run")]
    pub no_plane: bool,

    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Change nothing; print what would be removed and what kept, and why
    #[arg(long)]
    pub dry_run: bool,

    /// Only tickets done or removed at least DAYS days ago [default: cleanup.older_than_days, 0]
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u32>,

    /// Write a git bundle of each branch into DIR before removing it [default: cleanup.bundle_dir]
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,

    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Write DIR/config.yaml, with the data in DIR/data [default:
    /// $XDG_CONFIG_HOME/plane-orch, data in $XDG_DATA_HOME/plane-orch]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Replace a config.yaml that exists already
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this address [default: api.bind, 127.0.0.1:5002]; port 0 picks a free port
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::SocketAddr>,

    /// Also run poll ticks in the background, every poll.interval_secs
    #[arg(long)]
    pub poll: bool,
}

fn parse_id(s: &str) -> Result<TicketId, String> {
    TicketId::parse(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_flag_has_help() {
        let cli = Cli::command();
        for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
            assert!(sub.get_about().is_some(), "{} has no help", sub.get_name());
            for arg in sub.get_arguments() {
                if arg.get_id() != "help" && arg.get_id() != "version" && !arg.is_hide_set() {
                    assert!(
                        arg.get_help().is_some(),
                        "{} {} has no help",
                        sub.get_name(),
                        arg.get_id()
                    );
                }
            }
        }
    }
}
