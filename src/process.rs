//! Running a helper program (tmux, git) with a deadline: a program that hangs is killed, with
//! everything it started in its process group, and the caller gets an error instead of
//! waiting forever. Every call plane-orch makes to another program goes through [`run`].

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How often a running child is looked at; short, as most calls end in a few milliseconds.
const POLL: Duration = Duration::from_millis(2);

/// How long the output pipes are drained after the child exits: a grandchild that keeps them
/// open (a daemon that did not close its stdio) must not hold the caller.
const DRAIN: Duration = Duration::from_millis(500);

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program could not be started (missing, not executable).
    #[error("{0}")]
    Spawn(io::Error),
    /// It ran past its deadline and was killed.
    #[error("it did not finish within {} s and was stopped", .0.as_secs_f32())]
    TimedOut(Duration),
    /// Waiting for it failed.
    #[error("{0}")]
    Wait(io::Error),
}

/// Runs `cmd` with no standard input, collecting its output, and kills it (and its process
/// group) when it has not exited within `deadline`.
///
/// # Errors
/// [`RunError`]: not started, timed out, or could not be waited for.
pub fn run(cmd: &mut Command, deadline: Duration) -> Result<Output, RunError> {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a killed shell script takes its children with it.
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait(&mut child, started + deadline).map_err(|e| {
        if matches!(e, RunError::TimedOut(_)) {
            kill(&mut child);
        }
        match e {
            RunError::TimedOut(_) => RunError::TimedOut(deadline),
            other => other,
        }
    })?;
    let until = Instant::now() + DRAIN;
    Ok(Output {
        status,
        stdout: collect(&stdout, until),
        stderr: collect(&stderr, until),
    })
}

fn wait(child: &mut Child, until: Instant) -> Result<ExitStatus, RunError> {
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait().map_err(RunError::Wait)? {
            return Ok(status);
        }
        let now = Instant::now();
        if now >= until {
            return Err(RunError::TimedOut(Duration::ZERO));
        }
        thread::sleep(pause.min(until - now));
        pause = (pause * 2).min(POLL);
    }
}

fn kill(child: &mut Child) {
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads a pipe to its end on a thread of its own; the bytes come back over the channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<mpsc::Receiver<Vec<u8>>> {
    let mut pipe = pipe?;
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("plane-orch-pipe".into())
        .spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
    spawned.ok().map(|_| rx)
}

fn collect(rx: &Option<mpsc::Receiver<Vec<u8>>>, until: Instant) -> Vec<u8> {
    rx.as_ref()
        .and_then(|rx| {
            rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_status_come_back() {
        let out = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn a_hanging_program_and_its_children_are_stopped_at_the_deadline() {
        let started = Instant::now();
        let err = run(
            Command::new("sh").args(["-c", "sleep 30; echo late"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(err, RunError::TimedOut(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.to_string().contains("did not finish"));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = run(
            &mut Command::new("/nonexistent/plane-orch-nothing"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn(_)));
    }
}
