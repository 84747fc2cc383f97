//! The configuration file: read strictly into raw structs that mirror the YAML,
//! then validated into the typed `Config` the rest of the program uses.
//!
//! A config.yaml written for the Python orchestrator loads as it is: its keys are accepted
//! as aliases and mapped onto ours, and the ones we do not use are ignored with a warning.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use crate::error::Error;

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "PLANE_ORCH_CONFIG";

/// Which program runs the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// tmux, called directly.
    Tmux,
    /// tmux-session-service over HTTP.
    Service,
}

impl Backend {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Tmux => "tmux",
            Backend::Service => "service",
        }
    }
}

/// The validated configuration. Every path in it is absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub plane: PlaneConfig,
    pub poll: PollConfig,
    pub automation: AutomationConfig,
    pub sessions: SessionsConfig,
    pub completion: CompletionConfig,
    pub state: StateConfig,
    pub log: LogConfig,
    pub api: ApiConfig,
    pub cleanup: CleanupConfig,
    pub watch: WatchConfig,
    pub prices: PricesConfig,
    pub notify: crate::notify::NotifyConfig,
    /// Keys that were accepted but have no effect, and other advice for the person.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PlaneConfig {
    /// Plane's origin, without a trailing slash and without `/api/v1`.
    pub base_url: String,
    pub web_url: String,
    pub workspace_slug: String,
    pub api_key_env: String,
    /// A key written into the config file (the old orchestrator's `api_token`).
    pub api_key_in_file: Option<String>,
    pub project_ids: Vec<String>,
    pub project_identifier: Option<String>,
    pub trigger_states: Vec<String>,
    pub trigger_labels: Vec<String>,
    pub on_approve: Option<String>,
    pub on_update: Option<String>,
    pub timeout: Duration,
    /// Requests a minute the key may make, shared by every plane-orch process using it.
    pub rate_limit_per_minute: u32,
    /// The shared rate budget's file, beside the state file.
    pub rate_file: PathBuf,
    /// The env var holding the secret Plane signs webhooks with; webhooks are off without it.
    pub webhook_secret_env: String,
    /// Where `serve` takes Plane's webhooks (a path starting with `/`).
    pub webhook_path: String,
}

impl PlaneConfig {
    /// The API key: the env var named by `api_key_env`, else a key kept in the file.
    #[must_use]
    pub fn api_key(&self) -> Option<String> {
        std::env::var(&self.api_key_env)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .or_else(|| self.api_key_in_file.clone())
    }

    /// The webhook secret from `webhook_secret_env`, when set and not blank.
    #[must_use]
    pub fn webhook_secret(&self) -> Option<String> {
        std::env::var(&self.webhook_secret_env)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Whether there is enough to talk to Plane: a workspace and a key.
    #[must_use]
    pub fn is_configured(&self) -> bool {
        !self.workspace_slug.is_empty() && self.api_key().is_some()
    }
}

#[derive(Debug, Clone)]
pub struct PollConfig {
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct AutomationConfig {
    pub repo_path: PathBuf,
    pub worktrees: bool,
    pub worktree_dir: PathBuf,
    pub branch_prefix: String,
    pub worktree_copy: Vec<String>,
    pub worker: PathBuf,
    pub agent_command: String,
    pub agent_args: Vec<String>,
    pub trust_worktrees: bool,
    pub claude_dir: PathBuf,
    pub max_active_sessions: usize,
    /// Push the ticket's branch before the Plane comment is posted (never forced).
    pub push: bool,
    /// The remote pushed to and checked for unpushed commits.
    pub remote: String,
    /// The review page of a branch: `{branch}`, `{id}` and `{base}` are filled in.
    pub review_url: Option<String>,
    /// The spend limit of a session in USD when approve gives none; `None`: no limit.
    pub budget_usd: Option<f64>,
}

/// `cleanup`: removing what done and removed tickets left behind.
#[derive(Debug, Clone, Default)]
pub struct CleanupConfig {
    /// Run it on every poll tick.
    pub auto: bool,
    /// Only tickets done or removed at least this many days ago.
    pub older_than_days: u32,
    /// Write a bundle of each branch here before removing it.
    pub bundle_dir: Option<PathBuf>,
}

/// The watchdog of poll ticks: sessions that never start, stall, or run too long.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// A session still `starting` after this long is flagged `stuck before start`.
    pub start_seconds: u64,
    /// A `working` session with no hook event for this long is flagged `stalled`.
    pub stall_minutes: f64,
    /// A session older than this is flagged `over_time`; `None`: no limit.
    pub max_session_minutes: Option<f64>,
    /// Interrupt a session flagged `over_time`, as the budget does.
    pub stop_over_time: bool,
}

/// USD per million tokens of one model family.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_write: f64,
    pub cache_read: f64,
}

