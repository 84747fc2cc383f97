//! The six everyday commands (`list`, `show ID`, `approve --no-session`, `complete`, `add`,
//! `hook notify`) on a generated store, for one or two binaries taking turns run by run, each
//! on its own copy of the store; and the floors (cat, parse, write + fsync + rename) of a file
//! of the same size.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::proc::{self, Sample};
use super::store::{self, Status};

/// A binary under test: `after` (the one built here) or `before` (`--compare-with`).
#[derive(Debug, Clone)]
pub struct Bin {
    pub name: &'static str,
    pub path: PathBuf,
}

/// The six commands, in the order they run (approve before complete: complete finishes the
/// tickets approve started).
pub const COMMANDS: [&str; 6] = [
    "list",
    "show ID",
    "approve --no-session",
    "complete",
    "add",
    "hook notify",
];

/// A store copied once per binary: `dirs[b]` holds `config.yaml` and `data/`.
pub struct Stores {
    pub dirs: Vec<PathBuf>,
    /// Size of the generated (version-1) file.
    pub bytes: u64,
    /// The generated file, for the floors.
    pub master: PathBuf,
    /// Pending ids, for approve (then complete).
    pub pending: Vec<usize>,
    /// An active ticket for the hook.
    pub active: usize,
    /// The ticket `show` shows: a done one when there is one.
    pub shown: usize,
    /// Size of each binary's state file after its first write.
    pub live_bytes: Vec<u64>,
}

pub fn config_yaml() -> &'static str {
    "state:\n  keep_done_days: 3650\n"
}

/// The command line of `bin` on the store in `dir`, with a private tmux folder and nothing
/// from the caller's environment that changes what it does.
pub fn cmd(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg("--config")
        .arg(dir.join("config.yaml"))
        .env_remove("PLANE_API_KEY")
        .env_remove("RUST_LOG")
        .env_remove("PLANE_ORCH_API_TOKEN")
        .env_remove("PLANE_ORCH_TICKET")
        .env("TMUX_TMPDIR", dir);
    c
}

/// Generates a store of `total` tickets with `status(i)` under `root/name` and gives each
/// binary its own copy; each binary then makes one write (`add`), so one that migrates the
/// file does so before anything is timed.
pub fn prepare(
    root: &Path,
    name: &str,
    bins: &[Bin],
    total: usize,
    status: impl Fn(usize) -> Status + Copy,
) -> Stores {
    let base = root.join(name);
    let master = base.join("master.json");
    eprintln!("  generating {name}: {total} tickets...");
    let bytes = store::write(&master, total, status);
    let mut dirs = Vec::new();
    let mut live_bytes = Vec::new();
    for b in bins {
        let d = base.join(b.name);
        std::fs::create_dir_all(d.join("data")).expect("store folder");
        std::fs::write(d.join("config.yaml"), config_yaml()).expect("config");
        std::fs::copy(&master, d.join("data/pending-tickets.json")).expect("copy store");
        proc::run(cmd(&b.path, &d).args(["add", "WARM-1", "--title", "warm-up"]));
        live_bytes.push(
            std::fs::metadata(d.join("data/pending-tickets.json"))
                .map(|m| m.len())
                .unwrap_or(0),
        );
        dirs.push(d);
    }
    let pending = store::ids(total, status, Status::Pending);
    let active = store::ids(total, status, Status::Active)
        .first()
        .copied()
        .expect("an active ticket");
    let done = store::ids(total, status, Status::Done);
    let shown = done
        .get(done.len() / 2)
        .copied()
        .unwrap_or(pending[pending.len() / 2]);
    Stores {
        dirs,
        bytes,
        master,
        pending,
        active,
        shown,
        live_bytes,
    }
}

