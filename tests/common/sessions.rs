//! Harness parts for sessions: a private tmux server per test, a git repo, a fake `claude`
//! that records how it was started (and can play Claude Code's hook), and the real worker.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::Env;

/// How long a wait for a session to do something may take on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Waits until `cond` holds, checking often; panics naming `what` after [`DEADLINE`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tmux server of the test's own (its own `TMUX_TMPDIR`), killed when the test ends.
pub struct TmuxGuard {
    pub dir: TempDir,
}

impl TmuxGuard {
    pub fn new() -> TmuxGuard {
        TmuxGuard {
            dir: tempfile::tempdir().expect("tmux temp dir"),
        }
    }

    pub fn tmpdir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs tmux against this server.
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(args)
            .env("TMUX_TMPDIR", self.tmpdir())
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// The names of the sessions on this server.
    pub fn sessions(&self) -> Vec<String> {
        let out = self.tmux(&["list-sessions", "-F", "#{session_name}"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.sessions().iter().any(|s| s == name)
    }

    /// What the session's pane shows now.
    pub fn screen(&self, name: &str) -> String {
        let target = format!("={name}:");
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-J", "-t", &target])
                .stdout,
        )
        .into_owned()
    }
}

impl Drop for TmuxGuard {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// A git repo at `dir` with one commit (identity given on the command line, so it works on a
/// machine with no git config) and an untracked `.env`.
pub fn git_repo(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q", "-b", "main"]);
    fs::write(dir.join("README.md"), "hello\n").unwrap();
    fs::write(dir.join(".gitignore"), ".env\n").unwrap();
    git(&["add", "README.md", ".gitignore"]);
    git(&["commit", "-q", "-m", "initial"]);
    fs::write(dir.join(".env"), "SECRET=42\n").unwrap();
    dir.to_path_buf()
}

/// The fake `claude`: records argv (each argument followed by a NUL), cwd, branch and
/// environment, then, when `hook-input` exists, pipes it into the UserPromptSubmit hook command
/// found in the `--settings` file through `sh -c`, as Claude Code does.
pub const FAKE_CLAUDE: &str = r#"#!/bin/sh
d="${FAKE_CLAUDE_DIR:?}"
for a in "$@"; do printf '%s\0' "$a"; done > "$d/argv.tmp"
pwd -P > "$d/cwd"
git branch --show-current > "$d/branch" 2>/dev/null || true
env -0 > "$d/env"
settings=""
for a in "$@"; do
  if [ "$prev" = "--settings" ]; then settings="$a"; fi
  prev="$a"
done
mv "$d/argv.tmp" "$d/argv"
if [ -f "$d/hook-input" ]; then
  cmd=$(sed -n 's/.*"command": *"\(.*hook prompt-submit\)".*/\1/p' "$settings" | head -n 1)
  status=0
  sh -c "$cmd" < "$d/hook-input" > "$d/hook-stdout" 2> "$d/hook-stderr" || status=$?
  echo "$status" > "$d/hook-status"
fi
if [ -f "$d/script" ]; then
  # Plays Claude Code's hooks from the captured fixtures, through the commands the
  # --settings file names, with this session's id, transcript and folder put in.
  sid=""
  prev=""
  for a in "$@"; do
    if [ "$prev" = "--session-id" ] || [ "$prev" = "--resume" ]; then sid="$a"; fi
    prev="$a"
  done
  cfg="${CLAUDE_CONFIG_DIR:-$HOME/.claude}"
  here=$(pwd -P)
  slug=$(printf '%s' "$here" | sed 's/[^A-Za-z0-9]/-/g')
  transcript="$cfg/projects/$slug/$sid.jsonl"
  mkdir -p "$cfg/projects/$slug"
  fix="${FAKE_CLAUDE_FIXTURES:?}"
  n=0
  while read -r verb arg file; do
    case "$verb" in
      hook)
        n=$((n+1))
        cmd=$(awk -v ev="$arg" '$0 ~ "^ *\"" ev "\": " { on=1; next } on && /"command":/ { sub(/^[^:]*: *"/, ""); sub(/",?$/, ""); print; exit }' "$settings")
        sed -e "s#/tmp/i13cc/cfg/projects/-tmp-i13cc-work/[0-9]\{8\}-2222-4333-8444-555555555555.jsonl#$transcript#g" \
            -e "s/[0-9]\{8\}-2222-4333-8444-555555555555/$sid/g" \
            -e "s#/tmp/i13cc/work#$here#g" "$fix/$file" > "$d/in-$n.json"
        status=0
        sh -c "$cmd" < "$d/in-$n.json" > "$d/out-$n" 2> "$d/err-$n" || status=$?
        echo "$status" > "$d/status-$n.tmp" && mv "$d/status-$n.tmp" "$d/status-$n"
        ;;
      transcript) cat "$fix/$arg" >> "$transcript" ;;
      wait) while [ ! -f "$d/$arg" ]; do sleep 0.05; done ;;
      raw) stty raw -echo < /dev/tty ;;
      key) dd bs=1 count=1 of="$d/$arg.tmp" < /dev/tty 2>/dev/null; mv "$d/$arg.tmp" "$d/$arg" ;;
      sleep) sleep "$arg" ;;
    esac
  done < "$d/script"