/// Token prices by model id prefix (the longest matching prefix wins).
#[derive(Debug, Clone)]
pub struct PricesConfig {
    /// When the prices were taken.
    pub date: String,
    pub models: Vec<(String, Price)>,
}

/// The date the default prices were taken.
pub const DEFAULT_PRICES_DATE: &str = "2026-12-01";

/// The default prices, USD per million tokens (input, output, cache write, cache read). The
/// Opus 4.5+ row matches the cost Claude Code 2.1.197 itself reports for claude-opus-4-8.
#[must_use]
pub fn default_prices() -> Vec<(String, Price)> {
    let p = |input, output, cache_write, cache_read| Price {
        input,
        output,
        cache_write,
        cache_read,
    };
    vec![
        ("claude-opus-4-0".into(), p(15.0, 75.0, 18.75, 1.5)),
        ("claude-opus-4-1".into(), p(15.0, 75.0, 18.75, 1.5)),
        ("claude-opus-4-2025".into(), p(15.0, 75.0, 18.75, 1.5)),
        ("claude-opus-4".into(), p(5.0, 25.0, 6.25, 0.5)),
        ("claude-sonnet-4".into(), p(3.0, 15.0, 3.75, 0.3)),
        ("claude-3-7-sonnet".into(), p(3.0, 15.0, 3.75, 0.3)),
        ("claude-haiku-4".into(), p(1.0, 5.0, 1.25, 0.1)),
        ("claude-3-5-haiku".into(), p(0.8, 4.0, 1.0, 0.08)),
    ]
}

impl PricesConfig {
    /// The price of `model`: the longest configured prefix it starts with.
    #[must_use]
    pub fn of(&self, model: &str) -> Option<Price> {
        self.models
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| *p)
    }
}

#[derive(Debug, Clone)]
pub struct SessionsConfig {
    pub backend: Backend,
    pub tmux_prefix: String,
    pub service_url: String,
    pub service_project_id: String,
}

#[derive(Debug, Clone)]
pub struct CompletionConfig {
    pub dir: PathBuf,
    pub pattern: String,
}

#[derive(Debug, Clone)]
pub struct StateConfig {
    pub path: PathBuf,
    pub keep_done_days: u32,
    /// From what size (KiB) of state file a change to one ticket goes to its journal.
    pub journal_above_kib: u64,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub path: PathBuf,
    pub level: log::LevelFilter,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub bind: SocketAddr,
    pub token_env: String,
    pub cors_origins: Vec<String>,
    /// Host names (lower case, no port) accepted besides the loopback names; on a
    /// non-loopback bind, empty means any (the token guards every request there).
    pub allowed_hosts: Vec<String>,
    /// Connections served at once; more are refused with 503.
    pub max_connections: usize,
    /// Large kept answers are sent from a file with `sendfile` (else copied from memory).
    pub sendfile: bool,
}

