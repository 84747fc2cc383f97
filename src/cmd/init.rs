//! `init`: writes a config of the user's own, outside the clone (so `git pull` never meets a
//! user's edits), made from the shipped config.yaml with every path absolute.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{GlobalArgs, InitArgs};
use crate::config;
use crate::error::Error;

use super::Run;

/// The shipped config: every key with its default and a comment.
const SHIPPED: &str = include_str!("../../config.yaml");

/// The paths an `init` config names, all absolute.
#[derive(Debug)]
struct Paths {
    repo: PathBuf,
    worker: PathBuf,
    data: PathBuf,
}

/// One YAML scalar holding `path` (quoted when it needs to be).
fn yaml_path(path: &Path) -> String {
    serde_yaml::to_string(&path.display().to_string())
        .map_or_else(|_| path.display().to_string(), |s| s.trim_end().to_string())
}

/// The shipped config with its header replaced and its paths made absolute.
fn render(paths: &Paths) -> Result<String> {
    let data = |rel: &str| yaml_path(&paths.data.join(rel));
    let replacements = [
        (
            "  repo_path: .\n",
            format!("  repo_path: {}\n", yaml_path(&paths.repo)),
        ),
        (
            "  worktree_dir: data/worktrees\n",
            format!("  worktree_dir: {}\n", data("worktrees")),
        ),
        (
            "  worker: scripts/claude-ticket-worker\n",
            format!("  worker: {}\n", yaml_path(&paths.worker)),
        ),
        (
            "  claude_dir: data/claude\n",
            format!("  claude_dir: {}\n", data("claude")),
        ),
        (
            "  dir: data/completions\n",
            format!("  dir: {}\n", data("completions")),
        ),
        (
            "  path: data/pending-tickets.json\n",
            format!("  path: {}\n", data("pending-tickets.json")),
        ),
        (
            "  path: data/orchestrator.log\n",
            format!("  path: {}\n", data("orchestrator.log")),
        ),
    ];
    let body = SHIPPED
        .split_once("\n\n")
        .map_or(SHIPPED, |(_header, rest)| rest);
    let mut text = String::from(
        "# plane-orch configuration, written by `plane-orch init`. Every key is optional: the\n\
         # value shown is the default, except the paths, which are this machine's. Set\n\
         # plane.workspace_slug, plane.project_ids and automation.repo_path, then run\n\
         # `plane-orch doctor`. The Plane API key goes in $PLANE_API_KEY, never in this file.\n\n",
    );
    text.push_str(body);
    for (from, to) in replacements {
        anyhow::ensure!(
            text.contains(from),
            "the shipped config.yaml has no line {from:?}"
        );
        text = text.replacen(from, &to, 1);
    }
    text = text.replacen(
        "  # The git repository the sessions work in.\n",
        "  # The git repository the sessions work in: your project's.\n",
        1,
    );
    Ok(text)
}

/// The worker script: beside the binary's build folder (`<clone>/target/release/plane-orch`
/// → `<clone>/scripts/`), else in the tree it was built from.
fn find_worker() -> PathBuf {
    const WORKER: &str = "scripts/claude-ticket-worker";
    let beside = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|root| root.join(WORKER)));
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(WORKER);
    beside
        .into_iter()
        .chain([built])
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(WORKER))
}

/// The git repository around the current folder, else the current folder.
fn find_repo(cwd: &Path) -> PathBuf {
    std::process::Command::new("git")
        .arg("-C")
        .arg(cwd)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| cwd.to_path_buf())
}

fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

impl Run for InitArgs {
    fn run(&self, _global: &GlobalArgs) -> Result<()> {
        let cwd = std::env::current_dir().context("cannot tell the current folder")?;
        let no_home = || {
            Error::Invalid("neither XDG_CONFIG_HOME nor HOME is set: pass --dir DIR".to_string())
        };
        let (dir, data) = match &self.dir {
            Some(d) => {
                let d = absolute(d, &cwd);
                let data = d.join("data");
                (d, data)
            }
            None => (
                config::user_config_dir().ok_or_else(no_home)?,
                config::user_data_dir().ok_or_else(no_home)?,
            ),
        };
        let file = dir.join("config.yaml");
        if file.exists() && !self.force {
            anyhow::bail!(
                "{} exists already: edit it, or pass --force to replace it",
                file.display()
            );
        }
        let paths = Paths {
            repo: find_repo(&cwd),
            worker: find_worker(),
            data,
        };
        let text = render(&paths)?;
        // Checked before it is written: what init writes always loads.
        config::parse(&text, &file).context("the config init would write does not load")?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
        // The completion folder must be private: anyone who can write there completes tickets.
        let completions = paths.data.join("completions");
        std::fs::create_dir_all(&completions)
            .and_then(|()| {
                std::fs::set_permissions(&completions, std::fs::Permissions::from_mode(0o700))
            })
            .with_context(|| format!("cannot create the folder {}", completions.display()))?;
        println!("wrote {}", file.display());
        println!("data goes to {}", paths.data.display());
        if !paths.worker.is_file() {
            println!(
                "the worker script was not found at {}: set automation.worker",
                paths.worker.display()
            );
        }
        let found = config::locate(None);
        if std::fs::canonicalize(&found).ok() != std::fs::canonicalize(&file).ok() {
            println!(
                "note: from this folder plane-orch reads {} first; pass --config {} or set \
                 PLANE_ORCH_CONFIG",
                found.display(),
                file.display()
            );
        }
        println!(
            "next: set plane.workspace_slug, plane.project_ids and automation.repo_path in it, \
             then run `plane-orch doctor`"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_of_the_rendered_config_is_absolute_and_it_loads() {
        let paths = Paths {
            repo: "/srv/my repo".into(),
            worker: "/opt/plane-orch/scripts/claude-ticket-worker".into(),
            data: "/home/me/.local/share/plane-orch".into(),
        };
        let text = render(&paths).unwrap();
        let config =
            config::parse(&text, Path::new("/home/me/.config/plane-orch/config.yaml")).unwrap();
        assert_eq!(config.automation.repo_path, Path::new("/srv/my repo"));
        assert_eq!(config.automation.worker, paths.worker);
        let data = &paths.data;
        assert_eq!(config.state.path, data.join("pending-tickets.json"));
        assert_eq!(config.log.path, data.join("orchestrator.log"));
        assert_eq!(config.completion.dir, data.join("completions"));
        assert_eq!(config.automation.claude_dir, data.join("claude"));
        assert_eq!(config.automation.worktree_dir, data.join("worktrees"));
        assert!(text.starts_with("# plane-orch configuration, written by `plane-orch init`"));
        // The comments of the shipped file come along.
        assert!(
            text.contains("# The UUIDs of the projects to watch"),
            "{text}"
        );
    }
}
