//! The dashboard at `/` in a real Chromium (the system's, headless), driven by playwright-core
//! from tests/browser/dashboard.mjs, against `serve` with a fake Plane and real tmux.
//! Screenshots of every view land in target/ui-screenshots/.
//!
//! Without Chromium, node or tests/browser/node_modules these tests say so loudly and pass
//! without running; with `CI=true` they fail instead.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::fake_plane::{Plane, PlaneEnv, Project, CSLOG, KEY, KEY_ENV};
use common::server::Server;
use common::Env;

/// The longest one scenario may take, Chromium's start included.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// A worker that shows a line on the session's screen, then waits.
const PEEK: &str = "peek-marker: the agent is reading the code";

/// The automation section of every world here: sessions run `worker.sh` in the env's folder.
const AUTOMATION: &str = "automation:\n  worktrees: false\n  worker: worker.sh\n";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Whether the browser tests can run; says loudly why not. In CI they must run.
fn browser_ready() -> bool {
    let mut missing = Vec::new();
    if !chromium().is_file() {
        missing.push(format!(
            "Chromium at {} (apt-get install chromium, or set CHROMIUM)",
            chromium().display()
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        missing.push("node (apt-get install nodejs)".into());
    }
    if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push("playwright-core (cd tests/browser && npm ci)".into());
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join("; ");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the browser tests cannot run: missing {what}"
    );
    // Straight to stderr, past the test harness's capture, so a skip is seen in every run.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: dashboard browser test: missing {what} ***\n*** (with CI=true this fails) ***\n"
    );
    false
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target folder")
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Runs one scenario against `server`; returns what the page saw. Fails on a page error, a
/// request to another origin, a failed step or the time limit.
fn scenario(name: &str, server: &Server, params: &Value) -> Value {
    let mut child = Command::new("node")
        .arg("dashboard.mjs")
        .arg(name)
        .current_dir(browser_dir())
        .env("BASE_URL", server.url(""))
        .env("SHOTS", shots_dir())
        .env("CHROMIUM", chromium())
        .env("PARAMS", params.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > SCENARIO_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scenario {name} took over {SCENARIO_LIMIT:?}\nserver stderr: {}",
                server.stderr()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "scenario {name} failed ({status}):\n{stderr}\nstdout: {stdout}\nserver stderr: {}",
        server.stderr()
    );
    let out: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("scenario {name} printed no JSON ({e}): {stdout}\n{stderr}"));
    assert_eq!(out["errors"], json!([]), "scenario {name}: {out}");
    out
}

fn write_worker(env: &Env) {
    let worker = env.path().join("worker.sh");
    std::fs::write(
        &worker,
        format!("#!/bin/sh\necho '{PEEK}' \"$1\"\nexec sleep 600\n"),
    )
    .expect("write worker");
    common::sessions::make_executable(&worker);
}

/// A fake Plane whose items `ready` are in the trigger state, and an env watching it, with
/// sessions running the peek worker.
fn plane_world(items: &[(u64, &str, &str)], plane_extra: &str) -> PlaneEnv {
    let mut p = Project::cslog();
    p.fill(1, 2);
    for (seq, name, html) in items {
        p.add(*seq, name, "Ready for Claude", &[], html);
    }
    let w = PlaneEnv::new(Plane::new(vec![p]), &[CSLOG], plane_extra, AUTOMATION);
    write_worker(&w.env);
    w
}

fn serve(w: &PlaneEnv) -> Server {
    w.env.serve(&[], &[(KEY_ENV, KEY)])
}