// ---- the YAML, as written -------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    plane: RawPlane,
    poll: RawPoll,
    automation: RawAutomation,
    sessions: RawSessions,
    completion: RawCompletion,
    state: RawState,
    #[serde(alias = "logging")]
    log: RawLog,
    api: RawApi,
    cleanup: RawCleanup,
    watch: RawWatch,
    prices: RawPrices,
    notify: crate::notify::config::RawNotify,
    /// The old orchestrator's tmux-session-service section.
    tmux_session_service: Option<RawTmuxService>,
    /// The old orchestrator's trigger switches: not used.
    triggers: Option<serde_yaml::Value>,
    websocket_url: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPlane {
    base_url: Option<String>,
    web_url: Option<String>,
    workspace_slug: Option<String>,
    api_key_env: Option<String>,
    project_ids: Option<Vec<String>>,
    project_identifier: Option<String>,
    trigger: RawTrigger,
    transitions: RawTransitions,
    timeout_secs: Option<u64>,
    rate_limit_per_minute: Option<u32>,
    webhook_secret_env: Option<String>,
    webhook_path: Option<String>,
    /// Old orchestrator: `https://host/api/v1`.
    api_url: Option<String>,
    /// Old orchestrator: the key itself, in the file.
    api_token: Option<String>,
    /// Old orchestrator: seconds between polls.
    poll_interval: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTrigger {
    states: Option<Vec<String>>,
    labels: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTransitions {
    on_approve: Option<String>,
    on_update: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPoll {
    interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAutomation {
    repo_path: Option<String>,
    worktrees: Option<bool>,
    worktree_dir: Option<String>,
    branch_prefix: Option<String>,
    worktree_copy: Option<Vec<String>>,
    worker: Option<String>,
    agent_command: Option<String>,
    agent_args: Option<Vec<String>>,
    trust_worktrees: Option<bool>,
    claude_dir: Option<String>,
    max_active_sessions: Option<usize>,
    push: Option<bool>,
    remote: Option<String>,
    review_url: Option<String>,
    budget_usd: Option<f64>,
    /// Old orchestrator: the session name prefix.
    session_prefix: Option<String>,
    /// Old orchestrator: tmux-session-service's project id.
    project_id: Option<String>,
    /// Old orchestrator: not used (the worker runs `agent_command`).
    claude_bin: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCleanup {
    auto: Option<bool>,
    older_than_days: Option<u32>,
    bundle_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWatch {
    start_seconds: Option<u64>,
    stall_minutes: Option<f64>,
    max_session_minutes: Option<f64>,
    stop_over_time: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPrices {
    date: Option<String>,
    /// Model id prefix → price; replaces the defaults for the prefixes it names.
    models: Option<std::collections::BTreeMap<String, Price>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSessions {
    backend: Option<String>,
    tmux_prefix: Option<String>,
    service_url: Option<String>,
    service_project_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTmuxService {
    url: Option<String>,
    websocket_url: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCompletion {
    dir: Option<String>,
    pattern: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawState {
    path: Option<String>,
    keep_done_days: Option<u32>,
    journal_above_kib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    #[serde(alias = "file")]
    path: Option<String>,
    level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawApi {
    bind: Option<String>,
    token_env: Option<String>,
    cors_origins: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
    max_connections: Option<usize>,
    sendfile: Option<bool>,
    /// Old orchestrator: host and port, joined into `bind`.
    host: Option<String>,
    port: Option<u16>,
}

// ---- finding and reading the file ------------------------------------------------------

/// Where the config file is: `--config`, else `$PLANE_ORCH_CONFIG`, else `./config.yaml`, else
/// the one `plane-orch init` writes (`$XDG_CONFIG_HOME/plane-orch/config.yaml`). When none of
/// the last two exists, `./config.yaml` (whose error then says what to do).
#[must_use]
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let here = PathBuf::from("config.yaml");
    if here.exists() {
        return here;
    }
    user_config_path().filter(|p| p.exists()).unwrap_or(here)
}

/// A base folder of the XDG spec: `$VAR` when it is an absolute path, else `~/<fallback>`.
fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_absolute() => Some(p),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(fallback)),
    }
}

/// `$XDG_CONFIG_HOME/plane-orch` (default `~/.config/plane-orch`): where `init` writes.
#[must_use]
pub fn user_config_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("plane-orch"))
}

/// `$XDG_DATA_HOME/plane-orch` (default `~/.local/share/plane-orch`): where the data of the
/// config `init` writes goes.
#[must_use]
pub fn user_data_dir() -> Option<PathBuf> {
    xdg_dir("XDG_DATA_HOME", ".local/share").map(|d| d.join("plane-orch"))
}

/// The config file `init` writes by default.
#[must_use]
pub fn user_config_path() -> Option<PathBuf> {
    user_config_dir().map(|d| d.join("config.yaml"))
}

/// Reads and validates the config file at `path`.
///
/// # Errors
/// `Error::Config` (exit 2) naming the path, the key and the line where it can.
pub fn load(path: &Path) -> Result<Config> {
    let text = read_bounded(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "run `plane-orch init` to write one of your own, pass --config PATH, set \
                 {CONFIG_ENV}, or run from the folder holding config.yaml"
            )
        } else if e.kind() == std::io::ErrorKind::InvalidInput {
            "point --config at a regular config.yaml".to_string()
        } else {
            "check the file's permissions".to_string()
        };
        Error::Config(format!(
            "cannot read config file {}: {e}; {hint}",
            path.display()
        ))
    })?;
    parse(&text, path)
}

/// The largest config file read: a real one is a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 256 * 1024;
/// The deepest nesting of `[` and `{` accepted. The YAML parser slows down with the square of
/// the depth, so a file of nothing but brackets would hang it; no config needs more than 3.
const MAX_FLOW_DEPTH: usize = 32;

/// Reads the config file only when it is a regular file (a FIFO or a device would block or
/// never end) and at most [`MAX_CONFIG_BYTES`] long.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::{Error as IoError, ErrorKind, Read};
    use std::os::unix::fs::OpenOptionsExt;
    // Opened without blocking, so a FIFO with no writer cannot hang us before it is refused.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(IoError::new(
            ErrorKind::InvalidInput,
            "it is not a regular file (a FIFO, a device or a folder)",
        ));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(IoError::new(
            ErrorKind::InvalidInput,
            format!("it is larger than {} KiB", MAX_CONFIG_BYTES / 1024),
        ));
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(IoError::new(
            ErrorKind::InvalidInput,
            format!("it is larger than {} KiB", MAX_CONFIG_BYTES / 1024),
        ));
    }
    Ok(text)
}

/// How deep `[` and `{` nest in YAML text, quoted strings and comments aside (a bracket in
/// a plain scalar counts: that errs on the safe side).
fn flow_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for line in text.lines() {
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), c) if c == q => {
                    if q == '\'' && chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                (Some(_), _) => {}
                (None, '#') if prev.is_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (None, '[' | '{') => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
            prev = c;
        }
    }
    deepest
}

