//! `plane-orch serve` under load: starting it on 127.0.0.1:0, reading its RSS, running wrk
//! against it and reading wrk's report, stopping it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `plane-orch serve`; killed when dropped if it was not stopped.
pub struct Server {
    child: Child,
    /// Kept open so the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Server {
    /// Starts `cmd` (a `plane-orch ... serve --bind 127.0.0.1:0`) and waits for its
    /// `listening on http://ADDR` line.
    pub fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn plane-orch serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string);
        let Some(url) = url.filter(|_| read.is_ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("plane-orch serve did not say where it listens: {line:?}");
        };
        Server {
            child,
            _stdout: stdout,
            url,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmRSS in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    /// SIGTERM, then waits up to 10 s for a clean exit (killed after that).
    pub fn stop(mut self) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What wrk measured.
#[derive(Debug, Clone, Default)]
pub struct Load {
    pub requests_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub requests: u64,
    /// Non-2xx/3xx answers plus socket errors (timeouts included).
    pub errors: u64,
    /// Requests wrk gave up on (its 2 s timeout).
    pub timeouts: u64,
}

/// `wrk --latency -t2 -c16 -d{secs}s URL`, parsed.
pub fn wrk(url: &str, secs: u64) -> Load {
    let out = Command::new("wrk")
        .args(["--latency", "-t2", "-c16", &format!("-d{secs}s"), url])
        .stdin(Stdio::null())
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed on {url}: {text}");
    parse_wrk(&text)
}

fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn parse_wrk(text: &str) -> Load {
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("50%"), Some(d)) => load.p50 = duration(d).unwrap_or_default(),
            (Some("99%"), Some(d)) => load.p99 = duration(d).unwrap_or_default(),
            (Some("Requests/sec:"), Some(n)) => load.requests_per_sec = n.parse().unwrap_or(0.0),
            (Some(n), Some("requests")) => load.requests = n.parse().unwrap_or(0),
            _ => {}
        }
        if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.errors += n.trim().parse::<u64>().unwrap_or(0);
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            load.errors += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1))
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
            load.timeouts += rest
                .split(',')
                .filter_map(|p| p.trim().strip_prefix("timeout "))
                .filter_map(|n| n.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    load
}

/// Whether wrk can be run.
pub fn have_wrk() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// GETs `url` once: its status and body.
pub fn get(url: &str) -> (u16, Vec<u8>) {
    let mut reply = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = reply.status().as_u16();
    let body = reply
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read() {
        let text = "Running 10s test @ http://127.0.0.1:1/health\n  2 threads and 16 connections\n  \
Latency Distribution\n     50%  250.00us\n     75%  491.00us\n     90%  700.00us\n     99%    5.10ms\n  \
22464 requests in 10.10s, 3.34MB read\n  Socket errors: connect 0, read 1, write 0, timeout 28\n  Non-2xx or 3xx responses: 3\nRequests/sec:   2223.34\n";
        let l = parse_wrk(text);
        assert_eq!(l.requests, 22464);
        assert_eq!(l.errors, 32);
        assert_eq!(l.timeouts, 28);
        assert!((l.requests_per_sec - 2223.34).abs() < 1e-6);
        assert_eq!(l.p50, Duration::from_micros(250));
        assert_eq!(l.p99, Duration::from_micros(5100));
    }
}