fi
while [ -f "$d/hold" ]; do sleep 0.1; done
exit 0
"#;

/// The hook inputs and transcript captured from the real Claude Code.
pub fn hook_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude-hooks")
}

/// What `.claude.json` holds once Claude Code's first run is done and a person has logged
/// in (keys as a real Claude Code 2.1 writes them).
pub const CLAUDE_JSON_SET_UP: &str = r#"{
  "numStartups": 1,
  "hasCompletedOnboarding": true,
  "lastOnboardingVersion": "2.1.197",
  "oauthAccount": {"emailAddress": "test@example.com"},
  "projects": {}
}
"#;

/// Makes `dir` a Claude config folder (`CLAUDE_CONFIG_DIR`) whose first run is done.
pub fn set_up_claude_config(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(".claude.json"), CLAUDE_JSON_SET_UP).unwrap();
}

/// A test world for sessions: an [`Env`] whose config points at a real git repo, the real
/// worker and a fake `claude` first on PATH, with a private tmux server.
pub struct Sessions {
    pub env: Env,
    pub tmux: TmuxGuard,
    pub repo: PathBuf,
    /// Where the fake `claude` writes what it saw.
    pub fake: PathBuf,
    /// Holds the fake `claude`; first on PATH.
    pub bin_dir: PathBuf,
    /// `CLAUDE_CONFIG_DIR`: the real `~/.claude.json` is never touched.
    pub claude_config: PathBuf,
    /// PATH for plane-orch (and so for tmux and the sessions).
    pub path: String,
}