/// Parses config text as if read from `path` (relative paths resolve against its folder).
///
/// # Errors
/// `Error::Config` naming the key and, where serde_yaml gives it, the line.
pub fn parse(text: &str, path: &Path) -> Result<Config> {
    if flow_depth(text) > MAX_FLOW_DEPTH {
        return Err(Error::Config(format!(
            "invalid config file {}: lists and maps nest deeper than {MAX_FLOW_DEPTH} levels",
            path.display()
        ))
        .into());
    }
    let raw: RawConfig = if text.trim().is_empty() {
        RawConfig::default()
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| Error::Config(format!("invalid config file {}: {e}", path.display())))?
    };
    let abs = absolute(path);
    let dir = abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    validate(raw, &abs, &dir).map_err(|msg| {
        Error::Config(format!("invalid config file {}: {msg}", path.display())).into()
    })
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

fn resolve(dir: &Path, value: &str) -> PathBuf {
    let expanded = match value.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from(value), |h| PathBuf::from(h).join(rest)),
        None => PathBuf::from(value),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        dir.join(expanded)
    }
}

// ---- validation ------------------------------------------------------------------------

/// The characters tmux-session-service keeps in a session id.
fn is_session_name_safe(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn http_url(key: &str, value: &str) -> Result<String, String> {
    let trimmed = value.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_string())
        }
        _ => Err(format!(
            "{key}: {value:?} is not an http:// or https:// URL"
        )),
    }
}

/// The origin of a URL that ends in Plane's API path `/api/v1`, which plane-orch adds itself.
fn strip_api_path(url: &str) -> Option<&str> {
    url.strip_suffix("/api/v1").filter(|o| !o.ends_with(':'))
}

fn positive(key: &str, value: u64) -> Result<u64, String> {
    if value == 0 {
        Err(format!("{key}: must be at least 1"))
    } else {
        Ok(value)
    }
}

fn non_empty_names(key: &str, names: Vec<String>) -> Result<Vec<String>, String> {
    names
        .into_iter()
        .map(|n| {
            let t = n.trim().to_string();
            if t.is_empty() {
                Err(format!("{key}: names must not be empty"))
            } else {
                Ok(t)
            }
        })
        .collect()
}

fn parse_level(value: &str) -> Result<log::LevelFilter, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(log::LevelFilter::Off),
        "error" | "critical" => Ok(log::LevelFilter::Error),
        "warn" | "warning" => Ok(log::LevelFilter::Warn),
        "info" => Ok(log::LevelFilter::Info),
        "debug" => Ok(log::LevelFilter::Debug),
        "trace" => Ok(log::LevelFilter::Trace),
        _ => Err(format!(
            "log.level: {value:?} is not one of off, error, warn, info, debug, trace"
        )),
    }
}

/// Checks a review page template: an http(s) URL whose only `{...}` are `{branch}`, `{id}`
/// and `{base}`.
fn review_url_template(value: &str) -> Result<String, String> {
    let url = http_url("automation.review_url", value)?;
    let mut rest = url.as_str();
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').ok_or_else(|| {
            format!("automation.review_url: {value:?} has a '{{' that is not closed")
        })?;
        let name = &rest[start + 1..start + end];
        if !matches!(name, "branch" | "id" | "base") {
            return Err(format!(
                "automation.review_url: {{{name}}} is not one of {{branch}}, {{id}}, {{base}}"
            ));
        }
        rest = &rest[start + end + 1..];
    }
    Ok(url)
}

