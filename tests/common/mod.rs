//! The shared test harness: a temp dir per test with its own config and state file, and the
//! real `plane-orch` binary run against it. Other parts of the harness (the fake Plane, tmux
//! servers, the fake agent) live in the modules beside this one.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod fake_plane;
pub mod fake_service;
pub mod loopback;
pub mod plane_page;
pub mod receiver;
pub mod results;
pub mod server;
pub mod sessions;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// One test's world: a temp dir holding config.yaml, data/ and whatever else the test makes.
pub struct Env {
    pub dir: TempDir,
    /// Extra YAML appended to the base config.
    extra: String,
}

/// The path of the built binary, for tests that spawn it themselves.
pub fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plane-orch"))
}

impl Env {
    /// A fresh env with the default test config.
    pub fn new() -> Env {
        Env::with_config("")
    }

    /// A fresh env whose config.yaml is the base one plus `extra` (whole top-level sections).
    pub fn with_config(extra: &str) -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("temp dir"),
            extra: extra.to_string(),
        };
        env.write_config();
        env
    }

    fn write_config(&self) {
        fs::write(self.config_path(), format!("{}\n", self.extra.trim_end()))
            .expect("write config");
    }

    /// Replaces config.yaml with exactly `text`.
    pub fn set_config(&self, text: &str) {
        fs::write(self.config_path(), text).expect("write config");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.yaml")
    }

    pub fn state_path(&self) -> PathBuf {
        self.path().join("data/pending-tickets.json")
    }

    /// The binary, run in the env's folder with its config and a clean environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.bare_cmd();
        cmd.arg("--config").arg(self.config_path());
        cmd
    }

    /// The binary in the env's folder with a clean environment, given no `--config`.
    pub fn bare_cmd(&self) -> Command {
        // tmux ignores a TMUX_TMPDIR that does not exist and falls back to the user's own
        // server: the folder must exist before the first command that may start a session.
        fs::create_dir_all(self.path().join("tmux")).expect("tmux dir");
        let mut cmd = Command::new(bin_path());
        cmd.current_dir(self.path())
            .env_remove("PLANE_ORCH_CONFIG")
            .env_remove("PLANE_API_KEY")
            .env_remove("PLANE_ORCH_API_TOKEN")
            .env_remove("PLANE_ORCH_TICKET")
            .env_remove("RUST_LOG")
            .env_remove("TMUX")
            .env("NO_COLOR", "1")
            // A tmux folder of the env's own: no test ever asks the user's tmux server.
            .env("TMUX_TMPDIR", self.path().join("tmux"));
        cmd
    }

    /// Runs the binary with `args` and returns its output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run plane-orch")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        expect_success(args, &self.run(args))
    }

    /// Runs and asserts the exit code; returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        expect_exit(code, args, &self.run(args))
    }

    /// The state file's bytes, or None when it does not exist.
    pub fn state_bytes(&self) -> Option<Vec<u8>> {
        fs::read(self.state_path()).ok()
    }

    /// The state file, parsed, with the changes its journal holds put in (as plane-orch
    /// reads it): the journal's header names the generation and size of the file it
    /// continues, and each entry one ticket and the generation it gave the state.
    pub fn state(&self) -> Value {
        let bytes = self.state_bytes().expect("state file exists");
        let mut state: Value = serde_json::from_slice(&bytes).expect("state file parses");
        let journal = fs::read_to_string(self.state_path().with_extension("json.journal"));
        let Ok(journal) = journal else {
            return state;
        };
        let mut lines = journal.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        let Some(header) = lines.next() else {
            return state;
        };
        let header: Value = serde_json::from_str(header).expect("journal header parses");
        if header["generation"] != state["generation"] || header["size"] != bytes.len() {
            return state;
        }
        for line in lines {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                break;
            };
            let id = entry["id"].as_str().expect("an entry's id").to_string();
            state["tickets"][id] = entry["ticket"].clone();
            state["generation"] = entry["generation"].clone();
        }
        state
    }

    /// One ticket from the state file or, once done, from the archive beside it (the latest
    /// copy); null when neither holds it.
    pub fn ticket(&self, id: &str) -> Value {
        let live = self.state()["tickets"][id].clone();
        if !live.is_null() {
            return live;
        }
        let archive = self.state_path().with_extension("archive.jsonl");
        let text = fs::read_to_string(archive).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|t| t["id"] == id)
            .unwrap_or(Value::Null)
    }

    /// Adds a ticket by hand, asserting success.
    pub fn add(&self, id: &str, title: &str) {
        self.ok(&["add", id, "--title", title]);
    }

    /// The event names of a ticket, in order.
    pub fn events(&self, id: &str) -> Vec<String> {
        self.ticket(id)["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every file below the env's folder, config.yaml aside, as relative paths.
    pub fn files(&self) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.retain(|f| f != "config.yaml");
        out.sort();
        out
    }
}

/// Asserts that a run of `plane-orch args` succeeded; returns its stdout.
pub fn expect_success(args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "plane-orch {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// Asserts that a run of `plane-orch args` exited with `code`; returns its stderr.
pub fn expect_exit(code: i32, args: &[&str], out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "plane-orch {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

/// Parses stdout as JSON.
pub fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}
