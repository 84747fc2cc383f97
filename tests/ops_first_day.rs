//! A newcomer's first day, on a fresh temp HOME: `init` writes a config of one's own that
//! `doctor` finds and passes; the shipped cron line, run with cron's empty environment,
//! polls a fake Plane with the key from the env file the systemd units read too, and prints
//! nothing; without Plane, a hand-added ticket goes all the way to done.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fake_plane::{FakePlane, Plane, Project, CSLOG, KEY, KEY_ENV};
use common::{bin_path, Env};
use tempfile::TempDir;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh home: nothing in it but what each test puts there.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join(".config/plane-orch/config.yaml")
    }

    /// plane-orch with only what a login shell would have: HOME, a PATH, a private tmux.
    fn cmd(&self, cwd: &Path) -> Command {
        let mut cmd = Command::new(bin_path());
        cmd.current_dir(cwd)
            .env_clear()
            .env("HOME", self.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TMUX_TMPDIR", self.path().join("tmux"))
            .env("NO_COLOR", "1");
        cmd
    }
}

fn git_repo(dir: &Path) {
    common::sessions::git_repo(dir);
}

#[test]
fn init_writes_a_config_of_ones_own_that_doctor_finds_and_passes() {
    let home = Home::new();
    let project = home.path().join("src/app");
    git_repo(&project);

    let out = home.cmd(&project).arg("init").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("wrote {}", home.config().display())),
        "{stdout}"
    );
    let written = fs::read_to_string(home.config()).unwrap();
    let data = home.path().join(".local/share/plane-orch");
    for line in [
        format!("  repo_path: {}", project.display()),
        format!(
            "  worker: {}",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts/claude-ticket-worker")
                .display()
        ),
        format!("  path: {}", data.join("pending-tickets.json").display()),
        format!("  dir: {}", data.join("completions").display()),
    ] {
        assert!(written.contains(&line), "no {line:?} in\n{written}");
    }
    assert!(written.contains("# The UUIDs of the projects to watch"));
    let completions = fs::metadata(data.join("completions")).unwrap();
    assert_eq!(completions.permissions().mode() & 0o777, 0o700);

    // A second init never overwrites the person's edits.
    let out = home.cmd(&project).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );

    // The person's edit: where Plane is (a fake one here) and what to watch.
    let plane = FakePlane::start(Plane::new(vec![Project::cslog()]));
    let edited = written
        .replacen(
            "  base_url: https://api.plane.so\n",
            &format!("  base_url: {}\n", plane.url),
            1,
        )
        .replacen("  workspace_slug: \"\"\n", "  workspace_slug: acme\n", 1)
        .replacen(
            "  project_ids: []\n",
            &format!("  project_ids: [{CSLOG}]\n"),
            1,
        );
    assert_ne!(edited, written);
    fs::write(home.config(), edited).unwrap();
    // Claude Code installed, run once and logged in, as the README's prerequisites say.
    let bin = home.path().join("bin");
    fs::create_dir(&bin).unwrap();
    fs::write(bin.join("claude"), common::sessions::FAKE_CLAUDE).unwrap();
    fs::set_permissions(bin.join("claude"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        home.path().join(".claude.json"),
        common::sessions::CLAUDE_JSON_SET_UP,
    )
    .unwrap();

    // From anywhere (here: the home folder), with no --config: init's file is found.
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = home
        .cmd(home.path())
        .env("PATH", &path)
        .env(KEY_ENV, KEY)
        .arg("doctor")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("✓ config            {}", home.config().display())),
        "{stdout}"
    );
    assert!(!stdout.contains("✗"), "{stdout}");
    for name in ["agent ", "claude config ", "plane project ", "git "] {
        assert!(stdout.contains(&format!("✓ {name}")), "{name}: {stdout}");
    }

    // --force replaces it; --dir writes elsewhere, with the data beside it.
    let out = home
        .cmd(&project)
        .args(["init", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(fs::read_to_string(home.config())
        .unwrap()
        .contains("workspace_slug: \"\""));
    let out = home
        .cmd(&project)
        .args(["init", "--dir", "elsewhere"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let other = fs::read_to_string(project.join("elsewhere/config.yaml")).unwrap();
    assert!(
        other.contains(&format!(
            "  path: {}",
            project
                .join("elsewhere/data/pending-tickets.json")
                .display()
        )),
        "{other}"
    );
}

/// The job line of scripts/cron.example and the PATH it sets, with `/opt/plane-orch` (the
/// clone's folder) replaced by `clone`.
fn cron_line(clone: &Path) -> (String, String) {
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cron.example"))
            .unwrap();
    let path = example
        .lines()
        .find_map(|l| l.strip_prefix("PATH="))
        .expect("cron.example sets PATH")
        .to_string();
    let job = example
        .lines()
        .find_map(|l| l.strip_prefix("* * * * * "))
        .expect("cron.example has a job line");
    (
        job.replace("/opt/plane-orch", &clone.display().to_string()),
        path,
    )
}

/// Runs `command` as cron does: `/bin/sh -c` with nothing in the environment but HOME,
/// LOGNAME, SHELL and the crontab's PATH (`env -i`).
fn as_cron(home: &Home, command: &str, path: &str) -> Output {
    Command::new("env")
        .arg("-i")
        .arg(format!("HOME={}", home.path().display()))
        .arg("LOGNAME=cron")
        .arg("SHELL=/bin/sh")
        .arg(format!("PATH={path}"))
        .args(["/bin/sh", "-c", command])
        .current_dir(home.path())
        .output()
        .unwrap()
}

#[test]
fn the_shipped_cron_line_under_env_i_polls_plane_with_the_env_files_key_and_prints_nothing() {
    let home = Home::new();
    // The clone: its release binary where cron.example expects it.
    let clone = home.path().join("plane-orch");
    fs::create_dir_all(clone.join("target/release")).unwrap();
    std::os::unix::fs::symlink(bin_path(), clone.join("target/release/plane-orch")).unwrap();
    let project = home.path().join("app");
    git_repo(&project);
    let out = home.cmd(&project).arg("init").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut cslog = Project::cslog();
    cslog.add(7, "Queued by cron", "Ready for Claude", &[], "<p>x</p>");
    let plane = FakePlane::start(Plane::new(vec![cslog]));
    let config = fs::read_to_string(home.config())
        .unwrap()
        .replacen(
            "  base_url: https://api.plane.so\n",
            &format!("  base_url: {}\n", plane.url),
            1,
        )
        .replacen("  workspace_slug: \"\"\n", "  workspace_slug: acme\n", 1)
        .replacen(
            "  project_ids: []\n",
            &format!("  project_ids: [{CSLOG}]\n"),
            1,
        );
    fs::write(home.config(), config).unwrap();
    // The env file as docs/operations.md writes it: NAME=value, no export.
    let env_file = home.path().join(".config/plane-orch/env");
    fs::write(&env_file, format!("{KEY_ENV}={KEY}\n")).unwrap();
    fs::set_permissions(&env_file, fs::Permissions::from_mode(0o600)).unwrap();

    let (job, path) = cron_line(&clone);
    let out = as_cron(&home, &job, &path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{job}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "cron would mail this: {out:?}"
    );
    let requests = plane.requests();
    assert!(!requests.is_empty(), "the poll never reached Plane");
    assert!(requests.iter().all(|r| r.header("x-api-key") == Some(KEY)));
    let state = home
        .path()
        .join(".local/share/plane-orch/pending-tickets.json");
    let state: serde_json::Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    assert_eq!(state["tickets"]["CSLOG-7"]["status"], "pending");

    // A file holding `export NAME=value` works too; one without the key fails loudly (exit 2,
    // which cron mails) instead of polling nothing.
    fs::write(&env_file, format!("export {KEY_ENV}={KEY}\n")).unwrap();
    let out = as_cron(&home, &job, &path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    fs::write(&env_file, "# no key yet\n").unwrap();
    let out = as_cron(&home, &job, &path);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(KEY_ENV) && err.contains("env file"), "{err}");
}

#[test]
fn without_plane_a_hand_added_ticket_goes_all_the_way_to_done() {
    let env = Env::new();
    env.ok(&["add", "DEMO-1", "--title", "Try plane-orch"]);
    env.ok(&["approve", "DEMO-1", "--no-session"]);
    env.ok(&["complete", "DEMO-1", "Added a line"]);
    // Plane is not configured: a plain update-plane says so and changes nothing.
    env.fails(2, &["update-plane", "DEMO-1"]);
    assert_eq!(env.ticket("DEMO-1")["status"], "completed");
    let out = env.ok(&["update-plane", "DEMO-1", "--no-plane"]);
    assert!(out.contains("nothing was posted to Plane"), "{out}");
    let t = env.ticket("DEMO-1");
    assert_eq!(t["status"], "done");
    assert_eq!(
        t["plane_sync"]["comment_posted_at"],
        serde_json::Value::Null
    );
    let done = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "done")
        .expect("a done event");
    assert!(
        done["detail"]
            .as_str()
            .unwrap()
            .contains("without posting to Plane"),
        "{done}"
    );
    // Done is done: a second one is a conflict.
    env.fails(4, &["update-plane", "DEMO-1", "--no-plane"]);
    env.fails(2, &["update-plane", "DEMO-1", "--no-plane", "--dry-run"]);
}