#[test]
fn the_page_and_its_assets_are_served_with_a_strict_policy_and_no_token() {
    let env = Env::for_serve("");
    let s = env.serve(&[], &[("PLANE_ORCH_API_TOKEN", "s3cret")]);
    let page = s.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header("cache-control").as_deref(), Some("no-cache"));
    let mut total = page.body.len();
    for asset in ["app.js", "app.css", "icon.svg"] {
        let at = page
            .body
            .split('"')
            .find(|p| p.starts_with(&format!("/ui/{asset}?v=")))
            .unwrap_or_else(|| panic!("the page names no /ui/{asset}: {}", page.body));
        let a = s.get(at);
        assert_eq!(a.status, 200, "{at}: {}", a.body);
        assert!(a.header("cache-control").unwrap().contains("immutable"));
        assert_eq!(
            a.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        total += a.body.len();
    }
    assert!(total < 100 * 1024, "page and assets weigh {total} bytes");
    s.get("/ui/nope.js").assert_error(404, "not_found");
    s.get("/ui/..%2FCargo.toml").assert_error(404, "not_found");
    // The page is open; the data behind it is not.
    s.get("/api/tickets").assert_error(401, "unauthorized");
    assert_eq!(
        s.request("DELETE", "/", &[], None).status,
        405,
        "the page is read-only"
    );
}

#[test]
fn the_page_may_change_tickets_from_its_own_origin_but_a_rebound_name_may_not() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    let s = env.serve(&[], &[]);
    let own = format!("http://127.0.0.1:{}", s.port);
    // A page on another site whose name now points here sends its own name as Host.
    let rebound = s.raw(
        format!(
            "DELETE /api/tickets/A-1 HTTP/1.1\r\nHost: evil.example:{0}\r\n\
             Origin: http://evil.example:{0}\r\nConnection: close\r\n\r\n",
            s.port
        )
        .as_bytes(),
    );
    // Refused at the door: a loopback server answers no other Host (421).
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    assert_eq!(env.ticket("A-1")["status"], "pending");
    // Another origin on this very host (another port) is another site too.
    s.request(
        "DELETE",
        "/api/tickets/A-1",
        &[("Origin", "http://127.0.0.1:1")],
        None,
    )
    .assert_error(403, "forbidden");
    let ok = s.request("DELETE", "/api/tickets/A-2", &[("Origin", &own)], None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(env.state()["tickets"].get("A-2").is_none());
    assert!(
        ok.header("access-control-allow-origin").is_none(),
        "same-origin answers need no CORS header"
    );
}

