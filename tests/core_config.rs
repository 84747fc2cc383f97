//! Finding and validating config.yaml.

mod common;

use common::{bin_path, json, Env};

#[test]
fn an_unknown_key_exits_2_naming_it_and_its_line() {
    let env = Env::with_config("plane:\n  workspace_slug: acme\n  colour: blue\n");
    let err = env.fails(2, &["list"]);
    assert!(err.contains("colour"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("config.yaml"), "{err}");
}

#[test]
fn a_wrong_type_exits_2_naming_the_key() {
    let env = Env::with_config("automation:\n  max_active_sessions: many\n");
    let err = env.fails(2, &["list"]);
    assert!(err.contains("automation.max_active_sessions"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn a_bad_value_exits_2_naming_the_key() {
    let env = Env::with_config("sessions:\n  tmux_prefix: 'plane orch'\n");
    let err = env.fails(2, &["list"]);
    assert!(err.contains("sessions.tmux_prefix"), "{err}");
    let env = Env::with_config("api:\n  bind: 'localhost'\n");
    let err = env.fails(2, &["list"]);
    assert!(err.contains("api.bind"), "{err}");
}

#[test]
fn a_missing_config_file_exits_2_naming_the_path() {
    let env = Env::new();
    let out = env
        .bare_cmd()
        .args(["--config", "nowhere/config.yaml", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nowhere/config.yaml"), "{err}");
    assert!(err.contains("--config"), "{err}");
}

#[test]
fn an_unreadable_config_file_exits_2_naming_the_path() {
    let env = Env::new();
    // A folder where the file should be: unreadable even for root.
    std::fs::create_dir(env.path().join("folder.yaml")).unwrap();
    let out = env
        .bare_cmd()
        .args(["--config", "folder.yaml", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("folder.yaml"));
    std::fs::write(
        env.path().join("latin1.yaml"),
        b"plane:\n  workspace_slug: \xe9\n",
    )
    .unwrap();
    let out = env
        .bare_cmd()
        .args(["--config", "latin1.yaml", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("latin1.yaml"));
}

#[test]
fn the_config_is_found_through_the_env_var_then_the_current_folder() {
    let env = Env::with_config("state:\n  path: elsewhere/state.json\n");
    let mut cmd = assert_cmd::Command::new(bin_path());
    cmd.current_dir(env.path().parent().unwrap())
        .env("PLANE_ORCH_CONFIG", env.config_path())
        .args(["add", "X-1", "--title", "t"]);
    cmd.assert().success();
    assert!(env.path().join("elsewhere/state.json").exists());

    let mut cmd = assert_cmd::Command::new(bin_path());
    cmd.current_dir(env.path())
        .env_remove("PLANE_ORCH_CONFIG")
        .args(["list", "--json"]);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    assert_eq!(json(&String::from_utf8_lossy(&out.stdout))[0]["id"], "X-1");
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let env = Env::with_config("state:\n  path: s/tickets.json\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let mut cmd = assert_cmd::Command::new(bin_path());
    cmd.current_dir(elsewhere.path())
        .env_remove("PLANE_ORCH_CONFIG")
        .arg("--config")
        .arg(env.config_path())
        .args(["add", "X-1", "--title", "t"]);
    cmd.assert().success();
    assert!(env.path().join("s/tickets.json").exists());
    assert!(std::fs::read_dir(elsewhere.path())
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn a_config_written_for_the_python_orchestrator_loads_as_it_is() {
    let env = Env::new();
    env.set_config(include_str!("fixtures/python-orchestrator-config.yaml"));
    let out = env.run(&["add", "CSLOG-7", "--title", "from the old config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("automation.claude_bin is not used"), "{err}");
    assert!(err.contains("triggers is not used"), "{err}");
    assert!(err.contains("move it to the PLANE_API_KEY"), "{err}");
    assert!(
        !err.contains("old-config-token"),
        "the key was printed: {err}"
    );
    // logging.file of the old config names the log; the state lives in the default place.
    assert!(env.state_path().exists());
}

#[test]
fn the_shipped_config_is_valid() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml");
    let env = Env::new();
    env.set_config(&std::fs::read_to_string(shipped).unwrap());
    let out = env.ok(&["list", "--json"]);
    assert_eq!(json(&out), serde_json::json!([]));
}