/// The real worker of this repository.
pub fn worker_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/claude-ticket-worker")
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions::with_config("", "")
    }

    /// `automation` holds extra lines for the automation section (indented by two spaces);
    /// `sections` whole extra top-level sections.
    pub fn with_config(automation: &str, sections: &str) -> Sessions {
        let env = Env::new();
        let root = env.path().to_path_buf();
        let repo = git_repo(&root.join("repo"));
        let fake = root.join("fake");
        let bin_dir = root.join("bin");
        let claude_config = root.join("claude-config");
        for d in [&fake, &bin_dir, &claude_config] {
            fs::create_dir_all(d).unwrap();
        }
        let claude = bin_dir.join("claude");
        fs::write(&claude, FAKE_CLAUDE).unwrap();
        make_executable(&claude);
        set_up_claude_config(&claude_config);
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let s = Sessions {
            env,
            tmux: TmuxGuard::new(),
            repo,
            fake,
            bin_dir,
            claude_config,
            path,
        };
        s.write_config(automation, sections);
        s
    }

    pub fn write_config(&self, automation: &str, sections: &str) {
        let text = format!(
            "automation:\n  repo_path: {repo}\n  worker: {worker}\n  agent_args: [\"--permission-mode\", \"acceptEdits\"]\n{automation}\n{sections}\n",
            repo = self.repo.display(),
            worker = worker_path().display(),
        );
        self.env.set_config(&text);
    }

    /// plane-orch with this world's PATH, tmux server and Claude config folder.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cmd();
        cmd.env("PATH", &self.path)
            .env("TMUX_TMPDIR", self.tmux.tmpdir())
            .env("CLAUDE_CONFIG_DIR", &self.claude_config)
            .env("FAKE_CLAUDE_DIR", &self.fake)
            .env("FAKE_CLAUDE_FIXTURES", hook_fixtures());
        cmd
    }

    /// The same as [`Sessions::cmd`], as a plain `std::process::Command` (to spawn several).
    pub fn std_cmd(&self) -> Command {
        let mut cmd = Command::new(super::bin_path());
        cmd.current_dir(self.env.path())
            .env_remove("PLANE_ORCH_CONFIG")
            .env_remove("PLANE_ORCH_TICKET")
            .env_remove("RUST_LOG")
            .env_remove("TMUX")
            .env("PATH", &self.path)
            .env("TMUX_TMPDIR", self.tmux.tmpdir())
            .env("CLAUDE_CONFIG_DIR", &self.claude_config)
            .env("FAKE_CLAUDE_DIR", &self.fake)
            .env("FAKE_CLAUDE_FIXTURES", hook_fixtures())
            .arg("--config")
            .arg(self.env.config_path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run plane-orch")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        super::expect_success(args, &self.run(args))
    }

    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        super::expect_exit(code, args, &self.run(args))
    }

    pub fn ticket(&self, id: &str) -> Value {
        self.env.ticket(id)
    }

    /// The worktree a ticket gets.
    pub fn worktree(&self, id: &str) -> PathBuf {
        self.env.path().join("data/worktrees").join(id)
    }

    /// Waits for the fake `claude` to have run, and returns its argv.
    pub fn agent_argv(&self) -> Vec<String> {
        let file = self.fake.join("argv");
        wait_for("the agent to start", || file.exists());
        read_nul_list(&file)
    }

    /// The agent's environment as NAME=value entries.
    pub fn agent_env(&self) -> Vec<String> {
        read_nul_list(&self.fake.join("env"))
    }

    pub fn agent_env_var(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.agent_env()
            .into_iter()
            .find_map(|e| e.strip_prefix(&prefix).map(str::to_string))
    }

    /// Makes the fake `claude` submit `prompt` through the UserPromptSubmit hook.
    pub fn agent_will_submit(&self, prompt: &str) {
        let input = serde_json::json!({
            "session_id": "fake",
            "hook_event_name": "UserPromptSubmit",
            "prompt": prompt,
        });
        fs::write(self.fake.join("hook-input"), input.to_string()).unwrap();
    }

    /// Makes the fake `claude` play `script`: one step a line, `hook EVENT FIXTURE` (Claude
    /// Code's event, a file of tests/fixtures/claude-hooks), `transcript FIXTURE` (appended to
    /// the session's transcript), `wait FILE` (until the test makes it), `raw` (the terminal
    /// in raw mode), `key FILE` (one byte typed into the pane), `sleep S`.
    pub fn agent_will_play(&self, script: &str) {
        fs::write(self.fake.join("script"), script).unwrap();
    }

    /// Lets a played script go past `wait NAME`.
    pub fn go(&self, name: &str) {
        fs::write(self.fake.join(name), "").unwrap();
    }

    /// Waits for the played script's `n`th hook call and returns its exit status and stderr.
    pub fn hook_done(&self, n: usize) -> (i32, String) {
        let file = self.fake.join(format!("status-{n}"));
        wait_for(&format!("hook call {n}"), || file.exists());
        let status = fs::read_to_string(&file).unwrap().trim().parse().unwrap();
        let err = fs::read_to_string(self.fake.join(format!("err-{n}"))).unwrap_or_default();
        (status, err)
    }

    /// Makes the fake `claude` keep running (as a real one does while it works) until its
    /// session is killed.
    pub fn agent_will_hold(&self) {
        fs::write(self.fake.join("hold"), "").unwrap();
    }

    /// Waits until the ticket's status in the state file is `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        wait_for(&format!("{id} to be {status}"), || {
            self.env
                .state_bytes()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|s| s["tickets"][id]["status"] == status)
        });
    }
}

/// A file of NUL-terminated strings.
pub fn read_nul_list(file: &Path) -> Vec<String> {
    let bytes = fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let mut items: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8(s.to_vec()).expect("utf-8"))
        .collect();
    if items.last().is_some_and(String::is_empty) {
        items.pop();
    }
    items
}

pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = fs::metadata(path).unwrap().permissions();
    perms.set_mode(0o755);
    fs::set_permissions(path, perms).unwrap();
}
