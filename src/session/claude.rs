//! What Claude Code is given (claude-code.md): the `/complete` skill and a settings file with
//! plane-orch's hooks, both in `claude_dir` (nothing is written into the user's worktree), and
//! the folder-trust entry in Claude Code's own config.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use crate::config::Config;

use super::service::shell_quote;

/// The `/complete` skill. The hook has recorded the summary before Claude sees the prompt, so
/// the skill only has Claude confirm it.
pub const SKILL: &str = "---
description: Record the completion summary of this plane-orch ticket
argument-hint: <summary>
disable-model-invocation: true
---

A plane-orch hook has already handled this `/complete` command before you saw it.

- If the hook's output says `plane-orch: recorded the summary for ...`, confirm in one
  line that the summary was recorded and that the person can now review it (`plane-orch list`).
- If it says `plane-orch: NOT recorded: ...`, report that message to the person word for word.

Do not run any tools or commands for this.
";

/// `<claude_dir>/.claude/skills/complete/SKILL.md`.
#[must_use]
pub fn skill_path(claude_dir: &Path) -> PathBuf {
    claude_dir.join(".claude/skills/complete/SKILL.md")
}

/// `<claude_dir>/settings.json`.
#[must_use]
pub fn settings_path(claude_dir: &Path) -> PathBuf {
    claude_dir.join("settings.json")
}

/// The hooks plane-orch registers: Claude Code's event, and the `plane-orch hook` subcommand.
pub const HOOKS: [(&str, &str); 7] = [
    ("SessionStart", "session-start"),
    ("UserPromptSubmit", "prompt-submit"),
    ("PreToolUse", "pre-tool-use"),
    ("Notification", "notify"),
    ("Stop", "stop"),
    ("StopFailure", "stop-failure"),
    ("SessionEnd", "session-end"),
];

/// The settings file: every hook of [`HOOKS`] (activity, `/complete`, the budget) and the
/// status line (Claude Code's own cost). Hook commands run through a shell: the path is quoted.
#[must_use]
pub fn settings(exe: &Path) -> Value {
    let bin = shell_quote(&exe.display().to_string());
    let mut hooks = Map::new();
    for (event, sub) in HOOKS {
        hooks.insert(
            event.to_string(),
            json!([{ "hooks": [{ "type": "command", "command": format!("{bin} hook {sub}") }] }]),
        );
    }
    json!({
        "hooks": hooks,
        "statusLine": {"type": "command", "command": format!("{bin} hook status-line")},
    })
}

/// The binary the hooks of a settings file run (the inverse of [`settings`]); `None` when the
/// file holds no plane-orch hook plane-orch could have written.
#[must_use]
pub fn hook_binary(settings: &Value) -> Option<PathBuf> {
    let cmd = settings["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"].as_str()?;
    let quoted = cmd.strip_suffix(" hook prompt-submit")?;
    let inner = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(PathBuf::from(inner.replace(r"'\''", "'")))
}

/// Writes (or refreshes) the skill and the settings file into `claude_dir`.
///
/// # Errors
/// A file cannot be written.
pub fn write_files(config: &Config, exe: &Path) -> Result<()> {
    let dir = &config.automation.claude_dir;
    let settings = serde_json::to_string_pretty(&settings(exe))? + "\n";
    write_if_changed(&skill_path(dir), SKILL.as_bytes())?;
    write_if_changed(&settings_path(dir), settings.as_bytes())?;
    Ok(())
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    write_atomic(path, bytes)
}

/// Writes to a temp file beside `path`, then renames it over: a reader (or Claude Code) never
/// sees half a file. The bytes reach the disk before the rename, so the file also survives a
/// crash of the machine.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, true)
}

/// [`write_atomic`] without waiting for the disk: readers still see the old file or the new
/// one, never half of one, and a killed process leaves the old one. Only for files rewritten
/// all the time whose loss in a machine crash costs nothing, as a session's activity: an
/// fsync there is the largest part of a hook's time (and its spikes under I/O load).
pub(crate) fn write_atomic_volatile(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, false)
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| {
            if durable {
                tmp.as_file().sync_all()
            } else {
                Ok(())
            }
        })
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// The variable naming Claude Code's config folder.
pub const CONFIG_DIR_ENV: &str = "CLAUDE_CONFIG_DIR";

