//! `cleanup`: what done and removed tickets left behind goes only when no work is lost.
//! Real sessions and worktrees, a repository whose origin is a local bare repository.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::json;
use common::results::{git, git_out, World};

/// Every file below `root` (path → bytes), the log aside.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = entry.path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                walk(root, &p, out);
            } else if !p.ends_with("orchestrator.log") {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap_or_default(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn refs(repo: &Path) -> String {
    git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"])
}

fn trusted(w: &World) -> Vec<String> {
    let text = fs::read_to_string(w.s.claude_config.join(".claude.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["projects"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Five tickets plane-orch made worktrees for, one a branch it did not make, and a worktree
/// and branch it knows nothing of:
/// - CSLOG-1 removed, a tracked file changed and not committed;
/// - CSLOG-2 removed, an untracked file;
/// - CSLOG-3 removed, a commit on no remote and not merged;
/// - CSLOG-4 done, its commit pushed;
/// - CSLOG-5 removed, two commits squash-merged into main;
/// - CSLOG-6 removed, its branch made by someone else before approve (pushed, clean);
/// - claude/other-1 in data/worktrees/OTHER-1, made by hand.
fn world() -> World {
    let w = World::new("");
    let repo = w.s.repo.clone();
    git(&repo, &["branch", "claude/cslog-6"]);
    git(&repo, &["push", "-q", "origin", "claude/cslog-6"]);
    let wts: Vec<PathBuf> = (1..=6).map(|n| w.approved(n)).collect();

    fs::write(wts[0].join("README.md"), "changed\n").unwrap();
    fs::write(wts[1].join("notes.txt"), "mine\n").unwrap();
    w.commit(&wts[2], "c.txt", "c\n", "Unpushed work");
    w.commit(&wts[3], "d.txt", "d\n", "Pushed work");
    git(&repo, &["push", "-q", "origin", "claude/cslog-4"]);
    w.commit(&wts[4], "e1.txt", "e1\n", "First half");
    w.commit(&wts[4], "e2.txt", "e2\n", "Second half");
    git(&repo, &["merge", "-q", "--squash", "claude/cslog-5"]);
    git(&repo, &["commit", "-q", "-m", "Squashed CSLOG-5"]);

    let other = w.s.env.path().join("data/worktrees/OTHER-1");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "claude/other-1",
            &other.display().to_string(),
        ],
    );

    w.ok(&["complete", "CSLOG-4", "pushed work"]);
    w.ok(&["update-plane", "CSLOG-4"]);
    for n in [1, 2, 3, 5, 6] {
        w.ok(&["remove", &format!("CSLOG-{n}")]);
    }
    w
}

#[test]
fn dry_run_changes_nothing_then_cleanup_keeps_unsafe_work_and_removes_the_rest() {
    let w = world();
    let root = w.s.env.path().to_path_buf();
    let repo = w.s.repo.clone();
    let before_files = files(&root);
    let before_refs = (refs(&repo), refs(&w.origin));
    let sessions_before = w.s.tmux.sessions();
    assert!(sessions_before.contains(&"plane-CSLOG-4".to_string()));

    let dry = w.ok(&["cleanup", "--dry-run", "--bundle", "bundles"]);
    assert!(dry.contains("dry run"), "{dry}");
    assert!(dry.contains("remove   branch claude/cslog-4"), "{dry}");
    assert!(dry.contains("remove   branch claude/cslog-5"), "{dry}");
    assert!(dry.contains("uncommitted change(s): README.md"), "{dry}");
    assert!(dry.contains("untracked file(s): notes.txt"), "{dry}");
    assert!(
        dry.contains("1 commit(s) on no remote and not in main"),
        "{dry}"
    );
    assert_eq!(files(&root), before_files, "a dry run changed a file");
    assert_eq!((refs(&repo), refs(&w.origin)), before_refs);
    assert_eq!(w.s.tmux.sessions(), sessions_before);
    let report = json(&w.ok(&["cleanup", "--dry-run", "--json"]));
    assert_eq!(report["dry_run"], true);
    assert_eq!(files(&root), before_files);

    let out = w.ok(&["cleanup", "--bundle", "bundles"]);
    assert!(out.contains("freed "), "{out}");
    let wt = |n: u32| w.s.worktree(&format!("CSLOG-{n}"));

    // Kept, with the work in them.
    for n in [1, 2, 3] {
        assert!(wt(n).is_dir(), "CSLOG-{n}'s worktree was removed\n{out}");
        assert!(w.local(&format!("claude/cslog-{n}")).is_some());
    }
    assert_eq!(
        fs::read_to_string(wt(1).join("README.md")).unwrap(),
        "changed\n"
    );
    assert_eq!(
        fs::read_to_string(wt(2).join("notes.txt")).unwrap(),
        "mine\n"
    );

    // Removed: the pushed and the squash-merged branches, their worktrees, trust entries,
    // lock files and sessions.
    for n in [4, 5] {
        assert!(
            !wt(n).exists(),
            "CSLOG-{n}'s worktree is still there\n{out}"
        );
        assert!(w.local(&format!("claude/cslog-{n}")).is_none(), "{out}");
        let lock = root.join(format!("data/locks/session-CSLOG-{n}.lock"));
        assert!(!lock.exists(), "{}", lock.display());
        assert!(!w.s.tmux.has(&format!("plane-CSLOG-{n}")));
    }
    let trusted = trusted(&w);
    assert!(
        trusted.iter().any(|p| p.ends_with("CSLOG-1")),
        "{trusted:?}"
    );
    assert!(
        !trusted.iter().any(|p| p.ends_with("CSLOG-4")),
        "{trusted:?}"
    );
    assert!(
        !trusted.iter().any(|p| p.ends_with("CSLOG-5")),
        "{trusted:?}"
    );

    // The bundles hold the branches and git accepts them.
    let bundles: Vec<PathBuf> = fs::read_dir(root.join("bundles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(bundles.len(), 2, "{bundles:?}");
    for b in &bundles {
        let v = git_out(&repo, &["bundle", "verify", &b.display().to_string()]);
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
        let heads = git(&repo, &["bundle", "list-heads", &b.display().to_string()]);
        assert!(heads.contains("refs/heads/claude/cslog-"), "{heads}");
    }

    // A branch plane-orch did not make is kept even though its worktree went.
    assert!(!wt(6).exists(), "{out}");
    assert!(w.local("claude/cslog-6").is_some(), "{out}");
    assert!(
        out.contains("branch claude/cslog-6: it was there before plane-orch used it"),
        "{out}"
    );

    // What plane-orch knows nothing of is untouched.
    let other = root.join("data/worktrees/OTHER-1");
    assert!(other.join("README.md").is_file());
    assert!(w.local("claude/other-1").is_some());

    // A second run has nothing more to remove.
    let again = w.ok(&["cleanup"]);
    assert!(!again.contains("removed "), "{again}");
    assert!(again.contains("freed 0 B"), "{again}");
}

#[test]
fn older_than_keeps_recent_tickets_and_auto_cleans_on_poll_ticks() {
    let w = World::new("");
    let wt = w.approved(4);
    w.commit(&wt, "d.txt", "d\n", "Pushed work");
    git(&w.s.repo, &["push", "-q", "origin", "claude/cslog-4"]);
    w.ok(&["remove", "CSLOG-4", "--kill-session"]);
    let out = w.ok(&["cleanup", "--older-than", "3"]);
    assert!(out.contains("nothing to clean up"), "{out}");
    assert!(wt.is_dir());

    // cleanup.auto: the next poll tick cleans it up.
    let text = fs::read_to_string(w.s.env.config_path()).unwrap();
    fs::write(
        w.s.env.config_path(),
        format!("{text}\ncleanup:\n  auto: true\n"),
    )
    .unwrap();
    w.plane.with(|p| p.faults.clear());
    w.ok(&["poll"]);
    assert!(!wt.exists());
    assert!(w.local("claude/cslog-4").is_none());
}

#[test]
fn copied_files_are_plane_orchs_only_while_unchanged() {
    let w = World::new("  worktree_copy: [\".env\", \"local.cfg\"]\n");
    // Untracked and not ignored in the repository: copied into each new worktree.
    fs::write(w.s.repo.join("local.cfg"), "port=1\n").unwrap();
    let same = w.approved(1);
    let changed = w.approved(2);
    assert_eq!(
        fs::read_to_string(same.join("local.cfg")).unwrap(),
        "port=1\n"
    );
    fs::write(changed.join("local.cfg"), "port=2 # mine now\n").unwrap();
    w.ok(&["remove", "CSLOG-1", "--kill-session"]);
    w.ok(&["remove", "CSLOG-2", "--kill-session"]);
    let out = w.ok(&["cleanup"]);
    assert!(!same.exists(), "{out}");
    assert!(w.local("claude/cslog-1").is_none(), "{out}");
    assert!(out.contains("untracked file(s): local.cfg"), "{out}");
    assert_eq!(
        fs::read_to_string(changed.join("local.cfg")).unwrap(),
        "port=2 # mine now\n"
    );
    assert!(w.local("claude/cslog-2").is_some());
}