#[allow(clippy::too_many_lines)] // one key after another; splitting it would hide the order
fn validate(raw: RawConfig, path: &Path, dir: &Path) -> Result<Config, String> {
    let mut warnings = Vec::new();
    let RawConfig {
        plane: p,
        poll,
        automation: a,
        sessions: s,
        completion: c,
        state: st,
        log: lg,
        api,
        cleanup,
        watch,
        prices,
        notify,
        tmux_session_service,
        triggers,
        websocket_url,
    } = raw;

    // Plane
    let base_url = match (p.base_url, p.api_url) {
        (Some(_), Some(_)) => {
            return Err("plane.base_url and plane.api_url are the same setting: keep one".into())
        }
        (Some(b), None) => {
            let url = http_url("plane.base_url", &b)?;
            match strip_api_path(&url) {
                Some(origin) => {
                    warnings.push(format!(
                        "plane.base_url {url:?} ends in /api/v1, which plane-orch adds itself: \
                         using {origin:?}; set plane.base_url to Plane's origin"
                    ));
                    origin.to_string()
                }
                None => url,
            }
        }
        (None, Some(api)) => {
            let url = http_url("plane.api_url", &api)?;
            strip_api_path(&url).unwrap_or(&url).to_string()
        }
        (None, None) => "https://api.plane.so".to_string(),
    };
    let web_url = match p.web_url {
        Some(w) => http_url("plane.web_url", &w)?,
        None if base_url == "https://api.plane.so" => "https://app.plane.so".to_string(),
        None => base_url.clone(),
    };
    let workspace_slug = p.workspace_slug.unwrap_or_default().trim().to_string();
    if !workspace_slug
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err(format!(
            "plane.workspace_slug: {workspace_slug:?} is not a Plane workspace slug (letters, digits, - and _)"
        ));
    }
    let api_key_env = p.api_key_env.unwrap_or_else(|| "PLANE_API_KEY".into());
    if api_key_env.is_empty()
        || !api_key_env
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return Err(format!(
            "plane.api_key_env: {api_key_env:?} is not an environment variable name"
        ));
    }
    let api_key_in_file = p.api_token.filter(|t| !t.trim().is_empty());
    let project_ids = p.project_ids.unwrap_or_default();
    for id in &project_ids {
        if id.len() != 36 || !id.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-') {
            return Err(format!(
                "plane.project_ids: {id:?} is not a project UUID (Plane's project settings show it)"
            ));
        }
    }
    let project_identifier = match p.project_identifier {
        Some(ident) if !ident.trim().is_empty() => {
            let upper = ident.trim().to_ascii_uppercase();
            crate::ticket::TicketId::parse(&format!("{upper}-1")).map_err(|_| {
                format!("plane.project_identifier: {ident:?} is not a Plane project identifier such as CSLOG")
            })?;
            Some(upper)
        }
        _ => None,
    };
    let trigger_states = non_empty_names(
        "plane.trigger.states",
        p.trigger
            .states
            .unwrap_or_else(|| vec!["Ready for Claude".into()]),
    )?;
    let trigger_labels = non_empty_names(
        "plane.trigger.labels",
        p.trigger.labels.unwrap_or_else(|| vec!["claude".into()]),
    )?;
    let on_approve = p.transitions.on_approve.filter(|s| !s.trim().is_empty());
    let on_update = p.transitions.on_update.filter(|s| !s.trim().is_empty());
    let timeout = Duration::from_secs(positive(
        "plane.timeout_secs",
        p.timeout_secs.unwrap_or(15),
    )?);
    let rate_limit_per_minute = u32::try_from(positive(
        "plane.rate_limit_per_minute",
        u64::from(p.rate_limit_per_minute.unwrap_or(60)),
    )?)
    .unwrap_or(60);
    let webhook_secret_env = p
        .webhook_secret_env
        .unwrap_or_else(|| "PLANE_WEBHOOK_SECRET".into());
    if webhook_secret_env.is_empty()
        || !webhook_secret_env
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return Err(format!(
            "plane.webhook_secret_env: {webhook_secret_env:?} is not an environment variable name"
        ));
    }
    let webhook_path = p
        .webhook_path
        .unwrap_or_else(|| "/webhooks/plane".into())
        .trim()
        .trim_end_matches('/')
        .to_string();
    if !webhook_path.starts_with('/')
        || webhook_path.len() < 2
        || webhook_path.starts_with("/api/")
        || webhook_path.contains(['?', '#', '%', ' '])
    {
        return Err(format!(
            "plane.webhook_path: {webhook_path:?} is not a path such as /webhooks/plane (it must \
             start with / and not be under /api/)"
        ));
    }

    // Poll
    let interval_secs = match (poll.interval_secs, p.poll_interval) {
        (Some(_), Some(_)) => {
            return Err(
                "poll.interval_secs and plane.poll_interval are the same setting: keep one".into(),
            )
        }
        (Some(v), None) => positive("poll.interval_secs", v)?,
        (None, Some(v)) => positive("plane.poll_interval", v)?,
        (None, None) => 30,
    };

    // Sessions
    let (backend_default, service_url_default) = match tmux_session_service {
        Some(t) => {
            if t.websocket_url.is_some() {
                warnings.push(
                    "tmux_session_service.websocket_url is not used by plane-orch: remove it"
                        .into(),
                );
            }
            match t.url {
                Some(url) => (
                    Backend::Service,
                    Some(http_url("tmux_session_service.url", &url)?),
                ),
                None => (Backend::Tmux, None),
            }
        }
        None => (Backend::Tmux, None),
    };
    let backend = match s.backend.as_deref().map(str::trim) {
        None => backend_default,
        Some("tmux") => Backend::Tmux,
        Some("service") => Backend::Service,
        Some(other) => {
            return Err(format!(
                "sessions.backend: {other:?} is not one of tmux, service"
            ))
        }
    };
    let tmux_prefix =
        match (s.tmux_prefix, a.session_prefix) {
            (Some(_), Some(_)) => return Err(
                "sessions.tmux_prefix and automation.session_prefix are the same setting: keep one"
                    .into(),
            ),
            (Some(v), None) | (None, Some(v)) => v,
            (None, None) => "plane-".into(),
        };
    // The longest id is 33 characters and session names stop at 64 (tmux-session-service).
    if !is_session_name_safe(&tmux_prefix) || tmux_prefix.len() > 31 {
        return Err(format!(
            "sessions.tmux_prefix: {tmux_prefix:?} must be at most 31 of A-Z a-z 0-9 - _ \
             (session names must survive tmux-session-service unchanged)"
        ));
    }
    let service_url = match (s.service_url, service_url_default) {
        (Some(u), _) => http_url("sessions.service_url", &u)?,
        (None, Some(u)) => u,
        (None, None) => "http://localhost:5001".into(),
    };
    let service_project_id = match (s.service_project_id, a.project_id) {
        (Some(_), Some(_)) => return Err(
            "sessions.service_project_id and automation.project_id are the same setting: keep one"
                .into(),
        ),
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => "plane-automation".into(),
    };
    if service_project_id.is_empty() || !is_session_name_safe(&service_project_id) {
        return Err(format!(
            "sessions.service_project_id: {service_project_id:?} must be letters, digits, - and _"
        ));
    }

    // Automation
    if a.claude_bin.is_some() {
        warnings.push(
            "automation.claude_bin is not used by plane-orch: set automation.agent_command instead"
                .into(),
        );
    }
    let branch_prefix = a.branch_prefix.unwrap_or_else(|| "claude/".into());
    if branch_prefix.starts_with(['-', '/', '.'])
        || branch_prefix.contains("..")
        || !branch_prefix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(&c))
    {
        return Err(format!(
            "automation.branch_prefix: {branch_prefix:?} is not a safe git branch prefix \
             (letters, digits, - _ . /, not starting with - / or .)"
        ));
    }
    let agent_command = a.agent_command.unwrap_or_else(|| "claude".into());
    if agent_command.trim().is_empty() {
        return Err("automation.agent_command: must not be empty".into());
    }
    let max_active_sessions = a.max_active_sessions.unwrap_or(3);
    if max_active_sessions == 0 {
        return Err("automation.max_active_sessions: must be at least 1".into());
    }
    for f in a.worktree_copy.iter().flatten() {
        if Path::new(f).is_absolute() || f.split('/').any(|part| part == "..") {
            return Err(format!(
                "automation.worktree_copy: {f:?} must be a path inside the repository"
            ));
        }
    }

    let remote = a
        .remote
        .unwrap_or_else(|| "origin".into())
        .trim()
        .to_string();
    if remote.is_empty()
        || remote.starts_with(['-', '.', '/'])
        || remote.contains("..")
        || !remote
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./".contains(&c))
    {
        return Err(format!(
            "automation.remote: {remote:?} is not a git remote name (letters, digits, - _ . /)"
        ));
    }
    let review_url = match a.review_url.filter(|u| !u.trim().is_empty()) {
        Some(u) => Some(review_url_template(&u)?),
        None => None,
    };
    let budget_usd = match a.budget_usd {
        Some(b) if !(b.is_finite() && b > 0.0) => {
            return Err(format!(
                "automation.budget_usd: {b} must be a positive amount of USD (leave it out for no limit)"
            ))
        }
        other => other,
    };

    // Watch
    let minutes = |key: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(format!("{key}: {v} must be a positive number of minutes"))
        }
    };
    let watch = WatchConfig {
        start_seconds: positive("watch.start_seconds", watch.start_seconds.unwrap_or(60))?,
        stall_minutes: minutes("watch.stall_minutes", watch.stall_minutes.unwrap_or(20.0))?,
        max_session_minutes: watch
            .max_session_minutes
            .map(|v| minutes("watch.max_session_minutes", v))
            .transpose()?,
        stop_over_time: watch.stop_over_time.unwrap_or(false),
    };

    // Prices
    let mut models = default_prices();
    for (prefix, price) in prices.models.unwrap_or_default() {
        let all = [
            price.input,
            price.output,
            price.cache_write,
            price.cache_read,
        ];
        if prefix.trim().is_empty() || all.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(format!(
                "prices.models.{prefix}: prices are USD per million tokens, 0 or more, for a model id prefix"
            ));
        }
        models.retain(|(p, _)| p != &prefix);
        models.push((prefix, price));
    }
    let prices = PricesConfig {
        date: prices.date.unwrap_or_else(|| DEFAULT_PRICES_DATE.into()),
        models,
    };

    // Completion
    let pattern = c
        .pattern
        .unwrap_or_else(|| "completion-{ticket_id}.txt".into());
    if pattern.matches("{ticket_id}").count() != 1 || pattern.contains('/') {
        return Err(format!(
            "completion.pattern: {pattern:?} must be a file name holding {{ticket_id}} once"
        ));
    }

    // Log
    let level = parse_level(lg.level.as_deref().unwrap_or("info"))?;

    // API
    let bind_text = match (api.bind, api.host, api.port) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err("api.bind and api.host/api.port are the same setting: keep one".into())
        }
        (Some(b), None, None) => b,
        (None, host, port) => {
            let host = host.unwrap_or_else(|| "127.0.0.1".into());
            let port = port.unwrap_or(5002);
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }
    };
    let bind: SocketAddr = bind_text
        .parse()
        .map_err(|_| format!("api.bind: {bind_text:?} is not an address such as 127.0.0.1:5002"))?;
    let token_env = api
        .token_env
        .unwrap_or_else(|| "PLANE_ORCH_API_TOKEN".into());
    let cors_origins = api.cors_origins.unwrap_or_else(|| {
        vec![
            "http://localhost:5173".into(),
            "http://127.0.0.1:5173".into(),
        ]
    });
    for origin in &cors_origins {
        http_url("api.cors_origins", origin)?;
    }
    let cors_origins = cors_origins
        .into_iter()
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .collect();
    let mut allowed_hosts = Vec::new();
    for host in api.allowed_hosts.unwrap_or_default() {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty()
            || host.contains(['/', ' ', '@'])
            || (host.contains(':') && !host.starts_with('['))
        {
            return Err(format!(
                "api.allowed_hosts: {host:?} is not a host name such as dashboard.example.com \
                 (no scheme, no port; IPv6 in brackets)"
            ));
        }
        allowed_hosts.push(host);
    }
    let max_connections = api.max_connections.unwrap_or(4096);
    if max_connections == 0 {
        return Err("api.max_connections: must be at least 1".into());
    }

    let mut notify = crate::notify::config::validate(notify, http_url)?;
    notify
        .secret_vars
        .extend([api_key_env.clone(), token_env.clone()]);

    if triggers.is_some() {
        warnings.push(
            "triggers is not used by plane-orch: set plane.trigger.states and plane.trigger.labels"
                .into(),
        );
    }
    if websocket_url.is_some() {
        warnings.push("websocket_url is not used by plane-orch: remove it".into());
    }
    if api_key_in_file.is_some() {
        warnings.push(format!(
            "plane.api_token keeps the Plane key in the config file: move it to the {api_key_env} environment variable"
        ));
    }

    let state_path = resolve(
        dir,
        st.path.as_deref().unwrap_or("data/pending-tickets.json"),
    );
    Ok(Config {
        path: path.to_path_buf(),
        plane: PlaneConfig {
            base_url,
            web_url,
            workspace_slug,
            api_key_env,
            api_key_in_file,
            project_ids,
            project_identifier,
            trigger_states,
            trigger_labels,
            on_approve,
            on_update,
            timeout,
            rate_limit_per_minute,
            rate_file: {
                let mut name = state_path.file_name().unwrap_or_default().to_os_string();
                name.push(".plane-rate");
                state_path.with_file_name(name)
            },
            webhook_secret_env,
            webhook_path,
        },
        poll: PollConfig {
            interval: Duration::from_secs(interval_secs),
        },
        automation: AutomationConfig {
            repo_path: resolve(dir, a.repo_path.as_deref().unwrap_or(".")),
            worktrees: a.worktrees.unwrap_or(true),
            worktree_dir: resolve(dir, a.worktree_dir.as_deref().unwrap_or("data/worktrees")),
            branch_prefix,
            worktree_copy: a.worktree_copy.unwrap_or_else(|| vec![".env".into()]),
            worker: resolve(
                dir,
                a.worker
                    .as_deref()
                    .unwrap_or("scripts/claude-ticket-worker"),
            ),
            agent_command,
            agent_args: a
                .agent_args
                .unwrap_or_else(|| vec!["--permission-mode".into(), "acceptEdits".into()]),
            trust_worktrees: a.trust_worktrees.unwrap_or(true),
            claude_dir: resolve(dir, a.claude_dir.as_deref().unwrap_or("data/claude")),
            max_active_sessions,
            push: a.push.unwrap_or(false),
            remote,
            review_url,
            budget_usd,
        },
        sessions: SessionsConfig {
            backend,
            tmux_prefix,
            service_url,
            service_project_id,
        },
        completion: CompletionConfig {
            dir: resolve(dir, c.dir.as_deref().unwrap_or("data/completions")),
            pattern,
        },
        state: StateConfig {
            path: state_path,
            keep_done_days: st.keep_done_days.unwrap_or(30),
            journal_above_kib: st
                .journal_above_kib
                .unwrap_or(crate::store::JOURNAL_ABOVE_KIB),
        },
        log: LogConfig {
            path: resolve(dir, lg.path.as_deref().unwrap_or("data/orchestrator.log")),
            level,
        },
        api: ApiConfig {
            bind,
            token_env,
            cors_origins,
            allowed_hosts,
            max_connections,
            sendfile: api.sendfile.unwrap_or(true),
        },
        cleanup: CleanupConfig {
            auto: cleanup.auto.unwrap_or(false),
            older_than_days: cleanup.older_than_days.unwrap_or(0),
            bundle_dir: cleanup
                .bundle_dir
                .filter(|d| !d.trim().is_empty())
                .map(|d| resolve(dir, &d)),
        },
        watch,
        prices,
        notify,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Config> {
        parse(text, Path::new("/etc/plane-orch/config.yaml"))
    }

    #[test]
    fn nesting_is_counted_outside_quotes_and_comments() {
        assert_eq!(flow_depth("a: [b, {c: [d]}]\n"), 3);
        assert_eq!(flow_depth("a: \"[[[[\" # [[[[\nb: '[[''[['\n"), 0);
        assert_eq!(flow_depth("url: http://x/#[frag]\n"), 1);
        let bomb = format!("a: {}\n", "[".repeat(40));
        let err = parse_str(&bomb).unwrap_err().to_string();
        assert!(err.contains("nest deeper than 32"), "{err}");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse_str("").unwrap();
        assert_eq!(c.plane.base_url, "https://api.plane.so");
        assert_eq!(c.sessions.tmux_prefix, "plane-");
        assert_eq!(
            c.state.path,
            Path::new("/etc/plane-orch/data/pending-tickets.json")
        );
        assert_eq!(c.api.bind.to_string(), "127.0.0.1:5002");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse_str("plane:\n  workspace_slug: a\n  colour: red\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("colour"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = parse_str("plane:\n  timeout_secs: soon\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("plane.timeout_secs"), "{msg}");
    }

    #[test]
    fn python_orchestrator_keys_map_onto_ours() {
        let c = parse_str(
            "plane:\n  api_url: https://plane.example.com/api/v1\n  api_token: secret\n  \
             workspace_slug: ws\n  poll_interval: 60\n  project_identifier: cslog\n\
             tmux_session_service:\n  url: http://localhost:5001\n  websocket_url: ws://localhost:5001\n\
             automation:\n  repo_path: /srv/repo\n  claude_bin: claude\n  session_prefix: claude-\n  project_id: plane-automation\n\
             triggers:\n  new_tickets: true\n\
             api:\n  host: 127.0.0.1\n  port: 6002\n\
             logging:\n  level: WARNING\n  file: logs/o.log\n",
        )
        .unwrap();
        assert_eq!(c.plane.base_url, "https://plane.example.com");
        assert_eq!(c.plane.api_key_in_file.as_deref(), Some("secret"));
        assert_eq!(c.poll.interval, Duration::from_secs(60));
        assert_eq!(c.sessions.backend, Backend::Service);
        assert_eq!(c.sessions.tmux_prefix, "claude-");
        assert_eq!(c.api.bind.to_string(), "127.0.0.1:6002");
        assert_eq!(c.log.level, log::LevelFilter::Warn);
        assert_eq!(c.log.path, Path::new("/etc/plane-orch/logs/o.log"));
        assert_eq!(c.plane.project_identifier.as_deref(), Some("CSLOG"));
        assert!(c.warnings.iter().any(|w| w.contains("claude_bin")));
        assert!(c.warnings.iter().any(|w| w.contains("triggers")));
    }

    #[test]
    fn watch_budget_and_prices() {
        let c = parse_str("").unwrap();
        assert_eq!(c.watch.start_seconds, 60);
        assert!(c.automation.budget_usd.is_none());
        let opus = c.prices.of("claude-opus-4-8").unwrap();
        assert!((opus.input - 5.0).abs() < 1e-9);
        assert!((c.prices.of("claude-opus-4-1-20250805").unwrap().input - 15.0).abs() < 1e-9);
        assert!(c.prices.of("gpt-5").is_none());
        let c = parse_str(
            "automation:\n  budget_usd: 5\nwatch:\n  stall_minutes: 0.5\nprices:\n  date: '2027-01-01'\n  models:\n    gpt-5: {input: 1, output: 2, cache_write: 0, cache_read: 0}\n",
        )
        .unwrap();
        assert_eq!(c.automation.budget_usd, Some(5.0));
        assert!((c.watch.stall_minutes - 0.5).abs() < 1e-9);
        assert!(c.prices.of("gpt-5-mini").is_some());
        assert!(parse_str("automation:\n  budget_usd: -1\n").is_err());
        assert!(parse_str("watch:\n  start_seconds: 0\n").is_err());
    }

    #[test]
    fn unsafe_prefixes_are_refused() {
        assert!(parse_str("sessions:\n  tmux_prefix: 'a b'\n").is_err());
        assert!(parse_str("automation:\n  branch_prefix: '-x'\n").is_err());
        assert!(parse_str("completion:\n  pattern: done.txt\n").is_err());
    }
}
