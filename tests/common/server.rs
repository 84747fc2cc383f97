//! `plane-orch serve` as a child process on a free port, and a small HTTP client for it.
//! The process is killed when the handle drops, whatever the test did.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{bin_path, Env};

/// A running `serve`.
pub struct Server {
    child: Child,
    pub port: u16,
    agent: ureq::Agent,
    /// Where its stderr goes, for failure messages.
    log: std::path::PathBuf,
    /// Its tmux server's folder, killed with it.
    tmux_tmpdir: std::path::PathBuf,
}

/// An answer: status, headers (lower-case names, every value) and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HashMap<String, Vec<String>>,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Every value of one header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// The one value of a header, if any.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// Asserts the status and that the body is an error with a `detail` and `error.code`.
    pub fn assert_error(&self, status: u16, code: &str) -> &Answer {
        assert_eq!(self.status, status, "unexpected status: {}", self.body);
        let v = self.json();
        assert!(v["detail"].is_string(), "no detail: {v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v["error"]["message"], v["detail"], "{v}");
        self
    }
}

/// The base config of a served env: sessions (once approve starts them) run a worker that
/// only waits, in the env's folder, on the env's own tmux server.
const SERVE_CONFIG: &str = "automation:\n  worktrees: false\n  worker: worker.sh\n";

impl Env {
    /// An env for `serve` tests: the base config plus `extra` (whole top-level sections other
    /// than `automation`), and a worker script that waits.
    pub fn for_serve(extra: &str) -> Env {
        let env = Env::with_config(&format!("{SERVE_CONFIG}{extra}"));
        let worker = env.path().join("worker.sh");
        std::fs::write(&worker, "#!/bin/sh\nexec sleep 600\n").expect("write worker");
        super::sessions::make_executable(&worker);
        env
    }

    /// The env's own tmux folder (`TMUX_TMPDIR`), so no test touches the user's tmux.
    pub fn tmux_tmpdir(&self) -> std::path::PathBuf {
        let dir = self.path().join("tmux");
        std::fs::create_dir_all(&dir).expect("tmux dir");
        dir
    }

    /// Whether the env's tmux server has a session of that name.
    pub fn tmux_has_session(&self, name: &str) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &format!("={name}")])
            .env_remove("TMUX")
            .env("TMUX_TMPDIR", self.tmux_tmpdir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts `serve --bind 127.0.0.1:0` plus `args`, with `envs` set, and waits for its
    /// `listening on` line.
    pub fn serve(&self, args: &[&str], envs: &[(&str, &str)]) -> Server {
        self.start_serve(self.serve_command(args, envs))
    }

    /// [`Env::serve`] with the open-file limit (soft and hard) set to `nofile` first.
    pub fn serve_with_fd_limit(&self, nofile: u32) -> Server {
        let inner = self.serve_command(&[], &[]);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(self.path());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        self.start_serve(cmd)
    }

    fn start_serve(&self, mut cmd: Command) -> Server {
        let log = self.path().join(format!(
            "serve-{}.stderr",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        cmd.stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("stderr file"));
        let mut child = cmd.spawn().expect("spawn plane-orch serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read stdout");
        let Some(port) = line
            .trim_end()
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "serve did not start: stdout {line:?}, stderr: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Server {
            child,
            port,
            agent,
            log,
            tmux_tmpdir: self.tmux_tmpdir(),
        }
    }

    /// The `serve` command line, for tests that run it to its end.
    pub fn serve_command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(bin_path());
        cmd.current_dir(self.path())
            .env_remove("PLANE_ORCH_CONFIG")
            .env_remove("PLANE_API_KEY")
            .env_remove("PLANE_ORCH_API_TOKEN")
            .env_remove("TMUX")
            .env("TMUX_TMPDIR", self.tmux_tmpdir())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "plane_orch=debug")
            .arg("--config")
            .arg(self.config_path())
            .arg("serve");
        if !args.contains(&"--bind") {
            cmd.args(["--bind", "127.0.0.1:0"]);
        }
        cmd.args(args).stdin(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a request with `headers` and an optional body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Answer {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let result = match body {
            Some(b) => self.agent.run(builder.body(b.to_vec()).unwrap()),
            None => self.agent.run(builder.body(()).unwrap()),
        };
        let mut resp = result.unwrap_or_else(|e| {
            panic!(
                "{method} {path} failed: {e}\nserver stderr: {}",
                self.stderr()
            )
        });
        let mut headers: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in resp.headers() {
            headers
                .entry(k.as_str().to_ascii_lowercase())
                .or_default()
                .push(v.to_str().unwrap_or_default().to_string());
        }
        Answer {
            status: resp.status().as_u16(),
            headers,
            body: resp.body_mut().read_to_string().unwrap_or_default(),
        }
    }

    /// The ids of a ticket list answer, in order.
    pub fn ids(&self, path: &str) -> Vec<String> {
        self.get(path)
            .json()
            .as_array()
            .unwrap_or_else(|| panic!("{path} is not a list"))
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: Option<&str>) -> Answer {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.map(str::as_bytes),
        )
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.request("DELETE", path, &[], None)
    }

    /// Writes `raw` bytes on a fresh connection and returns everything the server sends
    /// back until it closes (send `Connection: close`).
    pub fn raw(&self, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits up to `limit` for the process to end.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `cond` until it holds or `limit` passes.
    pub fn wait_for(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        cond()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Sessions the server started live in the env's own tmux server: end it.
        let _ = Command::new("tmux")
            .arg("kill-server")
            .env_remove("TMUX")
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
