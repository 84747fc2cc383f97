//! git, asked and told what a ticket's branch holds: its commits, its diffstat, its
//! uncommitted changes, whether a remote has it, pushing it (never forced), bundling it and
//! removing it. Every call runs `git` with separate arguments, never through a shell, so no
//! branch name or path can become a command.
//!
//! Reading never writes: `GIT_OPTIONAL_LOCKS=0` keeps `git status` from refreshing the index,
//! so a dry run leaves every file as it was.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How many commit subjects a report lists before "and N more".
pub const LISTED_COMMITS: usize = 10;

/// How long a push may take before it is given up: two minutes, or this many seconds.
const PUSH_TIMEOUT_ENV: &str = "PLANE_ORCH_PUSH_TIMEOUT_SECS";

/// One repository (or worktree) to run git in.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
}

/// One commit on the branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub sha: String,
    pub subject: String,
}

/// Files changed and lines added and removed between two commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Diffstat {
    pub files: u64,
    pub insertions: u64,
    pub deletions: u64,
}

/// What a worktree has that no commit holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Tracked files changed, staged or not (and conflicts).
    pub modified: Vec<String>,
    /// Files git does not track and does not ignore.
    pub untracked: Vec<String>,
}

impl Changes {
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.modified.is_empty() && self.untracked.is_empty()
    }
}

impl Git {
    #[must_use]
    pub fn at(dir: impl Into<PathBuf>) -> Git {
        Git { dir: dir.into() }
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            // Output is parsed: the same words whatever the user's locale.
            .env("LC_ALL", "C")
            .env("GIT_OPTIONAL_LOCKS", "0")
            // A push that wants a password must fail, not wait on a terminal nobody watches.
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .stdin(Stdio::null());
        cmd
    }

