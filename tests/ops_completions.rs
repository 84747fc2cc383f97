//! The committed completion scripts are what the binary generates now.

mod common;

use std::path::Path;

use common::Env;

#[test]
fn committed_completions_match_what_the_binary_generates() {
    let env = Env::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in [
        ("bash", "plane-orch.bash"),
        ("zsh", "_plane-orch"),
        ("fish", "plane-orch.fish"),
    ] {
        let fresh = env.ok(&["completions", shell]);
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            fresh == committed,
            "completions/{file} is out of date with the command line: run scripts/gen-completions and commit the result"
        );
        assert!(fresh.contains("approve"), "{shell}: {fresh}");
    }
}

#[test]
fn completions_need_no_config_and_write_no_file() {
    let env = Env::new();
    env.set_config("plane:\n  colour: red\n");
    let out = env
        .cmd()
        .env("PLANE_ORCH_CONFIG", "/nonexistent")
        .args(["completions", "fish"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete -c plane-orch"));
    assert_eq!(env.files(), Vec::<String>::new());
}

#[test]
fn completions_for_an_unknown_shell_are_a_usage_error() {
    let env = Env::new();
    let stderr = env.fails(2, &["completions", "powershell"]);
    assert!(stderr.contains("bash"), "{stderr}");
}