#[test]
fn the_screen_endpoint_shows_a_live_session_as_text_and_says_when_there_is_none() {
    let w = plane_world(&[(7, "Peek at me", "<p>x</p>")], "");
    w.ok(&["poll"]);
    let s = serve(&w);
    s.get("/api/tickets/CSLOG-7/screen")
        .assert_error(409, "conflict");
    s.get("/api/tickets/CSLOG-99/screen")
        .assert_error(404, "not_found");
    s.get("/api/tickets/..%2Fx/screen")
        .assert_error(400, "invalid");
    assert_eq!(s.post("/api/approve/CSLOG-7", None).status, 200);
    let name = w.env.ticket("CSLOG-7")["session"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let mut last = Value::Null;
    let shown = s.wait_for(Duration::from_secs(10), || {
        last = s.get("/api/tickets/cslog-7/screen?lines=5").json();
        last["text"].as_str().is_some_and(|t| t.contains(PEEK))
    });
    assert!(shown, "the peek never showed the worker's line: {last}");
    assert_eq!(last["alive"], true);
    assert_eq!(last["session"], name);
    assert_eq!(last["lines"], 5);
    assert!(!last["text"].as_str().unwrap().contains('\u{1b}'));
    s.get("/api/tickets/CSLOG-7/screen?lines=0")
        .assert_error(400, "invalid");
    s.get("/api/tickets/CSLOG-7/screen?lines=x")
        .assert_error(400, "invalid");
    // The session ends: the ticket still has one, but nothing runs.
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &format!("={name}")])
        .env("TMUX_TMPDIR", w.env.tmux_tmpdir())
        .env_remove("TMUX")
        .status();
    let gone = s.get("/api/tickets/CSLOG-7/screen").json();
    assert_eq!(gone["alive"], false, "{gone}");
    assert_eq!(gone["text"], Value::Null, "{gone}");
    // A session of the service backend cannot be captured: said so, not faked.
    let state = std::fs::read_to_string(w.env.state_path()).unwrap();
    assert!(state.contains(r#""backend":"tmux""#), "{state}");
    std::fs::write(
        w.env.state_path(),
        state.replace(r#""backend":"tmux""#, r#""backend":"service""#),
    )
    .unwrap();
    let answer = s.get("/api/tickets/CSLOG-7/screen");
    answer.assert_error(501, "session_error");
    assert!(answer.json()["detail"]
        .as_str()
        .unwrap()
        .contains("plane-orch attach CSLOG-7"));
}

#[test]
fn approving_from_the_page_starts_a_real_session_and_its_peek_shows_the_screen() {
    if !browser_ready() {
        return;
    }
    let w = plane_world(
        &[(7, "Fix the export", "<p>The <b>export</b> breaks.</p>")],
        "",
    );
    w.ok(&["poll"]);
    let s = serve(&w);
    let out = scenario("approve", &s, &json!({"id": "CSLOG-7", "peek": PEEK}));
    // The session is up; its agent has not reported yet (the worker here runs none).
    assert_eq!(out["activity"], "starting", "{out}");
    assert_eq!(out["attach"], "plane-orch attach CSLOG-7", "{out}");
    assert!(out["peek"].as_str().unwrap().contains(PEEK), "{out}");
    assert!(out["peek"].as_str().unwrap().contains("CSLOG-7"), "{out}");
    assert_eq!(out["peekOpenAfterRefresh"], true, "{out}");
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "active");
    let name = t["session"]["name"].as_str().unwrap();
    assert!(w.env.tmux_has_session(name), "no tmux session {name}");
    assert!(out["notice"].as_str().unwrap().contains(name), "{out}");
    // The budget typed at approve, then raised from the active card.
    assert!(
        out["budgetNotice"].as_str().unwrap().contains("$12.50"),
        "{out}"
    );
    assert_eq!(w.env.ticket("CSLOG-7")["budget_usd"], 12.5);
}

#[test]
fn an_edited_summary_is_posted_to_plane_once_from_the_page() {
    if !browser_ready() {
        return;
    }
    let w = plane_world(&[(7, "Fix the export", "<p>x</p>")], "");
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-7", "--no-session"]);
    w.ok(&["complete", "CSLOG-7", "first summary from the agent"]);
    let s = serve(&w);
    let edited = "Fixed the export <for real> & added a test";
    let out = scenario("update", &s, &json!({"id": "CSLOG-7", "summary": edited}));
    assert_eq!(out["before"], "first summary from the agent", "{out}");
    assert_eq!(out["keptAcrossRefresh"], edited, "{out}");
    let comments = w.with(|p| p.comments.clone());
    assert_eq!(comments.len(), 1, "{comments:?}");
    let html = comments[0]["comment_html"].as_str().unwrap();
    assert!(
        html.contains("Fixed the export &lt;for real&gt; &amp; added a test"),
        "{html}"
    );
    assert!(!html.contains("first summary"), "{html}");
    let t = w.env.ticket("CSLOG-7");
    assert_eq!(t["status"], "done");
    assert_eq!(t["summary"], edited);
    assert!(
        out["doneLink"]
            .as_str()
            .is_some_and(|l| l.starts_with("https://plane.example/")),
        "{out}"
    );
}

#[test]
fn skipping_from_the_page_asks_first_and_works_by_keyboard() {
    if !browser_ready() {
        return;
    }
    let w = plane_world(&[(7, "Not this one", "<p>x</p>")], "");
    w.ok(&["poll"]);
    let s = serve(&w);
    let out = scenario("skip", &s, &json!({"id": "CSLOG-7"}));
    assert_eq!(out["stillThere"], 1, "answering no kept it: {out}");
    assert_eq!(out["reachedByTab"], true, "{out}");
    assert_eq!(out["asked"].as_array().unwrap().len(), 2, "{out}");
    assert!(
        out["asked"][0].as_str().unwrap().contains("CSLOG-7"),
        "{out}"
    );
    assert!(
        w.env.state()["tickets"].get("CSLOG-7").is_none(),
        "still queued: {}",
        w.env.state()
    );
    // Polling again does not bring it back while it stays triggered.
    w.ok(&["poll"]);
    assert!(w.env.state()["tickets"].get("CSLOG-7").is_none());
}

#[test]
fn scripts_in_ticket_text_never_run_in_the_page() {
    if !browser_ready() {
        return;
    }
    let payload = "<p>look<img src=x onerror=\"window.__hits++\"></p>\
                   <script>window.__hits++</script>\
                   <svg onload=\"window.__hits++\"></svg>\
                   <iframe srcdoc=\"<script>parent.__hits++</script>\"></iframe>\
                   <a href=\"javascript:window.__hits++\">click</a>";
    let title = "<img src=x onerror=window.__hits++> title";
    let w = plane_world(&[(7, title, payload)], "");
    w.ok(&["poll"]);
    let s = serve(&w);
    let raw = json!({
        "description": payload,
        "title": title,
        "url": "javascript:window.__hits++",
        "last_error": "<img src=x onerror=window.__hits++>",
        "summary": "<script>window.__hits++</script>",
    });
    let out = scenario("hostile", &s, &json!({"id": "CSLOG-7", "raw": raw}));
    assert_eq!(out["served"]["hits"], 0, "{out}");
    assert_eq!(out["served"]["title"], title, "the title is text: {out}");
    assert_eq!(out["raw"]["hits"], 0, "{out}");
    assert_eq!(out["raw"]["title"], title, "{out}");
    assert_eq!(out["raw"]["jsLinks"], 0, "{out}");
    assert_eq!(out["raw"]["hitsAfterClick"], 0, "{out}");
    assert!(
        out["raw"]["handlerInDom"].as_u64().unwrap() >= 1,
        "the payload reached the page: {out}"
    );
    assert!(
        out["raw"]["cspBlocked"].as_u64().unwrap() >= 1,
        "the policy was what stopped it: {out}"
    );
    assert!(
        out["control"]["hits"].as_u64().unwrap() >= 1,
        "the hook counts a payload that runs: {out}"
    );
}

#[test]
fn the_page_asks_for_the_token_and_refuses_a_wrong_one() {
    if !browser_ready() {
        return;
    }
    let env = Env::for_serve("");
    env.add("OPS-1", "Behind a token");
    let token = "a-long-s3cret-token";
    let s = env.serve(&[], &[("PLANE_ORCH_API_TOKEN", token)]);
    let out = scenario(
        "token",
        &s,
        &json!({"token": token, "wrong": "not-the-token"}),
    );
    assert!(out["firstAsk"].as_str().unwrap().contains("needs"), "{out}");
    assert_eq!(out["cardsBefore"], 0, "{out}");
    assert!(
        out["secondAsk"].as_str().unwrap().contains("refused"),
        "{out}"
    );
    assert_eq!(out["cardsAfterWrong"], 0, "{out}");
    assert_eq!(out["cardsAfterRight"], 1, "{out}");
    assert_eq!(out["stored"], token, "{out}");
    assert_eq!(out["askedAfterReload"], false, "{out}");
    assert!(!s.stderr().contains(token), "the token reached the log");
}

/// Every kind of ticket at once, for the width and colour checks and the screenshots.
fn busy_world() -> (PlaneEnv, Server) {
    let long = "A_very_long_unbroken_word_".repeat(12);
    let wide = format!(
        "<p>{long}</p><table><tr>{}</tr></table><pre>{}</pre>\
         <p>see https://example.invalid/{long}</p>",
        "<td>cell with some text</td>".repeat(12),
        "x".repeat(300)
    );
    let w = plane_world(
        &[
            (3, "Already posted", "<p>done</p>"),
            (4, "Working on it", "<p>busy</p>"),
            (5, "Its session ended", "<p>lost</p>"),
            (6, "Waiting for review", "<p>review</p>"),
            (7, &format!("Pending with {long}"), &wide),
        ],
        "",
    );
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-3", "--no-session"]);
    w.ok(&["complete", "CSLOG-3", "posted summary"]);
    w.ok(&["update-plane", "CSLOG-3"]);
    w.ok(&["approve", "CSLOG-4"]);
    w.ok(&["approve", "CSLOG-5"]);
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", "=plane-CSLOG-5"])
        .env("TMUX_TMPDIR", w.env.tmux_tmpdir())
        .env_remove("TMUX")
        .status();
    w.ok(&["approve", "CSLOG-6", "--no-session"]);
    w.ok(&["complete", "CSLOG-6", &format!("Did the review. {long}")]);
    w.ok(&["add", "HAND-1", "--title", "Added by hand"]);
    w.ok(&["approve", "HAND-1", "--no-session"]);
    w.ok(&["complete", "HAND-1", "hand summary"]);
    // Not a Plane work item: the update fails and the ticket shows the error.
    w.fails(1, &["update-plane", "HAND-1"]);
    let s = serve(&w);
    (w, s)
}

/// Fields the page shows when the server sends them.
fn extra_fields() -> Value {
    json!({
        "CSLOG-4": {
            "activity": {"state": "waiting", "question": "Allow Bash(cargo test)?", "since": "2026-01-01T10:00:00Z"},
            "cost": {"usd": 1.25, "budget_usd": 5.0},
        },
        "CSLOG-6": {
            "branch": {
                "name": "ticket/cslog-6",
                "commits": [{"sha": "0123456789abcdef", "subject": "Fix the review"}],
                "diffstat": " src/a.rs | 4 ++--\n 1 file changed, 2 insertions(+), 2 deletions(-)",
                "warnings": ["nothing pushed"],
            },
        },
        "HAND-1": {"op": {"kind": "update-plane", "started_at": "2026-01-01T10:00:00Z"}},
    })
}

#[test]
fn at_400_px_nothing_scrolls_sideways_in_light_or_dark() {
    if !browser_ready() {
        return;
    }
    let (w, s) = busy_world();
    for dark in [false, true] {
        let out = scenario(
            "narrow",
            &s,
            &json!({"width": 400, "height": 900, "dark": dark, "extra": extra_fields()}),
        );
        let width = &out["width"];
        assert!(
            width["scroll"].as_u64().unwrap() <= width["client"].as_u64().unwrap(),
            "the page scrolls sideways at 400 px (dark: {dark}): {out}"
        );
        assert!(width["client"].as_u64().unwrap() <= 400, "{out}");
        assert_eq!(out["cards"], 5, "{out}");
        assert_eq!(out["done"], 1, "{out}");
        let problems = out["problems"].to_string();
        assert!(
            problems.contains("HAND-1") && problems.contains("not a Plane work item"),
            "{out}"
        );
        assert!(out["activities"].to_string().contains("waiting"), "{out}");
        assert!(out["activities"].to_string().contains("lost"), "{out}");
        assert!(out["cost"].to_string().contains("$1.25 of $5.00"), "{out}");
        assert!(
            out["branch"].to_string().contains("nothing pushed"),
            "{out}"
        );
        let dark_bg = out["background"] == "rgb(16, 19, 23)";
        assert_eq!(dark_bg, dark, "prefers-color-scheme ignored: {out}");
    }
    // A wide window too, for the screenshots.
    let out = scenario(
        "narrow",
        &s,
        &json!({"width": 1200, "height": 900, "extra": extra_fields(), "name": "wide", "restart": "CSLOG-5"}),
    );
    assert_eq!(out["cards"], 5, "{out}");
    // Restart, from the lost session's card: a new session runs.
    // A new session: no longer lost, its agent not heard from yet.
    assert_eq!(out["restarted"], "starting", "{out}");
    assert!(w.env.tmux_has_session("plane-CSLOG-5"));
}
