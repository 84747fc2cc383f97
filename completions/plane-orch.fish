# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_plane_orch_global_optspecs
    string join \n config= v/verbose q/quiet h/help V/version
end

function __fish_plane_orch_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_plane_orch_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_plane_orch_using_subcommand
    set -l cmd (__fish_plane_orch_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c plane-orch -n "__fish_plane_orch_needs_command" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_needs_command" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "list" -d 'List tickets in a table (or as JSON)'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "show" -d 'Show one ticket with its history'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "add" -d 'Queue a ticket by hand'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "approve" -d 'Approve a pending ticket: it becomes active'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "complete" -d 'Record the summary of an active ticket: it becomes completed'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "remove" -d 'Drop a ticket from the queue (polling will not re-queue it until it is re-triggered)'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "poll" -d 'Queue newly triggered Plane tickets and turn completion files into completed tickets'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "update-plane" -d 'Post a completed ticket\'s summary to Plane and move its state: it becomes done'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "attach" -d 'Attach the terminal to a ticket\'s session'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "restart" -d 'Start a new session for an active ticket whose session is gone, resuming its conversation'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "cleanup" -d 'Remove the worktrees, branches and sessions of done and removed tickets, when no work is lost'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "budget" -d 'Set a ticket\'s spend limit in USD (`none`: back to automation.budget_usd)'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "hook" -d 'Called inside a session by Claude Code\'s hooks and the worker'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "doctor" -d 'Check the setup: config, state file, Plane key, git, the worker, tmux, the agent'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "init" -d 'Write a commented config.yaml of your own, with absolute paths'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "completions" -d 'Print the shell completion script for bash, zsh or fish'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "serve" -d 'Serve the HTTP API for dashboards'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "notify" -d 'Notifications: send a test message to the configured sinks'
complete -c plane-orch -n "__fish_plane_orch_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand list" -l status -d 'Only tickets with this status [default: all but done]' -r -f -a "pending\t''
active\t''
completed\t''
done\t''
all\t'Every status, done included'"
complete -c plane-orch -n "__fish_plane_orch_using_subcommand list" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand list" -l json -d 'Print a JSON array of tickets, in the HTTP API\'s shape'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand list" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand list" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand list" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand show" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand show" -l json -d 'Print a JSON object with its events and approved snapshot'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand show" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand show" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand show" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand show" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -s t -l title -d 'Its title' -r
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -s d -l description -d 'Its description, as plain text' -r
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -l url -d 'A link to it elsewhere' -r
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -l json -d 'Print the new ticket as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand add" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand approve" -l budget -d 'The session\'s spend limit in USD [default: automation.budget_usd]' -r
complete -c plane-orch -n "__fish_plane_orch_using_subcommand approve" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand approve" -l no-session -d 'Mark it active without making a worktree or starting a session'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand approve" -l json -d 'Print the approved ticket as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand approve" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand approve" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand approve" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand approve" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand complete" -s f -l file -d 'Read the summary from this file' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand complete" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand complete" -l json -d 'Print the completed ticket as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand complete" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand complete" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand complete" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand complete" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand remove" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand remove" -l kill-session -d 'End its session too'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand remove" -l json -d 'Print the removed ticket as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand remove" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand remove" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand remove" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand remove" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -l interval -d 'Seconds between ticks with --loop [default: poll.interval_secs]' -r
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -l loop -d 'Keep polling, one tick every --interval seconds, until interrupted'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -l dry-run -d 'Read Plane and the completion folder, change nothing, print what would be done'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -l json -d 'Print the tick\'s report as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand poll" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -l dry-run -d 'Send nothing; print what would be sent'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -l force -d 'Post even when the branch has no commits, or has commits on no remote'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -l no-plane -d 'Mark it done without posting to Plane (a ticket added by hand, or handled in Plane already); recorded as not posted'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -l json -d 'Print the result as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand update-plane" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand attach" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand attach" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand attach" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand attach" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand attach" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand restart" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand restart" -l json -d 'Print the ticket as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand restart" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand restart" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand restart" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand restart" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -l older-than -d 'Only tickets done or removed at least DAYS days ago [default: cleanup.older_than_days, 0]' -r
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -l bundle -d 'Write a git bundle of each branch into DIR before removing it [default: cleanup.bundle_dir]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -l dry-run -d 'Change nothing; print what would be removed and what kept, and why'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -l json -d 'Print the report as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand cleanup" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand budget" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand budget" -l json -d 'Print the ticket\'s activity and cost as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand budget" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand budget" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand budget" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand budget" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "session-start" -d 'Claude Code\'s SessionStart hook: the session is working'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "prompt-submit" -d 'Claude Code\'s UserPromptSubmit hook: `/complete <summary>` records the summary'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "pre-tool-use" -d 'Claude Code\'s PreToolUse hook: working, with the tool in use'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "notify" -d 'Claude Code\'s Notification hook: marks the ticket as waiting for the person'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "stop" -d 'Claude Code\'s Stop hook: the turn ended'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "stop-failure" -d 'Claude Code\'s StopFailure hook: the turn ended on an API error (a limit?)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "session-end" -d 'Claude Code\'s SessionEnd hook: the session ended'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "status-line" -d 'Claude Code\'s status line: records its cost, prints the ticket\'s state'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "prompt" -d 'For the worker: prints the agent\'s prompt, built from the approved snapshot'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "agent" -d 'For the worker: prints agent_command and agent_args, each ended by a NUL byte'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "status" -d 'For the worker: prints the ticket\'s status'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and not __fish_seen_subcommand_from session-start prompt-submit pre-tool-use notify stop stop-failure session-end status-line prompt agent status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-start" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-start" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-start" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-start" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-start" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt-submit" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt-submit" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt-submit" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt-submit" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt-submit" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from pre-tool-use" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from pre-tool-use" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from pre-tool-use" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from pre-tool-use" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from pre-tool-use" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from notify" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from notify" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from notify" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from notify" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from notify" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop-failure" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop-failure" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop-failure" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop-failure" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from stop-failure" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-end" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-end" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-end" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-end" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from session-end" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status-line" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status-line" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status-line" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status-line" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status-line" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt" -l restart -d 'The prompt for a restarted session that resumes its conversation'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from prompt" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from agent" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from agent" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from agent" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from agent" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from agent" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "session-start" -d 'Claude Code\'s SessionStart hook: the session is working'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "prompt-submit" -d 'Claude Code\'s UserPromptSubmit hook: `/complete <summary>` records the summary'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "pre-tool-use" -d 'Claude Code\'s PreToolUse hook: working, with the tool in use'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "notify" -d 'Claude Code\'s Notification hook: marks the ticket as waiting for the person'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Claude Code\'s Stop hook: the turn ended'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "stop-failure" -d 'Claude Code\'s StopFailure hook: the turn ended on an API error (a limit?)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "session-end" -d 'Claude Code\'s SessionEnd hook: the session ended'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "status-line" -d 'Claude Code\'s status line: records its cost, prints the ticket\'s state'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "prompt" -d 'For the worker: prints the agent\'s prompt, built from the approved snapshot'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "agent" -d 'For the worker: prints agent_command and agent_args, each ended by a NUL byte'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "status" -d 'For the worker: prints the ticket\'s status'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand doctor" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand doctor" -l json -d 'Print the checks as a JSON array of {name, status, detail, fix}'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand doctor" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand doctor" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand init" -l dir -d 'Write DIR/config.yaml, with the data in DIR/data [default: $XDG_CONFIG_HOME/plane-orch, data in $XDG_DATA_HOME/plane-orch]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand init" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand init" -l force -d 'Replace a config.yaml that exists already'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand init" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand init" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand init" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand init" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand completions" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand completions" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand completions" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand completions" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand completions" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand serve" -l bind -d 'Listen on this address [default: api.bind, 127.0.0.1:5002]; port 0 picks a free port' -r
complete -c plane-orch -n "__fish_plane_orch_using_subcommand serve" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand serve" -l poll -d 'Also run poll ticks in the background, every poll.interval_secs'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand serve" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand serve" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand serve" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand serve" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and not __fish_seen_subcommand_from test help" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and not __fish_seen_subcommand_from test help" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and not __fish_seen_subcommand_from test help" -f -a "test" -d 'Send a test message to every sink (or the one named) and print what each answered'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and not __fish_seen_subcommand_from test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and __fish_seen_subcommand_from test" -l config -d 'The config file [default: $PLANE_ORCH_CONFIG, else ./config.yaml, else $XDG_CONFIG_HOME/plane-orch/config.yaml]' -r -F
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and __fish_seen_subcommand_from test" -l json -d 'Print the answers as JSON'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and __fish_seen_subcommand_from test" -s v -l verbose -d 'Log more on stderr (-v info, -vv debug, -vvv trace)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and __fish_seen_subcommand_from test" -s q -l quiet -d 'Log only errors on stderr'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and __fish_seen_subcommand_from help" -f -a "test" -d 'Send a test message to every sink (or the one named) and print what each answered'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand notify; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "list" -d 'List tickets in a table (or as JSON)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "show" -d 'Show one ticket with its history'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "add" -d 'Queue a ticket by hand'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "approve" -d 'Approve a pending ticket: it becomes active'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "complete" -d 'Record the summary of an active ticket: it becomes completed'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "remove" -d 'Drop a ticket from the queue (polling will not re-queue it until it is re-triggered)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "poll" -d 'Queue newly triggered Plane tickets and turn completion files into completed tickets'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "update-plane" -d 'Post a completed ticket\'s summary to Plane and move its state: it becomes done'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "attach" -d 'Attach the terminal to a ticket\'s session'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "restart" -d 'Start a new session for an active ticket whose session is gone, resuming its conversation'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "cleanup" -d 'Remove the worktrees, branches and sessions of done and removed tickets, when no work is lost'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "budget" -d 'Set a ticket\'s spend limit in USD (`none`: back to automation.budget_usd)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "hook" -d 'Called inside a session by Claude Code\'s hooks and the worker'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "doctor" -d 'Check the setup: config, state file, Plane key, git, the worker, tmux, the agent'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "init" -d 'Write a commented config.yaml of your own, with absolute paths'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "completions" -d 'Print the shell completion script for bash, zsh or fish'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "serve" -d 'Serve the HTTP API for dashboards'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "notify" -d 'Notifications: send a test message to the configured sinks'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and not __fish_seen_subcommand_from list show add approve complete remove poll update-plane attach restart cleanup budget hook doctor init completions serve notify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "session-start" -d 'Claude Code\'s SessionStart hook: the session is working'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "prompt-submit" -d 'Claude Code\'s UserPromptSubmit hook: `/complete <summary>` records the summary'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "pre-tool-use" -d 'Claude Code\'s PreToolUse hook: working, with the tool in use'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "notify" -d 'Claude Code\'s Notification hook: marks the ticket as waiting for the person'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "stop" -d 'Claude Code\'s Stop hook: the turn ended'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "stop-failure" -d 'Claude Code\'s StopFailure hook: the turn ended on an API error (a limit?)'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "session-end" -d 'Claude Code\'s SessionEnd hook: the session ended'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "status-line" -d 'Claude Code\'s status line: records its cost, prints the ticket\'s state'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "prompt" -d 'For the worker: prints the agent\'s prompt, built from the approved snapshot'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "agent" -d 'For the worker: prints agent_command and agent_args, each ended by a NUL byte'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "status" -d 'For the worker: prints the ticket\'s status'
complete -c plane-orch -n "__fish_plane_orch_using_subcommand help; and __fish_seen_subcommand_from notify" -f -a "test" -d 'Send a test message to every sink (or the one named) and print what each answered'
