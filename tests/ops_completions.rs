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

/// What real bash completion offers for the words of `line` (the last one being completed),
/// with the committed script installed where the README puts it and loaded the way the
/// bash-completion package loads it.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".local/share/bash-completion/completions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/plane-orch.bash"),
        dir.join("plane-orch"),
    )
    .unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"
source /usr/share/bash-completion/bash_completion || exit 90
# bash-completion loads a command's file on its first Tab; this is that step.
if type -t _comp_load >/dev/null; then _comp_load plane-orch; else __load_completion plane-orch; fi
spec=$(complete -p plane-orch) || exit 91
fn=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$fn" plane-orch "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        words = quoted.join(" ")
    );
    let out = std::process::Command::new("timeout")
        .args(["20", "bash", "--norc", "--noprofile", "-c", &script])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "bash completion failed ({:?}; 90: no bash-completion package, 91: the file was not \
         loaded): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_options_and_values_past_the_subcommand() {
    assert_eq!(bash_complete(&["plane-orch", "list", "--st"]), ["--status"]);
    assert_eq!(
        bash_complete(&["plane-orch", "list", "--status", ""]),
        ["pending", "active", "completed", "done", "all"]
    );
    // A hyphenated subcommand and a nested one.
    assert!(bash_complete(&["plane-orch", "update-plane", "--"]).contains(&"--no-plane".into()));
    assert_eq!(bash_complete(&["plane-orch", "completions", "f"]), ["fish"]);
    let top = bash_complete(&["plane-orch", "up"]);
    assert_eq!(top, ["update-plane"]);
}
