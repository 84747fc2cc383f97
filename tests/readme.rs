//! The README's set-up, run as written: its two commands are the ones it names, and every
//! step of its getting-started blocks runs, in order, against the built binary on a fresh
//! temp HOME, with a fake Plane and a fake `claude` standing in for the real ones. A step
//! this test does not know fails it, so the README cannot drift from the code.
//! (scripts/try-readme runs the two commands themselves on a fresh clone.)

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fake_plane::{FakePlane, Plane, Project, CSLOG, KEY, KEY_ENV};
use common::sessions::{wait_for, TmuxGuard, CLAUDE_JSON_SET_UP, FAKE_CLAUDE};
use serde_json::Value;

fn readme() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The ```sh blocks of the README section headed `heading`, each as its lines.
fn blocks(heading: &str) -> Vec<Vec<String>> {
    let text = readme();
    let start = text
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("the README has no section {heading:?}"));
    let section = &text[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut current, line) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => out.push(current.take().unwrap()),
            (Some(b), l) => b.push(l.to_string()),
            (None, _) => {}
        }
    }
    out
}

/// A step: the command's words, and the comment after it (what it should print).
fn step(line: &str) -> Option<(Vec<String>, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (command, comment) = match line.find("  #") {
        Some(at) => (&line[..at], line[at + 3..].trim()),
        None => (line, ""),
    };
    let words = shlex::split(command.trim()).expect("a step the shell can split");
    Some((words, comment.to_string()))
}

#[test]
fn the_two_commands_are_the_ones_named() {
    let found = blocks("The two commands");
    assert_eq!(found.len(), 1, "{found:?}");
    let commands: Vec<Vec<String>> = found[0]
        .iter()
        .filter_map(|l| step(l))
        .map(|s| s.0)
        .collect();
    assert_eq!(
        commands,
        [
            vec!["cargo", "run", "--release", "--", "serve"],
            vec!["cargo", "test"]
        ]
    );
}

/// The newcomer's world: a fresh HOME holding a project repository, a fake Plane with one
/// triggered ticket, a fake Claude Code set up as the prerequisites say, a private tmux.
struct World {
    home: tempfile::TempDir,
    plane: FakePlane,
    tmux: TmuxGuard,
    cwd: PathBuf,
    key: Option<String>,
}

impl World {
    fn new() -> World {
        let mut cslog = Project::cslog();
        cslog.add(
            123,
            "Fix the login page",
            "Ready for Claude",
            &[],
            "<p>The redirect loops.</p>",
        );
        let home = tempfile::tempdir().unwrap();
        let bin = home.path().join("bin");
        fs::create_dir_all(home.path().join("fake")).unwrap();
        fs::create_dir(&bin).unwrap();
        fs::write(bin.join("claude"), FAKE_CLAUDE).unwrap();
        fs::set_permissions(bin.join("claude"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(home.path().join(".claude.json"), CLAUDE_JSON_SET_UP).unwrap();
        let cwd = home.path().to_path_buf();
        World {
            home,
            plane: FakePlane::start(Plane::new(vec![cslog])),
            tmux: TmuxGuard::new(),
            cwd,
            key: None,
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn expand(&self, word: &str) -> PathBuf {
        match word.strip_prefix("~/") {
            Some(rest) => self.home().join(rest),
            None => self.cwd.join(word),
        }
    }

    /// `plane-orch args` as the alias runs it, in the current folder.
    fn run(&self, args: &[String]) -> Output {
        let mut cmd = Command::new(common::bin_path());
        cmd.args(args)
            .current_dir(&self.cwd)
            .env_clear()
            .env("HOME", self.home())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.home().join("bin").display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("TMUX_TMPDIR", self.tmux.tmpdir())
            .env("FAKE_CLAUDE_DIR", self.home().join("fake"))
            .env("PLANE_ORCH_RETRY_BASE_MS", "1")
            .env("NO_COLOR", "1");
        if let Some(k) = &self.key {
            cmd.env(KEY_ENV, k);
        }
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[String]) -> String {
        common::expect_success(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &self.run(args),
        )
    }

    fn status(&self, id: &str) -> String {
        let out = self.ok(&["show".into(), id.into(), "--json".into()]);
        common::json(&out)["status"].as_str().unwrap().to_string()
    }

    /// The person's edit of step 1: where Plane is and what to watch.
    fn edit(&self, file: &Path) {
        let text = fs::read_to_string(file).unwrap();
        let edited = text
            .replacen(
                "  base_url: https://api.plane.so\n",
                &format!("  base_url: {}\n", self.plane.url),
                1,
            )
            .replacen("  workspace_slug: \"\"\n", "  workspace_slug: acme\n", 1)
            .replacen(
                "  project_ids: []\n",
                &format!("  project_ids: [{CSLOG}]\n"),
                1,
            );
        assert_ne!(edited, text, "the config has the keys the README names");
        fs::write(file, edited).unwrap();
    }

    /// Stands in for the person typing `/complete <summary>` in the session: the fake
    /// `claude` feeds it to the hook as Claude Code would.
    fn will_type(&self, prompt: &str) {
        let input = serde_json::json!({"session_id": "fake", "hook_event_name": "UserPromptSubmit", "prompt": prompt});
        fs::write(self.home().join("fake/hook-input"), input.to_string()).unwrap();
    }
}

#[test]
fn every_getting_started_step_runs_as_written() {
    let found = blocks("Getting started");
    assert_eq!(found.len(), 2, "the main block and the one without Plane");
    let mut w = World::new();
    let project = w.home().join("src/your-project");
    common::sessions::git_repo(&project);

    for (words, comment) in found[0].iter().filter_map(|l| step(l)) {
        let shown = words.join(" ");
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            // The test runs the binary cargo test built; scripts/try-readme builds it.
            ["cargo", "build", "--release"] => {}
            ["alias", a] if a.starts_with("plane-orch=") => {}
            ["cd", dir] => w.cwd = w.expand(dir),
            ["$EDITOR", file] => w.edit(&w.expand(file)),
            ["export", kv] => {
                let (k, _) = kv.split_once('=').unwrap();
                assert_eq!(k, KEY_ENV);
                w.key = Some(KEY.into());
            }
            ["plane-orch", rest @ ..] => {
                let args: Vec<String> = rest.iter().map(|s| (*s).to_string()).collect();
                match rest {
                    ["attach", id] => {
                        // Interactive: the person attaches and types step 6's /complete,
                        // which the fake agent was given at approve.
                        wait_for("the /complete summary", || w.status(id) == "completed");
                        continue;
                    }
                    ["approve", _] => {
                        let prompt = found[0]
                            .iter()
                            .find_map(|l| l.split_once("type in the session:"))
                            .map(|(_, p)| p.trim().to_string())
                            .expect("step 6 names what to type");
                        w.will_type(&prompt);
                    }
                    _ => {}
                }
                let out = w.ok(&args);
                let expected = comment.trim_start_matches("... ").trim_matches('"');
                match rest {
                    ["poll"] => assert_eq!(out.lines().last(), Some(expected), "{shown}: {out}"),
                    ["list"] => {
                        for part in ["CSLOG-123", "pending", "Fix the login page"] {
                            assert!(out.contains(part), "{shown}: {out}");
                        }
                    }
                    ["list", "--status", "completed"] => {
                        assert!(out.contains("CSLOG-123"), "{shown}: {out}");
                    }
                    ["show", _] => assert!(out.contains("Fixed the login redirect"), "{out}"),
                    ["doctor"] => assert!(!out.contains('✗'), "{out}"),
                    _ => {}
                }
            }
            _ => panic!("the README's getting started has a step this test does not know: {shown}"),
        }
    }
    assert_eq!(w.status("CSLOG-123"), "done");
    let posted = w.plane.with(|p| p.count("POST", "comments/"));
    assert_eq!(posted, 1, "the summary went to Plane once");

    // Without Plane: the hand-added ticket reaches done.
    let _ = fs::remove_file(w.home().join("fake/hook-input"));
    for (words, _) in found[1].iter().filter_map(|l| step(l)) {
        assert_eq!(words[0], "plane-orch", "{words:?}");
        w.ok(&words[1..]);
        if words[1] == "approve" {
            wait_for("the demo's session", || w.tmux.has("plane-DEMO-1"));
        }
    }
    let t: Value = common::json(&w.ok(&["show".into(), "DEMO-1".into(), "--json".into()]));
    assert_eq!(t["status"], "done");
    assert_eq!(w.plane.with(|p| p.count("POST", "comments/")), 1);
}
