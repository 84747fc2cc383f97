//! Completion files turned into completed tickets by `poll`. Plane is not
//! configured here: poll still handles the files.

mod common;

use std::fs;
use std::path::PathBuf;

use common::Env;

fn active(env: &Env, id: &str) {
    env.add(id, "some work");
    env.ok(&["approve", id, "--no-session"]);
}

fn completion_dir(env: &Env) -> PathBuf {
    let dir = env.path().join("data/completions");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_good_completion_file_completes_its_ticket_and_is_deleted() {
    let env = Env::new();
    active(&env, "CSLOG-1");
    let file = completion_dir(&env).join("completion-CSLOG-1.txt");
    fs::write(&file, "  Rotated the logs ✓\n\nKept 7 files.\n").unwrap();
    let out = env.ok(&["poll"]);
    assert!(out.contains("completed CSLOG-1"), "{out}");
    assert!(
        out.ends_with("0 queued, 1 completed, 0 sessions lost\n"),
        "{out}"
    );
    assert!(!file.exists());
    let t = env.ticket("CSLOG-1");
    assert_eq!(t["status"], "completed");
    assert_eq!(t["summary"], "Rotated the logs ✓\n\nKept 7 files.");
    let last = t["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["detail"], "summary from a completion file");
}

#[test]
fn doubtful_completion_files_are_refused_and_left_in_place() {
    let env = Env::new();
    for id in ["CSLOG-1", "CSLOG-2", "CSLOG-3", "CSLOG-4"] {
        active(&env, id);
    }
    env.add("CSLOG-5", "still pending");
    let dir = completion_dir(&env);
    let outside = env.path().join("elsewhere.txt");
    fs::write(&outside, "a summary from elsewhere").unwrap();
    let link = dir.join("completion-CSLOG-1.txt");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let big = dir.join("completion-CSLOG-2.txt");
    fs::write(&big, vec![b'a'; 64 * 1024 + 1]).unwrap();
    let binary = dir.join("completion-CSLOG-3.txt");
    fs::write(&binary, b"done \xff\xfe").unwrap();
    let empty = dir.join("completion-CSLOG-4.txt");
    fs::write(&empty, " \n").unwrap();
    let pending = dir.join("completion-CSLOG-5.txt");
    fs::write(&pending, "done").unwrap();
    let unknown = dir.join("completion-CSLOG-9.txt");
    fs::write(&unknown, "done").unwrap();

    let out = env.run(&["poll"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 queued, 0 completed, 0 sessions lost\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [
        "symbolic link",
        "at most 65536",
        "not UTF-8",
        "summary is empty",
        "CSLOG-5 is pending",
        "no ticket CSLOG-9",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    for f in [&link, &big, &binary, &empty, &pending, &unknown] {
        assert!(
            fs::symlink_metadata(f).is_ok(),
            "{} was removed",
            f.display()
        );
    }
    for id in ["CSLOG-1", "CSLOG-2", "CSLOG-3", "CSLOG-4"] {
        assert_eq!(env.ticket(id)["status"], "active");
    }
    assert_eq!(env.ticket("CSLOG-5")["status"], "pending");
    assert!(outside.exists());
}

#[test]
fn a_dry_run_poll_reports_a_completion_file_without_using_it() {
    let env = Env::new();
    active(&env, "CSLOG-1");
    let file = completion_dir(&env).join("completion-CSLOG-1.txt");
    fs::write(&file, "done").unwrap();
    let before = env.state_bytes().unwrap();
    let out = env.ok(&["poll", "--dry-run"]);
    assert!(out.contains("would complete CSLOG-1"), "{out}");
    assert!(file.exists());
    assert_eq!(env.state_bytes().unwrap(), before);
}