/// `$CLAUDE_CONFIG_DIR` when set and not empty: passed into every session as it is, so the
/// agent reads the config the trust entry was written to.
#[must_use]
pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os(CONFIG_DIR_ENV)
        .filter(|d| !d.is_empty())
        // A session runs in another folder: a relative path would name another config.
        .map(|d| std::path::absolute(&d).unwrap_or_else(|_| PathBuf::from(d)))
}

/// Claude Code's own config: `$CLAUDE_CONFIG_DIR/.claude.json`, else `~/.claude.json`.
#[must_use]
pub fn claude_config_path() -> Option<PathBuf> {
    match config_dir() {
        Some(dir) => Some(dir.join(".claude.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".claude.json")),
    }
}

/// Marks `folder` trusted (`projects[folder].hasTrustDialogAccepted: true`), so the session
/// does not stop at the trust question. Read-modify-write with an atomic rename; every other
/// key is kept and nothing is removed. Returns whether the folder's entry was made now (and
/// so is plane-orch's to remove).
///
/// # Errors
/// The file is not JSON (it is left alone) or cannot be written.
pub fn trust(folder: &Path) -> Result<bool> {
    edit_projects(folder, |projects, key| {
        let created = !projects.contains_key(key);
        let entry = projects
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(entry) = entry.as_object_mut() else {
            anyhow::bail!("the entry for {key} is not an object; left unchanged");
        };
        if entry.get("hasTrustDialogAccepted") == Some(&Value::Bool(true)) {
            return Ok((false, created));
        }
        entry.insert("hasTrustDialogAccepted".into(), Value::Bool(true));
        Ok((true, created))
    })
}

/// Removes `folder`'s entry from Claude Code's config (its folder is gone). Returns whether
/// there was one.
///
/// # Errors
/// The file is not JSON (it is left alone) or cannot be written.
pub fn untrust(folder: &Path) -> Result<bool> {
    if claude_config_path().is_none_or(|p| !p.exists()) {
        return Ok(false);
    }
    edit_projects(folder, |projects, key| {
        let had = projects.remove(key).is_some();
        Ok((had, had))
    })
}

/// Read-modify-write of `projects` in Claude Code's config: `change` gets the map and the
/// folder's key and says (write?, result).
fn edit_projects(
    folder: &Path,
    change: impl FnOnce(&mut Map<String, Value>, &str) -> Result<(bool, bool)>,
) -> Result<bool> {
    let Some(path) = claude_config_path() else {
        anyhow::bail!("neither CLAUDE_CONFIG_DIR nor HOME is set: cannot find Claude Code's config to pre-accept the folder trust");
    };
    let mut doc: Value = match std::fs::read(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => json!({}),
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "Claude Code's config {} is not JSON; left unchanged (fix it, or set automation.trust_worktrees: false)",
                path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    let Some(root) = doc.as_object_mut() else {
        anyhow::bail!(
            "Claude Code's config {} is not a JSON object; left unchanged",
            path.display()
        );
    };
    let projects = root
        .entry("projects")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(projects) = projects.as_object_mut() else {
        anyhow::bail!(
            "\"projects\" in {} is not an object; left unchanged",
            path.display()
        );
    };
    let key = folder.display().to_string();
    let (write, result) =
        change(projects, &key).with_context(|| format!("in {}", path.display()))?;
    if !write {
        return Ok(result);
    }
    let bytes = serde_json::to_vec_pretty(&doc)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    write_atomic(&path, &bytes)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_commands_quote_the_binary() {
        let s = settings(Path::new("/opt/my tools/plane-orch"));
        let cmd = s["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert_eq!(cmd, "'/opt/my tools/plane-orch' hook prompt-submit");
        let cmd = s["hooks"]["Notification"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert_eq!(cmd, "'/opt/my tools/plane-orch' hook notify");
        let odd = Path::new("/opt/it's/plane-orch");
        assert_eq!(hook_binary(&settings(odd)).as_deref(), Some(odd));
        for (event, sub) in HOOKS {
            let cmd = s["hooks"][event][0]["hooks"][0]["command"]
                .as_str()
                .unwrap();
            assert!(cmd.ends_with(&format!(" hook {sub}")), "{event}: {cmd}");
        }
        assert_eq!(
            s["statusLine"]["command"],
            "'/opt/my tools/plane-orch' hook status-line"
        );
    }
}
