//! The state file under pressure: parallel writers, racing approvals, killed writers, and
//! files that must never be overwritten.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bin_path, json, Env};

fn plane_orch(env: &Env) -> Command {
    let mut cmd = Command::new(bin_path());
    cmd.current_dir(env.path())
        .env_remove("PLANE_ORCH_CONFIG")
        .env_remove("RUST_LOG")
        .arg("--config")
        .arg(env.config_path());
    cmd
}

/// A config whose state file records every change to one ticket in its journal.
const JOURNAL_ALWAYS: &str = "state:\n  journal_above_kib: 0\n";

#[test]
fn eight_parallel_writers_lose_no_ticket() {
    eight_parallel_writers(Env::new());
}

#[test]
fn eight_parallel_writers_lose_no_ticket_through_the_journal() {
    let env = Env::with_config(JOURNAL_ALWAYS);
    env.add("FIRST-1", "makes the file the journal continues");
    eight_parallel_writers(env);
}

fn eight_parallel_writers(env: Env) {
    let env = Arc::new(env);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let env = Arc::clone(&env);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let id = format!("W{w}-{i}");
                    let out = plane_orch(&env)
                        .args(["add", &id, "--title", &format!("writer {w} ticket {i}")])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{id}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let mut tickets = env.state()["tickets"].as_object().unwrap().clone();
    tickets.remove("FIRST-1");
    assert_eq!(tickets.len(), 400);
    for w in 0..8 {
        for i in 0..50 {
            assert!(tickets.contains_key(&format!("W{w}-{i}")), "W{w}-{i} lost");
        }
    }
    let listed = json(&env.ok(&["list", "--json"]));
    assert_eq!(
        listed.as_array().unwrap().len(),
        tickets.len() + usize::from(env.state()["tickets"]["FIRST-1"].is_object())
    );
}

