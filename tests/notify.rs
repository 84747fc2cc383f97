//! Notifications: each sink kind against a receiver on 127.0.0.1, retries, a sender killed
//! mid-way, coalescing, hostile text in a command sink, and no secret in any output.

mod common;

use std::time::Duration;

use common::fake_plane::{Fault, Plane, PlaneEnv, Project, CSLOG};
use common::receiver::Receiver;
use common::{json, Env};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "s3cret-hmac-key";

fn webhook_config(r: &Receiver, extra: &str) -> String {
    format!(
        "notify:\n  link_base: http://127.0.0.1:5002/\n  retry_seconds: 0\n  sinks:\n    \
         - kind: webhook\n      name: hook\n      url: {}\n      secret_env: TEST_HOOK_SECRET\n{extra}",
        r.url("/plane-orch")
    )
}

fn env_with(config: &str) -> Env {
    Env::with_config(config)
}

/// Runs `plane-orch args` with the webhook secret set; asserts success.
fn ok(env: &Env, args: &[&str]) -> String {
    let out = env
        .cmd()
        .env("TEST_HOOK_SECRET", SECRET)
        .args(args)
        .output()
        .expect("run");
    common::expect_success(args, &out)
}

fn events(r: &Receiver) -> Vec<String> {
    r.delivered()
        .iter()
        .map(|g| g.json()["event"].as_str().unwrap().to_string())
        .collect()
}

fn valid_signature(body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&hex::decode(hex_sig).unwrap()).is_ok()
}