impl Stores {
    /// Removes the copies (the disk holds several stores of 100,000 tickets otherwise).
    pub fn remove(&self) {
        if let Some(base) = self.master.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// The hook's input: Claude Code's Notification event (idle prompt).
pub fn notify_input(dir: &Path) -> PathBuf {
    let path = dir.join("notification.json");
    if !path.exists() {
        let text = std::fs::read_to_string("tests/fixtures/claude-hooks/notification-idle.json")
            .expect("tests/fixtures/claude-hooks/notification-idle.json");
        std::fs::write(&path, text).expect("hook input");
    }
    path
}

/// The command `name` for run `r` on the store in `dir`.
fn command(bin: &Path, dir: &Path, s: &Stores, name: &str, r: usize) -> Command {
    let mut c = cmd(bin, dir);
    match name {
        "list" => {
            c.arg("list");
        }
        "show ID" => {
            c.args(["show", &store::id(s.shown)]);
        }
        "approve --no-session" => {
            c.args(["approve", &store::id(s.pending[r]), "--no-session"]);
        }
        "complete" => {
            c.args(["complete", &store::id(s.pending[r]), "bench summary"]);
        }
        "add" => {
            c.args([
                "add",
                &format!("NEW-{r}"),
                "--title",
                "A ticket added by hand",
                "--description",
                "Added while measuring.",
            ]);
        }
        "hook notify" => {
            let input = notify_input(dir);
            c.args(["hook", "notify"])
                .env("PLANE_ORCH_TICKET", store::id(s.active))
                .stdin(std::fs::File::open(input).expect("hook input"));
        }
        other => panic!("unknown command {other}"),
    }
    c
}

/// Medians per command, per binary: `result[c][b]`.
pub type Medians = Vec<Vec<Sample>>;

/// Each command `runs` times after one warm-up, the binaries taking turns (the order swapped
/// every run), each on its own copy.
pub fn measure(bins: &[Bin], s: &Stores, runs: usize) -> Medians {
    assert!(
        s.pending.len() > runs,
        "the store needs more than {runs} pending tickets"
    );
    let mut out = Vec::new();
    for name in COMMANDS {
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); bins.len()];
        for r in 0..=runs {
            let mut order: Vec<usize> = (0..bins.len()).collect();
            if r % 2 == 1 {
                order.reverse();
            }
            for b in order {
                let sample = proc::run(&mut command(&bins[b].path, &s.dirs[b], s, name, r));
                if r > 0 {
                    samples[b].push(sample);
                }
            }
        }
        let med: Vec<Sample> = samples.iter().map(|v| proc::medians(v)).collect();
        for (b, m) in med.iter().enumerate() {
            eprintln!(
                "    {name} [{}]: CPU {}, wall {}",
                bins[b].name,
                super::ms(m.cpu),
                super::ms(m.wall)
            );
        }
        out.push(med);
    }
    out
}

/// The floors for a file of the store's size: `cat` as a process (wall, CPU), a full decode
/// with serde_json into a `Value` and a write + fsync + rename of the same bytes (both
/// in-process, wall).
pub struct Floors {
    pub cat: Sample,
    pub parse: Duration,
    pub write: Duration,
}

pub fn floors(s: &Stores, runs: usize) -> Floors {
    let mut cat = Vec::new();
    let mut parse = Vec::new();
    let mut write = Vec::new();
    let bytes = std::fs::read(&s.master).expect("read the store");
    let dir = s.master.parent().expect("folder");
    for r in 0..=runs {
        let c = proc::run(Command::new("cat").arg(&s.master));
        let start = Instant::now();
        let data = std::fs::read(&s.master).expect("read");
        let v: serde_json::Value = serde_json::from_slice(&data).expect("parse the store");
        let p = start.elapsed();
        drop(v);
        let start = Instant::now();
        let tmp = dir.join("floor.tmp");
        let mut f = std::fs::File::create(&tmp).expect("create");
        f.write_all(&bytes).expect("write");
        f.sync_all().expect("fsync");
        drop(f);
        std::fs::rename(&tmp, dir.join("floor.json")).expect("rename");
        let w = start.elapsed();
        if r > 0 {
            cat.push(c);
            parse.push(p);
            write.push(w);
        }
    }
    let med = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Floors {
        cat: proc::medians(&cat),
        parse: med(parse),
        write: med(write),
    }
}