    /// As [`Git::output`], but a git that has not finished after `limit` is killed: a remote
    /// that hangs must not hang update-plane (or the API request running it).
    fn output_within(&self, args: &[&str], limit: Duration) -> Result<Output> {
        let mut child = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run git in {}", self.dir.display()))?;
        // Read both pipes while waiting, so a chatty git never blocks on a full pipe.
        let mut stdout = child.stdout.take().context("git has no stdout")?;
        let mut stderr = child.stderr.take().context("git has no stderr")?;
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
            buf
        });
        let end = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().context("cannot wait for git")? {
                break status;
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "git {} in {} did not finish within {}s: is the remote reachable?",
                    args.first().copied().unwrap_or_default(),
                    self.dir.display(),
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Output {
            status,
            stdout: out_reader.join().unwrap_or_default(),
            stderr: err_reader.join().unwrap_or_default(),
        })
    }

    fn output(&self, args: &[&str]) -> Result<Output> {
        self.command().args(args).output().with_context(|| {
            format!(
                "cannot run git in {} (is git installed and on PATH?)",
                self.dir.display()
            )
        })
    }

    /// Runs git; its stdout, or an error carrying git's own words.
    ///
    /// # Errors
    /// git cannot be run or fails.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args)?;
        if !out.status.success() {
            bail!(
                "git {} failed in {}: {}",
                args.first().copied().unwrap_or_default(),
                self.dir.display(),
                stderr_of(&out)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether `dir` is inside a git repository.
    #[must_use]
    pub fn is_repo(&self) -> bool {
        self.output(&["rev-parse", "--git-dir"])
            .is_ok_and(|o| o.status.success())
    }

    /// The commit `rev` names, or `None` when it names none.
    ///
    /// # Errors
    /// git cannot be run.
    pub fn commit_of(&self, rev: &str) -> Result<Option<String>> {
        let spec = format!("{rev}^{{commit}}");
        let out = self.output(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ])?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }

    /// The branch checked out here, or `None` on a detached HEAD.
    #[must_use]
    pub fn current_branch(&self) -> Option<String> {
        let out = self
            .output(&["symbolic-ref", "--quiet", "--short", "HEAD"])
            .ok()?;
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !name.is_empty()).then_some(name)
    }

    /// The names of the remotes.
    ///
    /// # Errors
    /// git fails.
    pub fn remotes(&self) -> Result<Vec<String>> {
        Ok(self.run(&["remote"])?.lines().map(str::to_string).collect())
    }

    /// The commits of `head` that `base` does not have, newest first: up to `limit`, and how
    /// many there are in all.
    ///
    /// # Errors
    /// git fails.
    pub fn commits(&self, base: &str, head: &str, limit: usize) -> Result<(Vec<Commit>, usize)> {
        let range = format!("{base}..{head}");
        let count: usize = self
            .run(&["rev-list", "--count", "--end-of-options", &range])?
            .trim()
            .parse()
            .context("git rev-list --count gave no number")?;
        let max = format!("--max-count={limit}");
        let log = self.run(&[
            "log",
            &max,
            "--no-color",
            "--format=%H%x1f%s%x1e",
            "--end-of-options",
            &range,
        ])?;
        let commits = log
            .split('\x1e')
            .filter_map(|rec| {
                let (sha, subject) = rec.trim_start_matches('\n').split_once('\x1f')?;
                Some(Commit {
                    sha: sha.to_string(),
                    subject: subject.trim().to_string(),
                })
            })
            .collect();
        Ok((commits, count))
    }

    /// Files changed and lines added and removed from `base` to `head` (binary files count as
    /// changed, with no lines).
    ///
    /// # Errors
    /// git fails.
    pub fn diffstat(&self, base: &str, head: &str) -> Result<Diffstat> {
        let out = self.run(&["diff", "--numstat", "-z", "--no-color", base, head, "--"])?;
        let mut stat = Diffstat::default();
        // -z: "added\tremoved\tpath\0", or "added\tremoved\t\0from\0to\0" for a rename.
        let mut fields = out.split('\0');
        while let Some(rec) = fields.next() {
            if rec.is_empty() {
                continue;
            }
            let mut parts = rec.splitn(3, '\t');
            let added = parts.next().unwrap_or_default();
            let removed = parts.next().unwrap_or_default();
            if parts.next().is_some_and(str::is_empty) {
                fields.next();
                fields.next();
            }
            stat.files += 1;
            stat.insertions += added.parse::<u64>().unwrap_or(0);
            stat.deletions += removed.parse::<u64>().unwrap_or(0);
        }
        Ok(stat)
    }

    /// What the worktree holds that no commit does. Paths in `ours` (files plane-orch put
    /// there) are not counted while they are untracked.
    ///
    /// # Errors
    /// git fails.
    pub fn changes(&self, ours: &[String]) -> Result<Changes> {
        let out = self.run(&[
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
        ])?;
        let mut changes = Changes::default();
        let mut recs = out.split('\0');
        while let Some(rec) = recs.next() {
            if rec.len() < 4 {
                continue;
            }
            let (code, path) = rec.split_at(3);
            if code[..2].contains(['R', 'C']) {
                recs.next(); // the old name of a rename or copy
            }
            if code == "?? " {
                if !ours.iter().any(|o| o == path) {
                    changes.untracked.push(path.to_string());
                }
            } else {
                changes.modified.push(path.to_string());
            }
        }
        Ok(changes)
    }

    /// The commits of `head` that no remote-tracking branch has.
    ///
    /// # Errors
    /// git fails.
    pub fn not_on_remotes(&self, head: &str) -> Result<Vec<String>> {
        Ok(self
            .run(&["rev-list", head, "--not", "--remotes", "--"])?
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Pushes `branch` to the branch of the same name on `remote`. Never forced: a remote
    /// that has moved on refuses, and the refusal is the error.
    ///
    /// # Errors
    /// The push was refused or failed, with git's words.
    pub fn push(&self, remote: &str, branch: &str) -> Result<()> {
        if remote.starts_with('-') || branch.starts_with('-') {
            bail!("refusing to push {branch:?} to {remote:?}: a name may not start with '-'");
        }
        // A refspec without '+' is never forced; full ref names leave nothing to guess.
        let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
        let limit = std::env::var(PUSH_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::from_secs(120), Duration::from_secs);
        let out = self.output_within(&["push", "--porcelain", remote, &refspec], limit)?;
        if out.status.success() {
            return Ok(());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let refused = stdout
            .lines()
            .find(|l| l.starts_with('!'))
            .map(|l| format!(" ({})", l.trim_start_matches('!').trim()))
            .unwrap_or_default();
        bail!(
            "git push of {branch} to {remote} was refused{refused}: {}",
            stderr_of(&out)
        )
    }

    /// The commits of `head` (since its merge base with `upstream`) that have no
    /// patch-equivalent commit in `upstream`: `git cherry`'s `+` lines.
    ///
    /// # Errors
    /// git fails.
    pub fn not_in_upstream(&self, upstream: &str, head: &str) -> Result<Vec<String>> {
        Ok(self
            .run(&["cherry", upstream, head])?
            .lines()
            .filter_map(|l| l.strip_prefix("+ "))
            .map(str::to_string)
            .collect())
    }

    /// Whether the whole change of `head` since its merge base with `upstream` is one commit
    /// of `upstream` (a squash merge): the patch ids of the combined diff and of each commit
    /// of `upstream` since the merge base are compared.
    ///
    /// # Errors
    /// git fails.
    pub fn squashed_into(&self, upstream: &str, head: &str) -> Result<bool> {
        let base = self
            .run(&["merge-base", upstream, head])?
            .trim()
            .to_string();
        let Some(wanted) = self.patch_id(&["diff", "--no-color", "--full-index", &base, head])?
        else {
            return Ok(false);
        };
        let range = format!("{base}..{upstream}");
        let ids = self.patch_ids(&[
            "log",
            "-p",
            "--no-color",
            "--full-index",
            "--format=commit %H",
            &range,
        ])?;
        Ok(ids.contains(&wanted))
    }

    /// The first patch id of what `args` prints.
    fn patch_id(&self, args: &[&str]) -> Result<Option<String>> {
        Ok(self.patch_ids(args)?.into_iter().next())
    }

    /// `git <args> | git patch-id --stable`, without a shell: the first's output is fed
    /// to the second's input.
    fn patch_ids(&self, args: &[&str]) -> Result<Vec<String>> {
        let patch = self.output(args)?;
        if !patch.status.success() {
            bail!("git {} failed: {}", args[0], stderr_of(&patch));
        }
        if patch.stdout.is_empty() {
            return Ok(Vec::new());
        }
        let mut child = self
            .command()
            .args(["patch-id", "--stable"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run git patch-id")?;
        let mut stdin = child.stdin.take().context("git patch-id has no stdin")?;
        let bytes = patch.stdout;
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&bytes)
        });
        let out = child.wait_with_output().context("git patch-id failed")?;
        let _ = writer.join();
        if !out.status.success() {
            bail!("git patch-id failed: {}", stderr_of(&out));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect())
    }

    /// Writes a bundle of `branch`'s commits since `base` to `file`, then has git verify it.
    /// The bundle is written beside `file` and renamed, so a failure leaves no half bundle.
    ///
    /// # Errors
    /// git cannot write or verify the bundle.
    pub fn bundle(&self, file: &Path, base: &str, branch: &str) -> Result<()> {
        let tmp = file.with_extension("bundle.partial");
        let full = format!("refs/heads/{branch}");
        let not_base = format!("^{base}");
        let tmp_s = tmp.display().to_string();
        let made = self.run(&["bundle", "create", "--quiet", &tmp_s, &full, &not_base]);
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = self.run(&["bundle", "verify", "--quiet", &tmp_s]) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.context(format!("the bundle of {branch} did not verify")));
        }
        std::fs::rename(&tmp, file)
            .with_context(|| format!("cannot move the bundle to {}", file.display()))
    }

    /// Removes a worktree git knows; git itself refuses one with changes.
    ///
    /// # Errors
    /// git refuses.
    pub fn remove_worktree(&self, path: &Path) -> Result<()> {
        let p = path.display().to_string();
        self.run(&["worktree", "remove", "--end-of-options", &p])
            .map(drop)
    }

    /// The worktrees git knows, with the branch each has checked out.
    ///
    /// # Errors
    /// git fails.
    pub fn worktrees(&self) -> Result<Vec<(PathBuf, Option<String>)>> {
        let out = self.run(&["worktree", "list", "--porcelain", "-z"])?;
        let mut list = Vec::new();
        let mut path: Option<PathBuf> = None;
        let mut branch = None;
        for field in out.split('\0') {
            if let Some(p) = field.strip_prefix("worktree ") {
                if let Some(done) = path.take() {
                    list.push((done, branch.take()));
                }
                path = Some(PathBuf::from(p));
            } else if let Some(b) = field.strip_prefix("branch refs/heads/") {
                branch = Some(b.to_string());
            }
        }
        if let Some(done) = path {
            list.push((done, branch));
        }
        Ok(list)
    }

    /// Deletes `branch` only if it still points at `expected`: a commit made after the checks
    /// keeps it.
    ///
    /// # Errors
    /// The branch moved or git fails.
    pub fn delete_branch(&self, branch: &str, expected: &str) -> Result<()> {
        let full = format!("refs/heads/{branch}");
        self.run(&["update-ref", "-d", &full, expected]).map(drop)
    }
}

fn stderr_of(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if text.is_empty() {
        format!("exit status {}", out.status)
    } else {
        text
    }
}