#[test]
fn two_racing_approvals_have_exactly_one_winner() {
    let env = Env::new();
    for round in 0..20 {
        let id = format!("RACE-{round}");
        env.add(&id, "race");
        let racers: Vec<_> = (0..2)
            .map(|_| {
                plane_orch(&env)
                    .args(["approve", &id, "--no-session"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut codes: Vec<i32> = racers
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, [0, 4], "round {round}");
        assert_eq!(env.events(&id), ["queued", "approved"], "round {round}");
    }
}

/// A small deterministic generator: the kill moments only need to vary, not be secure.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Starts `plane-orch args` and sends it SIGKILL after `micros` microseconds; whether the
/// kill was sent.
fn run_and_kill(env: &Env, args: &[&str], micros: u64) -> bool {
    let mut child = plane_orch(env)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_micros(micros));
    let killed = child.kill().is_ok();
    let _ = child.wait();
    killed
}

#[test]
fn writers_killed_at_random_moments_never_leave_a_partial_file() {
    let env = Arc::new(Env::new());
    // A file of some size, so that a write takes long enough to be interrupted.
    let description = "lorem ipsum dolor sit amet ".repeat(40);
    for i in 0..60 {
        env.ok(&[
            "add",
            &format!("BIG-{i}"),
            "--title",
            "big",
            "--description",
            &description,
        ]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let env = Arc::clone(&env);
            let stop = Arc::clone(&stop);
            let reads = Arc::clone(&reads);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if r == 0 {
                        let bytes = std::fs::read(env.state_path()).expect("the file exists");
                        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&bytes);
                        assert!(
                            parsed.is_ok(),
                            "a partial file was seen: {} bytes",
                            bytes.len()
                        );
                    } else {
                        let out = plane_orch(&env).args(["list", "--json"]).output().unwrap();
                        assert!(
                            out.status.success(),
                            "list failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut killed = 0;
    let mut i = 0;
    while Instant::now() < deadline {
        i += 1;
        let id = format!("K-{i}");
        let args = [
            "add",
            &id,
            "--title",
            "killed?",
            "--description",
            &description,
        ];
        if run_and_kill(&env, &args, rng.below(8000)) {
            killed += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("a reader saw a broken state");
    }
    assert!(reads.load(Ordering::Relaxed) > 10);
    assert!(killed > 0);
    // After the storm the store still works and holds every ticket from before it.
    let state = env.state();
    for n in 0..60 {
        assert!(state["tickets"][format!("BIG-{n}")].is_object());
    }
    env.add("AFTER-1", "still works");
    // Temp files of killed writers are cleared by the next write.
    let leftovers: Vec<String> = env
        .files()
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}

const COMMANDS: [&[&str]; 7] = [
    &["list"],
    &["list", "--json"],
    &["show", "X-1"],
    &["add", "X-2", "--title", "t"],
    &["approve", "X-1", "--no-session"],
    &["complete", "X-1", "summary"],
    &["remove", "X-1"],
];

#[test]
fn a_corrupt_state_file_is_never_overwritten() {
    let env = Env::new();
    std::fs::create_dir_all(env.state_path().parent().unwrap()).unwrap();
    let garbage = b"{\"version\": 1, \"tickets\": {\"X-1\": {\"id\": \"X-1\", tru";
    std::fs::write(env.state_path(), garbage).unwrap();
    for args in COMMANDS {
        let err = env.fails(1, args);
        assert!(err.contains("pending-tickets.json"), "{args:?}: {err}");
        assert!(err.contains("damaged"), "{args:?}: {err}");
        assert!(err.contains("pending-tickets.json.bak"), "{args:?}: {err}");
        assert_eq!(env.state_bytes().unwrap(), garbage, "{args:?} changed it");
    }
}

#[test]
fn a_state_file_from_a_newer_version_is_refused_unchanged() {
    let env = Env::new();
    std::fs::create_dir_all(env.state_path().parent().unwrap()).unwrap();
    let future = br#"{"version": 3, "tickets": {}, "dismissed": {}, "shards": []}"#;
    std::fs::write(env.state_path(), future).unwrap();
    for args in COMMANDS {
        let err = env.fails(1, args);
        assert!(err.contains("version 3"), "{args:?}: {err}");
        assert!(err.contains("pending-tickets.json"), "{args:?}: {err}");
        assert_eq!(env.state_bytes().unwrap(), future);
    }
}

#[test]
fn every_write_keeps_the_previous_good_state_as_bak() {
    let env = Env::new();
    env.add("X-1", "t");
    let first = env.state_bytes().unwrap();
    env.add("X-2", "t");
    let bak = std::fs::read(env.path().join("data/pending-tickets.json.bak")).unwrap();
    assert_eq!(bak, first);
    // Restoring from it, as the damaged-file message says, works.
    std::fs::write(env.state_path(), b"garbage").unwrap();
    env.fails(1, &["list"]);
    std::fs::copy(
        env.path().join("data/pending-tickets.json.bak"),
        env.state_path(),
    )
    .unwrap();
    let listed = json(&env.ok(&["list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[test]
fn a_missing_state_file_is_an_empty_queue_and_reading_creates_nothing() {
    let env = Env::new();
    assert_eq!(json(&env.ok(&["list", "--json"])), serde_json::json!([]));
    env.fails(3, &["show", "X-1"]);
    assert_eq!(env.files(), Vec::<String>::new());
}

#[test]
fn done_tickets_leave_the_state_file_at_once_and_stay_findable() {
    let env = Env::with_config("state:\n  keep_done_days: 30\n");
    env.add("OLD-1", "old and done");
    env.add("NEW-1", "recent and done");
    env.ok(&["approve", "OLD-1", "--no-session"]);
    env.ok(&["complete", "OLD-1", "did it"]);
    let mut state = env.state();
    for (id, done_at) in [
        ("OLD-1", "2020-01-01T00:00:00Z"),
        ("NEW-1", "2099-01-01T00:00:00Z"),
    ] {
        state["tickets"][id]["status"] = "done".into();
        state["tickets"][id]["done_at"] = done_at.into();
    }
    std::fs::write(env.state_path(), serde_json::to_vec_pretty(&state).unwrap()).unwrap();

    env.add("X-1", "any write archives");
    let state = env.state();
    for id in ["OLD-1", "NEW-1"] {
        assert!(
            state["tickets"][id].is_null(),
            "{id} still in the state file"
        );
    }
    // Kept as runs of ticket numbers by project.
    assert_eq!(
        state["archived"],
        serde_json::json!({"NEW": "1", "OLD": "1"})
    );
    let archive =
        std::fs::read_to_string(env.path().join("data/pending-tickets.archive.jsonl")).unwrap();
    assert_eq!(archive.lines().count(), 2);

    // show finds any archived ticket; list --status done shows those of keep_done_days.
    let shown = json(&env.ok(&["show", "old-1", "--json"]));
    assert_eq!(shown["summary"], "did it");
    assert_eq!(shown["events"][0]["event"], "queued");
    let done = json(&env.ok(&["list", "--status", "done", "--json"]));
    let ids: Vec<&str> = done
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["NEW-1"]);
    let default = json(&env.ok(&["list", "--json"]));
    assert_eq!(default.as_array().unwrap().len(), 1);
    // The id stays taken.
    env.fails(4, &["add", "OLD-1", "--title", "again"]);
}

/// A state file with X-1 active and X-2 pending, written by plane-orch (so `.bak` and the
/// fast path's record exist).
fn two_tickets() -> Env {
    let env = Env::new();
    env.add("X-1", "first");
    env.add("X-2", "second");
    env.ok(&["approve", "X-1", "--no-session"]);
    env
}

fn hook(env: &Env, which: &str, input: &str) -> std::process::Output {
    env.cmd()
        .env("PLANE_ORCH_TICKET", "X-1")
        .args(["hook", which])
        .write_stdin(input.to_string())
        .output()
        .unwrap()
}

/// Every write path, the hooks included, leaves a damaged file and its `.bak` as they are.
fn assert_every_write_refuses(env: &Env, why: &str) {
    let bak_path = env.path().join("data/pending-tickets.json.bak");
    let file = env.state_bytes().unwrap();
    let bak = std::fs::read(&bak_path).unwrap();
    let writes: [&[&str]; 6] = [
        &["add", "X-3", "--title", "t"],
        &["approve", "X-2", "--no-session"],
        &["complete", "X-1", "summary"],
        &["remove", "X-2"],
        &["restart", "X-1"],
        &["list"],
    ];
    for args in writes {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{why}: {args:?} succeeded");
        assert!(err.contains("damaged"), "{why}: {args:?}: {err}");
        assert_eq!(env.state_bytes().unwrap(), file, "{why}: {args:?} wrote");
        assert_eq!(
            std::fs::read(&bak_path).unwrap(),
            bak,
            "{why}: {args:?} moved .bak"
        );
    }
    let notify = serde_json::json!({"message": "needs you", "notification_type": "idle_prompt"});
    let prompt = serde_json::json!({"session_id": "x", "prompt": "/complete it is done"});
    for (which, input) in [("notify", notify), ("prompt-submit", prompt)] {
        let out = hook(env, which, &input.to_string());
        // The hooks record the session's activity in its own file beside the state; the
        // state file is refused where they would write it: `/complete`'s summary, whose
        // "NOT recorded" answer goes to Claude Code on stdout.
        if which == "prompt-submit" {
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                said.contains("NOT recorded") && said.contains("damaged"),
                "{why}: hook {which}: {said}"
            );
        }
        assert_eq!(
            env.state_bytes().unwrap(),
            file,
            "{why}: hook {which} wrote"
        );
        assert_eq!(
            std::fs::read(&bak_path).unwrap(),
            bak,
            "{why}: hook {which} moved .bak"
        );
    }
}

#[test]
fn a_ticket_damaged_by_hand_is_refused_by_every_write_path_and_bak_is_kept() {
    let env = two_tickets();
    let text = String::from_utf8(env.state_bytes().unwrap()).unwrap();
    // The same size, the same layout, written in place: only the decoder can tell.
    let damaged = text.replacen("\"status\":\"pending\"", "\"status\":\"Pending\"", 1);
    assert_ne!(damaged, text);
    assert_eq!(damaged.len(), text.len());
    std::fs::write(env.state_path(), &damaged).unwrap();
    assert_every_write_refuses(&env, "a bad status");
}

#[test]
fn a_state_file_holding_an_id_twice_is_refused_as_damaged() {
    let env = two_tickets();
    let text = String::from_utf8(env.state_bytes().unwrap()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("\"X-2\":"))
        .unwrap()
        .to_string();
    let line = line.strip_suffix(',').unwrap_or(&line).to_string();
    let doubled = text.replacen(&line, &format!("{line},\n{line}"), 1);
    std::fs::write(env.state_path(), &doubled).unwrap();
    assert_every_write_refuses(&env, "an id twice");
    let err = env.fails(1, &["add", "X-4", "--title", "t"]);
    assert!(err.contains("X-2 is there twice"), "{err}");
    // Read the slow way too (another layout): still refused.
    let pretty = doubled.replace("\n", "\n  ");
    std::fs::write(env.state_path(), &pretty).unwrap();
    let err = env.fails(1, &["list", "--json"]);
    assert!(err.contains("damaged"), "{err}");
}

#[test]
fn every_write_increments_the_generation() {
    let env = two_tickets();
    let first = env.state()["generation"].as_u64().unwrap();
    env.ok(&["complete", "X-1", "done"]);
    assert_eq!(env.state()["generation"].as_u64().unwrap(), first + 1);
    env.add("X-5", "t");
    assert_eq!(env.state()["generation"].as_u64().unwrap(), first + 2);
}

#[test]
fn two_stores_in_one_folder_never_touch_each_others_temp_files() {
    let a = Env::with_config("state:\n  path: data/a.json\n");
    a.ok(&["add", "A-1", "--title", "t"]);
    let data = a.path().join("data");
    let theirs = data.join(".b.json.inflight.tmp");
    let our_stale = data.join(".a.json.stale.tmp");
    std::fs::write(&theirs, "another store's write in flight").unwrap();
    std::fs::write(&our_stale, "left by a killed writer").unwrap();
    a.ok(&["add", "A-2", "--title", "t"]);
    assert!(
        theirs.exists(),
        "a write of a.json removed b.json's temp file"
    );
    assert!(!our_stale.exists(), "a.json's stale temp file was left");
}

#[test]
fn the_state_folder_and_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::with_config("state:\n  keep_done_days: 1\n");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 022; exec \"$@\"")
            .arg("sh")
            .arg(common::bin_path())
            .arg("--config")
            .arg(env.config_path())
            .args(args)
            .current_dir(env.path())
            .env_remove("PLANE_ORCH_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&["add", "P-1", "--title", "t"]);
    run(&["add", "P-2", "--title", "t"]);
    let mut state = env.state();
    state["tickets"]["P-1"]["status"] = "done".into();
    state["tickets"]["P-1"]["done_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(env.state_path(), serde_json::to_vec(&state).unwrap()).unwrap();
    run(&["add", "P-3", "--title", "t"]);
    let mode = |p: &str| {
        std::fs::metadata(env.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700);
    for f in [
        "data/pending-tickets.json",
        "data/pending-tickets.json.bak",
        "data/pending-tickets.archive.jsonl",
    ] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
}

const ARCHIVE: &str = "data/pending-tickets.archive.jsonl";

/// OLD-1 and OLD-2, done long ago, archived; NEW-1 pending.
fn archived_world() -> Env {
    let env = Env::with_config("state:\n  keep_done_days: 0\n");
    for id in ["OLD-1", "OLD-2", "NEW-1"] {
        env.add(id, "t");
    }
    let mut state = env.state();
    for id in ["OLD-1", "OLD-2"] {
        state["tickets"][id]["status"] = "done".into();
        state["tickets"][id]["done_at"] = "2020-01-01T00:00:00Z".into();
    }
    std::fs::write(env.state_path(), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    env.add("X-1", "archives");
    env
}

#[test]
fn an_archive_line_that_does_not_decode_is_skipped_and_the_others_stay_readable() {
    let env = archived_world();
    let path = env.path().join(ARCHIVE);
    let text = std::fs::read(&path).unwrap();
    let mut lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2);
    // A record cut inside a UTF-8 character, between the two good ones.
    let torn: &[u8] = b"{\"id\":\"OLD-9\",\"title\":\"caf\xc3";
    lines.insert(1, torn);
    let mut bytes = lines.join(&b'\n');
    bytes.push(b'\n');
    std::fs::write(&path, &bytes).unwrap();
    for id in ["OLD-1", "OLD-2"] {
        let out = env.run(&["show", id, "--json"]);
        assert!(out.status.success(), "{id}: {out:?}");
    }
    // The index was made again past the bad line, which it names by its byte.
    let index = std::fs::read_to_string(env.path().join("data/pending-tickets.archive.idx"));
    assert_eq!(index.unwrap().lines().count(), 3);
    let out = env.run(&["list", "--status", "all", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pending-tickets.archive.jsonl:2"), "{err}");
    let all = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
}

#[test]
fn a_full_disk_during_archiving_loses_no_done_ticket() {
    let env = Env::with_config("state:\n  keep_done_days: 30\n");
    env.add("OLD-1", "t");
    env.add("NEW-1", "t");
    // An archive already larger than the state file, so a file-size limit between the two
    // lets the state be written but not the archive grow: a full disk for the append only.
    let path = env.path().join(ARCHIVE);
    let filler = format!("{}\n", " ".repeat(64 * 1024));
    std::fs::write(&path, &filler).unwrap();
    let mut state = env.state();
    state["tickets"]["OLD-1"]["status"] = "done".into();
    state["tickets"]["OLD-1"]["done_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(env.state_path(), serde_json::to_vec(&state).unwrap()).unwrap();
    let limited = |args: &[&str]| {
        std::process::Command::new("sh")
            .arg("-c")
            // bash and dash count ulimit -f in 1024-byte blocks; SIGXFSZ ignored, so a write
            // past the limit fails with EFBIG as on a full disk.
            .arg("trap '' XFSZ; ulimit -f 65; exec \"$@\"")
            .arg("sh")
            .arg(common::bin_path())
            .arg("--config")
            .arg(env.config_path())
            .args(args)
            .current_dir(env.path())
            .env_remove("PLANE_ORCH_CONFIG")
            .output()
            .unwrap()
    };
    let out = limited(&["add", "X-1", "--title", "t"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot append to the archive"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        filler,
        "the archive changed"
    );
    let state = env.state();
    assert_eq!(
        state["tickets"]["OLD-1"]["status"], "done",
        "OLD-1 left the state file"
    );
    assert!(state["archived"].is_null(), "{}", state["archived"]);
    assert!(env.ok(&["show", "OLD-1"]).contains("status:    done"));

    // Space is back: the next write archives it, and it stays readable.
    env.add("X-2", "t");
    assert!(env.state()["tickets"]["OLD-1"].is_null());
    let archived = std::fs::read_to_string(&path).unwrap();
    assert_eq!(archived.lines().filter(|l| l.contains("OLD-1")).count(), 1);
    let shown = json(&env.ok(&["show", "OLD-1", "--json"]));
    assert_eq!(shown["status"], "done");
}

/// Every ticket either in the state file or, once done, found by `show` through the archive.
/// A reader running `read` over and over until told to stop; it returns how many reads it
/// made (a failed check fails the join).
fn reading(
    env: &Arc<Env>,
    read: impl Fn(&Env) + Send + 'static,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let env = Arc::clone(env);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                read(&env);
                reads += 1;
            }
            reads
        })
    };
    (stop, reader)
}

fn every_ticket_is_somewhere(env: &Env, ids: &[String]) {
    let state = env.state();
    for id in ids {
        if state["tickets"][id].is_object() {
            continue;
        }
        // D-<n>: the runs of project D hold n.
        let n: u64 = id.strip_prefix("D-").unwrap().parse().unwrap();
        let runs = state["archived"]["D"].as_str().unwrap_or_default();
        let held = runs.split(',').any(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            (a.parse::<u64>().unwrap()..=b.parse().unwrap()).contains(&n)
        });
        assert!(
            held,
            "{id} is neither in the state file nor marked archived: {runs}"
        );
        let shown = json(&env.ok(&["show", id, "--json"]));
        assert_eq!(shown["status"], "done", "{id}");
    }
}

#[test]
fn writers_killed_while_tickets_become_done_lose_nothing_and_show_finds_every_one() {
    let env = Arc::new(Env::new());
    let description = "lorem ipsum dolor sit amet ".repeat(40);
    let ids: Vec<String> = (0..40).map(|i| format!("D-{i}")).collect();
    for id in &ids {
        env.ok(&["add", id, "--title", "t", "--description", &description]);
        env.ok(&["approve", id, "--no-session"]);
        env.ok(&["complete", id, "did it"]);
    }
    let (stop, reader) = reading(&env, |env| {
        let listed = json(&env.ok(&["list", "--status", "all", "--json"]));
        // Nothing is lost while tickets move from the file to the archive.
        assert_eq!(listed.as_array().unwrap().len(), 40, "{listed}");
    });
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut killed = 0;
    for id in &ids {
        if run_and_kill(&env, &["update-plane", id, "--no-plane"], rng.below(6000)) {
            killed += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().expect("a reader saw a ticket vanish") > 0);
    assert!(killed > 0);
    every_ticket_is_somewhere(&env, &ids);
    // What a kill left undone is finished, once; the index is made again from the archive.
    for id in &ids {
        let _ = env.run(&["update-plane", id, "--no-plane"]);
    }
    std::fs::remove_file(env.path().join("data/pending-tickets.archive.idx")).ok();
    every_ticket_is_somewhere(&env, &ids);
    let state = env.state();
    assert_eq!(state["tickets"], serde_json::json!({}), "{state}");
    let archive = std::fs::read_to_string(env.path().join(ARCHIVE)).unwrap();
    for id in &ids {
        let copies = archive
            .lines()
            .filter(|l| l.contains(&format!("\"id\":\"{id}\"")))
            .count();
        // A kill between the append and the state write can leave a second copy: readers
        // take the latest, and never lose one.
        assert!((1..=2).contains(&copies), "{id}: {copies} copies");
    }
    let done = json(&env.ok(&["list", "--status", "done", "--json"]));
    assert_eq!(done.as_array().unwrap().len(), 40);
}

#[test]
fn writers_killed_while_the_journal_takes_their_changes_lose_nothing() {
    let env = Arc::new(Env::with_config(JOURNAL_ALWAYS));
    let description = "lorem ipsum dolor sit amet ".repeat(40);
    let ids: Vec<String> = (0..30).map(|i| format!("J-{i}")).collect();
    for id in &ids {
        env.ok(&["add", id, "--title", "t", "--description", &description]);
    }
    let (stop, reader) = reading(&env, |env| {
        let listed = json(&env.ok(&["list", "--status", "all", "--json"]));
        let listed = listed.as_array().unwrap();
        // Every ticket from before the storm, whatever the kills left half done.
        let before = listed
            .iter()
            .filter(|t| t["id"].as_str().unwrap().starts_with("J-"))
            .count();
        assert_eq!(before, 30, "{listed:?}");
        let shown = json(&env.ok(&["show", "J-7", "--json"]));
        assert_eq!(shown["id"], "J-7");
    });
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let deadline = Instant::now() + Duration::from_secs(4);
    let (mut killed, mut added) = (0, 0);
    let mut i = 0;
    while Instant::now() < deadline {
        i += 1;
        let id = &ids[i % ids.len()];
        let new = format!("K-{i}");
        let args: Vec<&str> = match i % 3 {
            0 => vec!["approve", id, "--no-session"],
            1 => vec!["complete", id, "done by then"],
            _ => vec![
                "add",
                &new,
                "--title",
                "killed?",
                "--description",
                &description,
            ],
        };
        if run_and_kill(&env, &args, rng.below(9000)) {
            killed += 1;
        }
        added += usize::from(i % 3 == 2);
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().expect("a reader saw a ticket vanish") > 0);
    assert!(killed > 0 && added > 0);
    // What plane-orch reads is what the file and its journal hold, and every add either
    // happened whole or not at all.
    let state = env.state();
    let listed = json(&env.ok(&["list", "--status", "all", "--json"]));
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let mut held: Vec<&str> = state["tickets"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    held.sort_unstable();
    assert_eq!(sorted, held);
    for id in &ids {
        assert!(state["tickets"][id].is_object(), "{id} lost");
    }
    for t in state["tickets"].as_object().unwrap().values() {
        assert!(t["title"].is_string() && t["events"].is_array(), "{t}");
    }
    // The store goes on working, and a whole write takes the journal in.
    env.add("AFTER-1", "still works");
    env.ok(&["remove", "AFTER-1"]);
    assert!(!env
        .path()
        .join("data/pending-tickets.json.journal")
        .exists());
    assert_eq!(
        env.state()["tickets"].as_object().unwrap().len(),
        held.len()
    );
}

#[test]
fn a_state_file_of_the_earlier_format_is_migrated_at_its_first_write() {
    let env = Env::new();
    env.add("OPEN-1", "open");
    env.add("DONE-1", "done");
    // Today's file, as the earlier format kept it: the done ticket inside, version 1.
    let mut state = env.state();
    state["version"] = 1.into();
    state["tickets"]["DONE-1"]["status"] = "done".into();
    state["tickets"]["DONE-1"]["done_at"] = "2026-11-30T10:00:00Z".into();
    state["archived"] = serde_json::json!(["GONE-1"]);
    let old = serde_json::to_vec(&state).unwrap();
    std::fs::write(env.state_path(), &old).unwrap();
    // Readers read it as it is and change nothing.
    assert_eq!(
        json(&env.ok(&["list", "--status", "all", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(env.ok(&["show", "DONE-1"]).contains("status:    done"));
    assert_eq!(env.state_bytes().unwrap(), old);
    // The first write migrates it; .bak keeps the old one.
    env.ok(&["approve", "OPEN-1", "--no-session"]);
    let bak = std::fs::read(env.path().join("data/pending-tickets.json.bak")).unwrap();
    assert_eq!(bak, old);
    let state = env.state();
    assert_eq!(state["version"], 2);
    assert!(state["tickets"]["DONE-1"].is_null());
    assert_eq!(
        state["archived"],
        serde_json::json!({"DONE": "1", "GONE": "1"})
    );
    assert_eq!(state["tickets"]["OPEN-1"]["status"], "active");
    let shown = json(&env.ok(&["show", "DONE-1", "--json"]));
    assert_eq!(shown["status"], "done");
    env.fails(4, &["add", "GONE-1", "--title", "t"]);
    env.fails(4, &["add", "DONE-1", "--title", "t"]);
}
