//! One run of a child process: its wall time and the CPU time it used, read from /proc while
//! it is a zombie (waited for with `WNOWAIT`, so it is not yet reaped).
//!
//! CPU is the larger of the main thread's `sum_exec_runtime` (/proc/PID/schedstat, in
//! nanoseconds) and the whole process's user + system time (/proc/PID/stat, in clock ticks,
//! other threads and waited-for children included): the first is exact for a single-threaded
//! command, the second still counts work done on other threads.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};

/// Wall and CPU time of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub wall: Duration,
    pub cpu: Duration,
}

/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux).
const TICKS: u64 = 100;

/// utime + stime + cutime + cstime of `pid`, from /proc/PID/stat.
pub fn stat_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    (f.len() == 4).then(|| Duration::from_millis(f.iter().sum::<u64>() * 1000 / TICKS))
}

/// The CPU time of `pid`'s main thread, from /proc/PID/schedstat.
fn sched_cpu(pid: u32) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// Runs `cmd` to its end (stdout discarded, stderr kept in a temp file) and panics, with its
/// stderr, if it fails.
pub fn run(cmd: &mut Command) -> Sample {
    match try_run(cmd) {
        Ok(s) => s,
        Err(e) => panic!("{cmd:?} failed: {e}"),
    }
}

/// Runs `cmd` to its end; its stderr when it fails.
pub fn try_run(cmd: &mut Command) -> Result<Sample, String> {
    let err = tempfile::tempfile().expect("a temp file");
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(err.try_clone().expect("a temp file"))
        .spawn()
        .expect("spawn");
    let pid = Pid::from_child(&child);
    // Waits for the exit but leaves the zombie, so /proc still holds its figures.
    let waited = waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
    );
    let wall = start.elapsed();
    let id = child.id();
    let cpu = match (sched_cpu(id), stat_cpu(id)) {
        (Some(a), Some(b)) => a.max(b),
        (a, b) => a.or(b).unwrap_or_default(),
    };
    let status = child.wait().expect("wait");
    waited.expect("waitid");
    if status.success() {
        Ok(Sample { wall, cpu })
    } else {
        use std::io::{Read, Seek};
        let mut err = err;
        let mut text = String::new();
        let _ = err.rewind();
        let _ = err.read_to_string(&mut text);
        Err(format!("{status}: {}", text.trim()))
    }
}

/// The median wall and median CPU of `samples`.
pub fn medians(samples: &[Sample]) -> Sample {
    let med = |mut v: Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    Sample {
        wall: med(samples.iter().map(|s| s.wall).collect()),
        cpu: med(samples.iter().map(|s| s.cpu).collect()),
    }
}