#[test]
fn webhook_gets_queued_waiting_and_completed_signed_with_the_documented_body() {
    let r = Receiver::new();
    let env = env_with(&webhook_config(&r, ""));
    ok(&env, &["add", "DEMO-1", "--title", "Fix the login page"]);
    ok(&env, &["add", "DEMO-2", "--title", "Second"]);
    ok(&env, &["poll"]);
    assert_eq!(events(&r), ["queued"], "both new tickets in one message");
    let queued = r.delivered()[0].json();
    assert_eq!(queued["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(queued["title"], "2 new tickets are waiting for approval");

    ok(&env, &["approve", "DEMO-1", "--no-session"]);
    let out = env
        .cmd()
        .env("PLANE_ORCH_TICKET", "DEMO-1")
        .args(["hook", "notify"])
        .write_stdin(
            r#"{"notification_type":"permission_prompt","message":"Allow Bash(npm test)?"}"#,
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    ok(&env, &["poll"]);
    ok(&env, &["complete", "DEMO-1", "Fixed the redirect"]);
    ok(&env, &["poll"]);
    assert_eq!(events(&r), ["queued", "waiting", "completed"]);

    let got = r.delivered();
    for g in &got {
        assert_eq!(g.method, "POST");
        assert_eq!(g.path, "/plane-orch");
        assert_eq!(g.header("Content-Type"), Some("application/json"));
        let sig = g.header("X-Plane-Orch-Signature").expect("signed");
        assert!(valid_signature(&g.body, sig), "bad signature {sig}");
        let body = g.json();
        assert_eq!(g.header("X-Plane-Orch-Delivery"), body["event_id"].as_str());
        assert!(body["time"].is_string());
    }
    let waiting = got[1].json();
    assert_eq!(waiting["ticket"]["id"], "DEMO-1");
    assert_eq!(waiting["ticket"]["title"], "Fix the login page");
    assert_eq!(waiting["ticket"]["status"], "active");
    assert!(waiting["message"]
        .as_str()
        .unwrap()
        .contains("Allow Bash(npm test)?"));
    assert_eq!(waiting["link"], "http://127.0.0.1:5002/#DEMO-1");
    let completed = got[2].json();
    assert_eq!(completed["ticket"]["summary"], "Fixed the redirect");
    assert_eq!(completed["ticket"]["status"], "completed");
    let ids: std::collections::HashSet<_> =
        got.iter().map(|g| g.json()["event_id"].clone()).collect();
    assert_eq!(ids.len(), 3, "every event has its own id");

    // Nothing new: a third poll sends nothing.
    ok(&env, &["poll"]);
    assert_eq!(r.got().len(), 3);
}

#[test]
fn a_sink_that_answers_500_then_200_gets_the_event_once() {
    let r = Receiver::scripted(&[500], 200);
    let env = env_with(&webhook_config(&r, ""));
    ok(&env, &["add", "DEMO-1", "--title", "t"]);
    let out = ok(&env, &["poll", "--json"]);
    assert_eq!(json(&out)["notifications"]["failed"], 1, "{out}");
    assert_eq!(r.got().len(), 1);
    let out = ok(&env, &["poll", "--json"]);
    assert_eq!(json(&out)["notifications"]["delivered"], 1, "{out}");
    ok(&env, &["poll"]);
    let got = r.got();
    assert_eq!(
        got.len(),
        2,
        "one failed attempt, one delivery, nothing after"
    );
    assert_eq!(got[0].json()["event_id"], got[1].json()["event_id"]);
    assert_eq!(r.delivered().len(), 1);
}

#[test]
fn a_sink_that_keeps_failing_is_given_up_and_reported_by_doctor_and_health() {
    let r = Receiver::scripted(&[], 503);
    let env = Env::for_serve(&webhook_config(&r, "  max_attempts: 2\n"));
    ok(&env, &["add", "DEMO-1", "--title", "t"]);
    ok(&env, &["poll"]);
    ok(&env, &["poll"]);
    ok(&env, &["poll"]);
    assert_eq!(r.got().len(), 2, "two attempts, then given up");
    let out = env
        .cmd()
        .env("TEST_HOOK_SECRET", SECRET)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let checks = json(&String::from_utf8_lossy(&out.stdout));
    let hook = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "notify hook")
        .expect("a check for the sink")
        .clone();
    assert_eq!(hook["status"], "fail", "{hook}");
    assert!(hook["detail"].as_str().unwrap().contains("503"), "{hook}");
    assert!(hook["detail"]
        .as_str()
        .unwrap()
        .contains("1 messages given up"));

    let server = env.serve(&[], &[("TEST_HOOK_SECRET", SECRET)]);
    assert!(server.wait_for(Duration::from_secs(5), || {
        server.get("/health").json()["notify"]["sinks"][0]["failing"] == true
    }));
    let health = server.get("/health").json();
    assert_eq!(health["notify"]["sinks"][0]["name"], "hook");
    assert_eq!(health["notify"]["sinks"][0]["given_up"], 1);
    assert!(
        !health.to_string().contains(&r.url("")),
        "no sink URL in /health"
    );
}

#[test]
fn a_sender_killed_before_delivering_delivers_after_restart_once() {
    let r = Receiver::scripted(&[], 503);
    let env = Env::for_serve(&webhook_config(&r, ""));
    let mut server = env.serve(&[], &[("TEST_HOOK_SECRET", SECRET)]);
    ok(&env, &["add", "DEMO-1", "--title", "t"]);
    assert!(
        r.wait_for(1, Duration::from_secs(10)),
        "serve's sender tried"
    );
    // SIGKILL: no chance to tidy up. The event is in the outbox, not delivered.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status();
    server.wait_exit(Duration::from_secs(5));
    drop(server);
    assert_eq!(r.delivered().len(), 0);
    r.answer(200);
    let server = env.serve(&[], &[("TEST_HOOK_SECRET", SECRET)]);
    assert!(server.wait_for(Duration::from_secs(10), || r.delivered().len() == 1));
    // Later ticks (of serve and of poll) send nothing more.
    ok(&env, &["poll"]);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(r.delivered().len(), 1);
    let got = r.got();
    let first = got[0].json()["event_id"].clone();
    assert!(got.iter().all(|g| g.json()["event_id"] == first));
    assert_eq!(events(&r), ["queued"]);
}

#[test]
fn a_waiting_repeated_every_minute_is_coalesced_unless_the_question_changes() {
    let r = Receiver::new();
    let env = env_with(&webhook_config(&r, ""));
    ok(&env, &["add", "DEMO-1", "--title", "t"]);
    ok(&env, &["approve", "DEMO-1", "--no-session"]);
    let hook = |name: &str, input: &str| {
        let out = env
            .cmd()
            .env("PLANE_ORCH_TICKET", "DEMO-1")
            .args(["hook", name])
            .write_stdin(input.to_string())
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    let wait =
        r#"{"notification_type":"idle_prompt","message":"Claude is waiting for your input"}"#;
    for _ in 0..3 {
        hook("notify", wait);
        ok(&env, &["poll"]);
        // The person answers, then Claude waits again with the same question.
        hook("prompt-submit", r#"{"prompt":"go on"}"#);
        ok(&env, &["poll"]);
    }
    assert_eq!(events(&r), ["queued", "waiting"], "one waiting message");
    hook(
        "notify",
        r#"{"notification_type":"permission_prompt","message":"Allow Edit(src/main.rs)?"}"#,
    );
    ok(&env, &["poll"]);
    assert_eq!(events(&r), ["queued", "waiting", "waiting"]);
}

#[test]
fn a_command_sink_gets_hostile_titles_as_arguments_and_no_shell_runs_them() {
    let env = Env::new();
    let script = env.path().join("record.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$(dirname \"$0\")/args\"\n\
         printf '%s' \"$PLANE_ORCH_EVENT_TICKET_TITLE\" > \"$(dirname \"$0\")/title\"\n\
         env > \"$(dirname \"$0\")/env\"\n",
    )
    .unwrap();
    common::sessions::make_executable(&script);
    env.set_config(&format!(
        "notify:\n  sinks:\n    - kind: command\n      command: [{}, \"--event={{event}}\", \"{{title}}\", \"{{id}}\"]\n",
        script.display()
    ));
    let hostile = "$(touch pwned) `touch pwned2`; rm -rf / && {id} | cat";
    let out = env
        .cmd()
        .env("PLANE_API_KEY", "plane_api_topsecret")
        .args(["add", "DEMO-1", "--title", hostile])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = env
        .cmd()
        .env("PLANE_API_KEY", "plane_api_topsecret")
        .args(["poll"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(env.path().join("args")).unwrap();
    assert_eq!(args, format!("--event=queued\n{hostile}\nDEMO-1\n"));
    assert_eq!(
        std::fs::read_to_string(env.path().join("title")).unwrap(),
        hostile
    );
    assert!(!env.path().join("pwned").exists());
    assert!(!env.path().join("pwned2").exists());
    let child_env = std::fs::read_to_string(env.path().join("env")).unwrap();
    assert!(
        !child_env.contains("plane_api_topsecret"),
        "the Plane key reached the command"
    );
    assert!(child_env.contains("PLANE_ORCH_EVENT=queued"));
}

#[test]
fn ntfy_and_slack_get_their_own_shapes_and_no_url_secret_reaches_any_output() {
    let ntfy = Receiver::new();
    let slack = Receiver::scripted(&[500], 200);
    let secret_path = "/services/T000/B000/XOXSECRETXYZ";
    let env = env_with(&format!(
        "log:\n  level: debug\nnotify:\n  retry_seconds: 0\n  sinks:\n    - kind: ntfy\n      url: {}\n      \
         events: [queued]\n    - kind: slack\n      url: {}\n",
        ntfy.url("/team-claude"),
        slack.url(secret_path)
    ));
    let run = |args: &[&str]| {
        let out = env.cmd().arg("-vv").args(args).output().unwrap();
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(text).contains("XOXSECRETXYZ"),
                "the Slack URL's secret appeared in the output of {args:?}"
            );
        }
        out
    };
    run(&["add", "DEMO-1", "--title", "<!channel> & <b>bold</b>"]);
    run(&["poll"]);
    run(&["poll"]);
    let out = run(&["notify", "test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("✓ ntfy-1 (ntfy)"), "{text}");
    assert!(text.contains("✓ slack-2 (slack)"), "{text}");

    let n = &ntfy.delivered()[0];
    assert_eq!(
        n.path, "/",
        "ntfy's JSON publishing goes to the server's root"
    );
    let body = n.json();
    assert_eq!(body["topic"], "team-claude");
    assert_eq!(body["title"], "DEMO-1 is waiting for approval");
    assert!(body["message"].as_str().unwrap().contains("<!channel>"));

    let s = &slack.delivered()[0];
    assert_eq!(s.path, secret_path);
    let body: Value = s.json();
    let blocks = body["blocks"].to_string();
    assert!(
        !blocks.contains("<!channel>"),
        "Slack mentions are escaped: {blocks}"
    );
    assert!(blocks.contains("&lt;!channel&gt;"));
    assert!(body["text"].is_string());
    assert_eq!(slack.got().len(), 3, "one 500, the retry, the test message");

    for file in ["data/orchestrator.log", "data/pending-tickets.outbox.json"] {
        let text = std::fs::read_to_string(env.path().join(file)).unwrap_or_default();
        assert!(
            !text.contains("XOXSECRETXYZ"),
            "the Slack URL's secret is in {file}"
        );
    }
    let out = run(&["doctor"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("XOXSECRETXYZ"));
}

#[test]
fn notify_test_names_the_sink_that_failed_and_exits_1() {
    let good = Receiver::new();
    let env = env_with(&format!(
        "notify:\n  sinks:\n    - kind: webhook\n      name: good\n      url: {}\n    - kind: webhook\n      \
         name: down\n      url: http://127.0.0.1:9/nothing-listens\n",
        good.url("/x")
    ));
    let err = env.fails(1, &["notify", "test"]);
    assert!(err.contains("1 of 2 sinks"), "{err}");
    let out = env.run(&["notify", "test", "good", "--json"]);
    assert!(out.status.success());
    let results = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(results[0]["sink"], "good");
    assert_eq!(results[0]["ok"], true);
    assert_eq!(good.delivered()[0].json()["event"], "test");
    let err = env.fails(2, &["notify", "test", "nope"]);
    assert!(err.contains("good, down"), "{err}");
}

#[test]
fn update_failed_and_done_reach_the_sink() {
    let r = Receiver::new();
    let mut p = Project::cslog();
    p.fill(1, 3);
    p.set_state(2, "Ready for Claude");
    let w = PlaneEnv::new(
        Plane::new(vec![p]),
        &[CSLOG],
        "",
        &format!(
            "notify:\n  retry_seconds: 0\n  sinks:\n    - kind: webhook\n      url: {}\n      \
             events: [update_failed, done]\n",
            r.url("/h")
        ),
    );
    w.ok(&["poll"]);
    w.ok(&["approve", "CSLOG-2", "--no-session"]);
    w.ok(&["complete", "CSLOG-2", "done it"]);
    w.with(|p| {
        p.faults.push(
            Fault::new(
                "POST",
                "/comments/",
                400,
                serde_json::json!({"error": "refused"}),
            )
            .times(1),
        );
    });
    w.fails(1, &["update-plane", "CSLOG-2"]);
    w.ok(&["poll"]);
    w.ok(&["update-plane", "CSLOG-2"]);
    w.ok(&["poll"]);
    assert_eq!(events(&r), ["update_failed", "done"]);
    let failed = r.delivered()[0].json();
    assert_eq!(failed["ticket"]["id"], "CSLOG-2");
    assert_eq!(
        failed["ticket"]["url"]
            .as_str()
            .map(|u| u.starts_with("https://plane.example")),
        Some(true)
    );
}

#[test]
fn bad_sinks_are_config_errors_naming_the_key() {
    for (yaml, key) in [
        ("    - kind: pager\n", "notify.sinks[0].kind"),
        ("    - kind: webhook\n", "notify.sinks[0].url"),
        (
            "    - kind: webhook\n      url: http://127.0.0.1:1/\n      events: [sometimes]\n",
            "notify.sinks[0].events",
        ),
        (
            "    - kind: webhook\n      url: http://127.0.0.1:1/\n      secret_env: \"not a var\"\n",
            "notify.sinks[0].secret_env",
        ),
        ("    - kind: command\n      command: []\n", "notify.sinks[0].command"),
    ] {
        let env = Env::with_config(&format!("notify:\n  sinks:\n{yaml}"));
        let err = env.fails(2, &["list"]);
        assert!(err.contains(key), "{yaml}: {err}");
    }
}

#[test]
fn without_sinks_nothing_is_written() {
    let env = Env::new();
    env.add("DEMO-1", "t");
    env.ok(&["poll"]);
    assert!(!env.path().join("data/pending-tickets.outbox.json").exists());
    let out = env.ok(&["poll", "--json"]);
    assert!(json(&out).get("notifications").is_none(), "{out}");
}
