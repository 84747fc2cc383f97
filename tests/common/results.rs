//! A world for what a ticket's work leaves behind: real sessions in a real git repository
//! whose `origin` is a local bare repository, and a fake Plane with work items CSLOG-1..9.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::fake_plane::{FakePlane, Plane, Project, CSLOG, KEY, KEY_ENV};
use super::sessions::Sessions;

pub struct World {
    pub s: Sessions,
    pub plane: FakePlane,
    pub origin: PathBuf,
}

/// Runs git in `dir` with a fixed identity; asserts success; stdout trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_out(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn git_out(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git")
}

impl World {
    /// `automation` holds extra lines for the automation section (indented two spaces).
    pub fn new(automation: &str) -> World {
        World::with(automation, "")
    }

    /// Also `plane_extra`: more lines for the plane section (indented two spaces).
    pub fn with(automation: &str, plane_extra: &str) -> World {
        let mut p = Project::cslog();
        p.fill(1, 9);
        let plane = FakePlane::start(Plane::new(vec![p]));
        let s = Sessions::new();
        let origin = s.env.path().join("origin.git");
        git(
            s.env.path(),
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        git(
            &s.repo,
            &["remote", "add", "origin", &origin.display().to_string()],
        );
        git(&s.repo, &["push", "-q", "origin", "main"]);
        git(&s.repo, &["fetch", "-q", "origin"]);
        let sections = format!(
            "plane:\n  base_url: {}\n  workspace_slug: acme\n  api_key_env: {KEY_ENV}\n  \
             project_ids: [\"{CSLOG}\"]\n  timeout_secs: 5\n{plane_extra}",
            plane.url
        );
        s.write_config(
            &format!("  max_active_sessions: 20\n{automation}"),
            &sections,
        );
        World { s, plane, origin }
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.s.cmd();
        cmd.env(KEY_ENV, KEY).env("PLANE_ORCH_RETRY_BASE_MS", "1");
        cmd
    }

    pub fn std_cmd(&self) -> Command {
        let mut cmd = self.s.std_cmd();
        cmd.env(KEY_ENV, KEY).env("PLANE_ORCH_RETRY_BASE_MS", "1");
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

    /// Adds CSLOG-`n` by hand and approves it: its session starts in its own worktree.
    pub fn approved(&self, n: u32) -> PathBuf {
        let id = format!("CSLOG-{n}");
        self.ok(&["add", &id, "--title", &format!("ticket {n}")]);
        self.ok(&["approve", &id]);
        self.s.worktree(&id)
    }

    /// Commits `file` with `text` in `dir`, with `subject`.
    pub fn commit(&self, dir: &Path, file: &str, text: &str, subject: &str) -> String {
        std::fs::write(dir.join(file), text).unwrap();
        git(dir, &["add", file]);
        git(dir, &["commit", "-q", "-m", subject]);
        git(dir, &["rev-parse", "HEAD"])
    }

    /// The commit `branch` points at on the remote, if it is there.
    pub fn on_remote(&self, branch: &str) -> Option<String> {
        let out = git_out(
            &self.origin,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The commit a local branch of the repository points at, if it exists.
    pub fn local(&self, branch: &str) -> Option<String> {
        let out = git_out(
            &self.s.repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn ticket_status(&self, id: &str) -> String {
        self.s.ticket(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn comments(&self) -> Vec<serde_json::Value> {
        self.plane.with(|p| p.comments.clone())
    }

    pub fn links(&self) -> Vec<serde_json::Value> {
        self.plane.with(|p| p.links.clone())
    }
}
