//! One `ureq` agent talking to Plane's REST API v1: the key header, timeouts, the shared
//! rate budget ([`super::budget`]), retries with backoff for 429 and 5xx, cursor pagination,
//! the `work-items/` → `issues/` fall-back for older servers, and errors that say what to fix.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::budget::Budget;
use super::types::{Comment, ErrorBody, Label, Page, Project, State, WorkItem};
use crate::config::PlaneConfig;
use crate::error::Error;
use crate::ticket::TicketId;

/// How many times one request is sent at most (the first try included).
pub const MAX_ATTEMPTS: u32 = 4;
/// Overrides the first backoff delay after a 5xx or a network error, in milliseconds.
pub const RETRY_BASE_ENV: &str = "PLANE_ORCH_RETRY_BASE_MS";
const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(500);
/// The longest single wait: a `Retry-After` or a rate-limit reset further away is cut to it.
const MAX_WAIT: Duration = Duration::from_secs(120);
/// The most bytes of an answer read; a work-item page with 100 long descriptions fits.
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// Plane's own upper bound on pages is far lower; this only stops a server that never ends.
const MAX_PAGES: usize = 10_000;
/// Every list is read with this page size: valid on Plane Cloud and self-hosted alike.
pub const PER_PAGE: u32 = 100;
/// The work-item fields plane-orch reads (`fields=` keeps pages small).
const ITEM_FIELDS: &str =
    "id,name,sequence_id,description_html,priority,state,labels,project,created_at,updated_at";

/// The HTTP methods plane-orch sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Patch,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }
}

/// A status and body Plane answered with.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn error_body(&self) -> ErrorBody {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    /// Plane's message, whatever shape the body has, cut to a readable length.
    fn message(&self) -> String {
        let e = self.error_body();
        let text = e
            .detail
            .or(e.error)
            .or(e.error_message)
            .unwrap_or_else(|| self.body.trim().to_string());
        let text = if text.is_empty() {
            "(empty answer)".to_string()
        } else {
            text
        };
        if text.chars().count() > 300 {
            let mut cut: String = text.chars().take(300).collect();
            cut.push('…');
            cut
        } else {
            text
        }
    }

    /// Plane's 404 for an object it does not have (not an unknown route).
    fn is_missing_object(&self) -> bool {
        self.status == 404 && !self.is_unknown_route()
    }

    /// The answer of a Plane older than v1.1.0 to a `work-items/` path.
    fn is_unknown_route(&self) -> bool {
        self.status == 404 && {
            let e = self.error_body();
            [e.error, e.detail]
                .iter()
                .flatten()
                .any(|m| m.trim() == "Page not found.")
        }
    }
}

/// How patient a client is, per request. Polls and the command line wait out Plane's
/// hiccups ([`Patience::of`]); a request from the HTTP API, where someone waits for the
/// answer, is sent once and given a short deadline ([`Patience::interactive`]); `doctor` asks
/// once and briefly, so a broken setup is reported at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// For one send, connecting included.
    pub timeout: Duration,
    /// Sends of one request at most, the first included.
    pub attempts: u32,
    /// The longest single wait: between sends, or for Plane's rate limit.
    pub max_wait: Duration,
    /// The longest one request may take in all, waits for the rate budget and retries
    /// included; `None`: as long as its attempts take.
    pub deadline: Option<Duration>,
}

/// What an HTTP API request gives Plane at most, waits included.
pub const INTERACTIVE_DEADLINE: Duration = Duration::from_secs(10);

impl Patience {
    /// What polls and the command line use: `plane.timeout_secs`, [`MAX_ATTEMPTS`] sends,
    /// waits of up to two minutes.
    #[must_use]
    pub fn of(cfg: &PlaneConfig) -> Patience {
        Patience {
            timeout: cfg.timeout,
            attempts: MAX_ATTEMPTS,
            max_wait: MAX_WAIT,
            deadline: None,
        }
    }

    /// What a request from the HTTP API uses: one send within [`INTERACTIVE_DEADLINE`]
    /// (`plane.timeout_secs` if shorter), no retries; a spent rate budget fails at once
    /// rather than holding the caller.
    #[must_use]
    pub fn interactive(cfg: &PlaneConfig) -> Patience {
        let limit = cfg.timeout.min(INTERACTIVE_DEADLINE);
        Patience {
            timeout: limit,
            attempts: 1,
            max_wait: Duration::from_secs(1),
            deadline: Some(limit),
        }
    }
}

/// What `users/me/` says about the connection and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The key works; the name of its user.
    Granted(String),
    /// No answer at all (refused, unknown host, TLS, timeout): the network error.
    Unreachable(String),
    /// Plane answered 401 or 403: the key is wrong, expired or deactivated.
    KeyRefused { status: u16, message: String },
    /// Any other failure, saying what to check.
    Failed(String),
}

/// One answer with the rate-limit headers read from it.
struct Sent {
    reply: Reply,
    retry_after: Option<Duration>,
    remaining: Option<u64>,
}

/// Why a request got no usable answer, its retries spent.
struct Failure {
    /// What went wrong and what to do.
    message: String,
    /// The network error, when no answer came at all.
    unreachable: Option<String>,
}

/// A client for one Plane workspace. Holds the key; its `Debug` does not show it.
pub struct Client {
    agent: ureq::Agent,
    /// `{base_url}/api/v1`.
    api: String,
    slug: String,
    key: String,
    key_env: String,
    retry_base: Duration,
    patience: Patience,
    /// Set once the server turned out to have no `work-items/` (Plane before v1.1.0).
    legacy: AtomicBool,
    /// Shared with every plane-orch process using the key.
    budget: Budget,
    /// Whether `plane.base_url` has a path after the origin (a source of unknown routes).
    base_has_path: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.api)
            .field("slug", &self.slug)
            .field("key_env", &self.key_env)
            .finish_non_exhaustive()
    }
}

/// What posting a comment did.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The comment's id (the existing one when Plane had it already).
    pub id: Option<String>,
    /// Plane answered 409: a comment with this external id exists already.
    pub already: bool,
}

/// Why Plane cannot be used, or `None` when it is configured: a workspace, a key and, for
/// polling, at least one project.
#[must_use]
pub fn not_configured(cfg: &PlaneConfig, need_projects: bool) -> Option<String> {
    if cfg.workspace_slug.is_empty() {
        Some("plane.workspace_slug is empty".into())
    } else if need_projects && cfg.project_ids.is_empty() {
        Some("plane.project_ids is empty".into())
    } else if cfg.api_key().is_none() {
        Some(format!(
            "the environment variable {} holding the Plane API key is not set",
            cfg.api_key_env
        ))
    } else {
        None
    }
}

impl Client {
    /// A client for the configured workspace.
    ///
    /// # Errors
    /// `Error::Config` when the workspace or the key is missing.
    pub fn new(cfg: &PlaneConfig) -> Result<Client> {
        Client::with_patience(cfg, Patience::of(cfg))
    }

    /// A client for the configured workspace that waits and retries only as `patience` says.
    ///
    /// # Errors
    /// `Error::Config` when the workspace or the key is missing.
    pub fn with_patience(cfg: &PlaneConfig, patience: Patience) -> Result<Client> {
        if let Some(why) = not_configured(cfg, false) {
            return Err(Error::Config(format!(
                "Plane is not configured: {why}; set plane.workspace_slug in the config file \
                 and put your Plane API key in {}",
                cfg.api_key_env
            ))
            .into());
        }
        let key = cfg.api_key().unwrap_or_default();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(patience.timeout))
            // A redirect would turn a PATCH into a GET and lose it: report it instead.
            .max_redirects(0)
            .user_agent(concat!("plane-orch/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let retry_base = std::env::var(RETRY_BASE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_RETRY_BASE, Duration::from_millis);
        let base_has_path = cfg
            .base_url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/').contains('/'));
        Ok(Client {
            agent,
            budget: Budget::new(cfg),
            base_has_path,
            api: format!("{}/api/v1", cfg.base_url),
            slug: cfg.workspace_slug.clone(),
            key,
            key_env: cfg.api_key_env.clone(),
            retry_base,
            patience: Patience {
                attempts: patience.attempts.max(1),
                ..patience
            },
            legacy: AtomicBool::new(false),
        })
    }

    /// The workspace slug this client works in.
    #[must_use]
    pub fn slug(&self) -> &str {
        &self.slug
    }

    fn project_path(&self, project: &str) -> String {
        format!("workspaces/{}/projects/{project}/", self.slug)
    }

    /// `GET users/me/`: the cheapest check that the key works.
    ///
    /// # Errors
    /// `Error::Plane` saying what is wrong with the key or the connection.
    pub fn me(&self) -> Result<Value> {
        self.get_json("users/me/", "your user")
    }

    /// `GET users/me/`, told apart: no answer, the key refused, another failure, or the key's
    /// user. What `doctor` reports.
    #[must_use]
    pub fn access(&self) -> Access {
        let path = "users/me/";
        let reply = match self.send_raw(Method::Get, path, None) {
            Ok(r) => r,
            Err(Failure {
                unreachable: Some(e),
                ..
            }) => return Access::Unreachable(e),
            Err(f) => return Access::Failed(f.message),
        };
        if matches!(reply.status, 401 | 403) {
            return Access::KeyRefused {
                status: reply.status,
                message: reply.message(),
            };
        }
        match self.parse::<Value>(reply, Method::Get, path, "your user") {
            Ok(me) => Access::Granted(
                ["display_name", "email", "id"]
                    .iter()
                    .find_map(|k| me[k].as_str().filter(|v| !v.is_empty()))
                    .unwrap_or("an unnamed user")
                    .to_string(),
            ),
            Err(e) => Access::Failed(format!("{e:#}")),
        }
    }

    /// One project (its identifier, for ticket ids).
    ///
    /// # Errors
    /// `Error::Plane`: unknown project, no access, Plane unreachable.
    pub fn project(&self, project: &str) -> Result<Project> {
        self.get_json(&self.project_path(project), &format!("project {project}"))
    }

    /// Every state of a project.
    ///
    /// # Errors
    /// `Error::Plane`.
    pub fn states(&self, project: &str) -> Result<Vec<State>> {
        self.project_list(project, "states")
    }

    /// Every label of a project.
    ///
    /// # Errors
    /// `Error::Plane`.
    pub fn labels(&self, project: &str) -> Result<Vec<Label>> {
        self.project_list(project, "labels")
    }

    /// Every page of a project's list `kind` (`states`, `labels`).
    fn project_list<T: DeserializeOwned>(&self, project: &str, kind: &str) -> Result<Vec<T>> {
        let path = format!("{}{kind}/", self.project_path(project));
        self.list_all(
            &|_| path.clone(),
            false,
            "",
            &format!("project {project}"),
            &|_, _| {},
        )
    }

    /// Every work item of a project, every page read.
    ///
    /// # Errors
    /// `Error::Plane`.
    pub fn work_items(&self, project: &str) -> Result<Vec<WorkItem>> {
        self.work_items_paged(project, &|_, _| {})
    }

    /// [`Client::work_items`], calling `on_page(pages, items)` after each page read.
    ///
    /// # Errors
    /// `Error::Plane`.
    pub fn work_items_paged(
        &self,
        project: &str,
        on_page: &dyn Fn(usize, usize),
    ) -> Result<Vec<WorkItem>> {
        let base = self.project_path(project);
        self.list_all(
            &|kind| format!("{base}{kind}/"),
            true,
            &format!("&fields={ITEM_FIELDS}"),
            &format!("project {project}"),
            on_page,
        )
    }

    /// A work item by its readable id (`CSLOG-123`); `None` when Plane has no such item.
    ///
    /// # Errors
    /// `Error::Plane` for anything but "no such item".
    pub fn work_item_by_identifier(&self, id: &TicketId) -> Result<Option<WorkItem>> {
        let slug = &self.slug;
        let reply = self.items_request(
            Method::Get,
            &|kind| format!("workspaces/{slug}/{kind}/{id}/"),
            None,
        )?;
        if reply.status == 404 {
            return Ok(None);
        }
        let shown = format!("workspaces/{slug}/work-items/{id}/");
        self.parse(reply, Method::Get, &shown, &format!("work item {id}"))
    }

    /// Posts a comment on a work item. A 409 (the same `external_id` was posted before) is
    /// success: `already` says so.
    ///
    /// # Errors
    /// `Error::Plane`.
    pub fn post_comment(
        &self,
        project: &str,
        issue: &str,
        comment_html: &str,
        external_id: &str,
    ) -> Result<Posted> {
        let base = self.project_path(project);
        let body = serde_json::json!({
            "comment_html": comment_html,
            "access": "INTERNAL",
            "external_source": "plane-orch",
            "external_id": external_id,
        });
        let reply = self.items_request(
            Method::Post,
            &|kind| format!("{base}{kind}/{issue}/comments/"),
            Some(&body),
        )?;
        if reply.status == 409 {
            return Ok(Posted {
                id: reply.error_body().id,
                already: true,
            });
        }
        let path = format!("{base}work-items/{issue}/comments/");
        if reply.is_missing_object() {
            return Err(self.deleted(Method::Post, &path, issue));
        }
        let comment: Comment =
            self.parse(reply, Method::Post, &path, &format!("work item {issue}"))?;
        Ok(Posted {
            id: Some(comment.id),
            already: false,
        })
    }

    /// Moves a work item to a state.
    ///
    /// # Errors
    /// `Error::Plane`.
    pub fn set_state(&self, project: &str, issue: &str, state: &str) -> Result<()> {
        let base = self.project_path(project);
        let body = serde_json::json!({ "state": state });
        let reply = self.items_request(
            Method::Patch,
            &|kind| format!("{base}{kind}/{issue}/"),
            Some(&body),
        )?;
        let path = format!("{base}work-items/{issue}/");
        if reply.is_missing_object() {
            return Err(self.deleted(Method::Patch, &path, issue));
        }
        let _: Value = self.parse(reply, Method::Patch, &path, &format!("work item {issue}"))?;
        Ok(())
    }

    /// One work item of a project by its UUID; `None` when Plane has no such item (deleted).
    ///
    /// # Errors
    /// `Error::Plane` for anything but "no such item".
    pub fn work_item(&self, project: &str, issue: &str) -> Result<Option<WorkItem>> {
        let base = self.project_path(project);
        let reply = self.items_request(
            Method::Get,
            &|kind| format!("{base}{kind}/{issue}/?fields={ITEM_FIELDS}"),
            None,
        )?;
        if reply.is_missing_object() {
            return Ok(None);
        }
        let shown = format!("{base}work-items/{issue}/");
        self.parse(reply, Method::Get, &shown, &format!("work item {issue}"))
            .map(Some)
    }

    /// The same client, reading the shared budget but never writing it (for checks that must
    /// leave no file behind).
    #[must_use]
    pub fn budget_read_only(mut self) -> Client {
        self.budget = self.budget.read_only();
        self
    }

    /// The same client, writing the shared budget only when its ledger exists already (a
    /// dry run creates no file).
    #[must_use]
    pub fn budget_never_creating(mut self) -> Client {
        self.budget = self.budget.never_creating();
        self
    }

    /// The shared rate budget this client draws on.
    #[must_use]
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The error for a 404 on a work item plane-orch knew: it was deleted in Plane.
    fn deleted(&self, method: Method, path: &str, issue: &str) -> anyhow::Error {
        Error::ItemDeleted(format!(
            "the work item was deleted in Plane (404 to {} {} for work item {issue})",
            method.as_str(),
            self.url(path)
        ))
        .into()
    }

    // ---- plumbing --------------------------------------------------------------------

    fn get_json<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T> {
        let reply = self.send(Method::Get, path, None)?;
        self.parse(reply, Method::Get, path, what)
    }

    /// Turns an answer into `T`, or into an error saying what is wrong and what to do.
    fn parse<T: DeserializeOwned>(
        &self,
        reply: Reply,
        method: Method,
        path: &str,
        what: &str,
    ) -> Result<T> {
        if (200..300).contains(&reply.status) {
            return serde_json::from_str(&reply.body).map_err(|e| {
                Error::Plane(format!(
                    "Plane's answer to {} {} is not what plane-orch understands: {e}; \
                     is plane.base_url a Plane server?",
                    method.as_str(),
                    self.url(path)
                ))
                .into()
            });
        }
        Err(self.status_error(&reply, method, path, what))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.api)
    }

    fn status_error(&self, reply: &Reply, method: Method, path: &str, what: &str) -> anyhow::Error {
        let (m, url, msg, env, slug) = (
            method.as_str(),
            self.url(path),
            reply.message(),
            &self.key_env,
            &self.slug,
        );
        let text = match reply.status {
            401 => format!(
                "Plane answered 401 to {m} {url} ({msg}): no API key reached it; \
                 put your Plane API key (Profile settings > Personal Access Tokens) in the {env} environment variable"
            ),
            403 if msg.contains("token") || msg.contains("API key") => format!(
                "Plane refused the API key in {env} (403 to {m} {url}: {msg}): it is wrong, expired or \
                 deactivated; put a valid key in {env}"
            ),
            403 => format!(
                "Plane answered 403 to {m} {url} ({msg}): the user of the key in {env} has no access to \
                 workspace {slug:?} or to {what}; check plane.workspace_slug and plane.project_ids, \
                 and that the user is a member of the project"
            ),
            404 if reply.is_unknown_route() => match doubled_path(&url) {
                Some(twice) => format!(
                    "Plane does not know the path {m} {url} (404: {msg}): {twice:?} is in it \
                     twice, so plane.base_url already holds part of the API path; set \
                     plane.base_url to Plane's origin, such as https://plane.example.com"
                ),
                None if self.base_has_path => format!(
                    "Plane does not know the path {m} {url} (404: {msg}): plane.base_url has a \
                     path after the host; set it to Plane's origin, such as \
                     https://plane.example.com (plane-orch adds /api/v1 itself)"
                ),
                None => format!(
                    "Plane does not know the path {m} {url} (404: {msg}): is plane.base_url \
                     Plane's API origin (such as https://api.plane.so)?"
                ),
            },
            404 => format!(
                "Plane has no {what} (404 to {m} {url}: {msg}); check plane.workspace_slug and \
                 plane.project_ids, and that the key's user is a member of the project"
            ),
            s @ 300..=399 => format!(
                "Plane answered {s} (a redirect) to {m} {url}: check plane.base_url, which must be \
                 Plane's origin such as https://api.plane.so"
            ),
            s => format!("Plane answered {s} to {m} {url}: {msg}"),
        };
        Error::Plane(text).into()
    }

    /// Sends a request to a work-item path, falling back from `work-items/` to `issues/` when
    /// the server does not know the former (Plane before v1.1.0); remembers the fall-back.
    fn items_request(
        &self,
        method: Method,
        path: &dyn Fn(&str) -> String,
        body: Option<&Value>,
    ) -> Result<Reply> {
        if self.legacy.load(Ordering::Relaxed) {
            return self.send(method, &path("issues"), body);
        }
        let reply = self.send(method, &path("work-items"), body)?;
        if reply.is_unknown_route() {
            log::info!(
                "Plane has no work-items/ endpoint (a version before v1.1.0): using issues/"
            );
            self.legacy.store(true, Ordering::Relaxed);
            return self.send(method, &path("issues"), body);
        }
        Ok(reply)
    }

    /// Reads every page of a list: `per_page` on every page, the cursor Plane gives, until
    /// `next_page_results` is false.
    fn list_all<T: DeserializeOwned>(
        &self,
        path: &dyn Fn(&str) -> String,
        items: bool,
        extra_query: &str,
        what: &str,
        on_page: &dyn Fn(usize, usize),
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for page_no in 1..=MAX_PAGES {
            let query = match &cursor {
                None => format!("?per_page={PER_PAGE}{extra_query}"),
                Some(c) => format!("?per_page={PER_PAGE}&cursor={c}{extra_query}"),
            };
            let reply = if items {
                self.items_request(Method::Get, &|kind| path(kind) + &query, None)?
            } else {
                self.send(Method::Get, &(path("") + &query), None)?
            };
            let shown = path(if self.legacy.load(Ordering::Relaxed) {
                "issues"
            } else {
                "work-items"
            }) + &query;
            let page: Page<T> = self.parse(reply, Method::Get, &shown, what)?;
            out.extend(page.results);
            on_page(page_no, out.len());
            if !page.next_page_results {
                return Ok(out);
            }
            match page.next_cursor {
                Some(c) if is_cursor(&c) => cursor = Some(c),
                other => {
                    return Err(Error::Plane(format!(
                        "Plane said more pages follow {} but gave no usable cursor ({other:?})",
                        self.url(&shown)
                    ))
                    .into())
                }
            }
        }
        Err(Error::Plane(format!(
            "Plane kept sending pages of {what} past {MAX_PAGES}: giving up"
        ))
        .into())
    }

    /// [`Client::send_raw`], its failure as an `Error::Plane`.
    fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        self.send_raw(method, path, body)
            .map_err(|f| Error::Plane(f.message).into())
    }

    /// Sends one request with the retries: each send takes a place in the shared rate
    /// budget first; 429 waits `Retry-After`, 5xx and network errors back off exponentially,
    /// at most `patience.attempts` sends within `patience.deadline`. Any other status is
    /// returned.
    fn send_raw(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply, Failure> {
        let max_wait = self.patience.max_wait;
        let deadline = self.patience.deadline.map(|d| Instant::now() + d);
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let slot = self.budget.take(deadline).map_err(|spent| Failure {
                message: format!(
                    "Plane's rate budget for this key ({} requests a minute, plane.rate_limit_per_minute) \
                     is spent for {:.0} s more: {} {url} was not sent; try again then",
                    self.budget.usage().limit_per_minute,
                    spent.wait.as_secs_f64().ceil(),
                    method.as_str(),
                ),
                unreachable: None,
            })?;
            log::debug!("{} {url}", method.as_str());
            let result = self.send_once(method, &url, body);
            match &result {
                Ok(sent) => self.budget.settle(
                    slot,
                    sent.remaining,
                    if sent.reply.status == 429 {
                        Some(sent.retry_after.unwrap_or(Duration::from_secs(60)))
                    } else {
                        None
                    },
                ),
                Err(_) => self.budget.settle(slot, None, None),
            }
            let mut unreachable = None;
            let (wait, failure) = match result {
                Ok(sent) if sent.reply.status == 429 => {
                    let wait = sent
                        .retry_after
                        .unwrap_or(Duration::from_secs(60))
                        .min(max_wait);
                    let failure = format!(
                        "Plane rate-limited {} {url} (429) {}: the key is used by more than \
                         plane-orch, or Plane allows fewer requests than \
                         plane.rate_limit_per_minute; lower it, or try again in a minute",
                        method.as_str(),
                        times(attempt)
                    );
                    (wait, failure)
                }
                Ok(sent) if sent.reply.status >= 500 => (
                    sent.retry_after
                        .map_or_else(|| self.backoff(attempt), |w| w.min(max_wait)),
                    format!(
                        "Plane answered {} to {} {url} {}: {}; Plane is failing, try again later",
                        sent.reply.status,
                        method.as_str(),
                        times(attempt),
                        sent.reply.message()
                    ),
                ),
                Ok(sent) => return Ok(sent.reply),
                Err(e) => {
                    unreachable = Some(e.to_string());
                    (
                        self.backoff(attempt),
                        format!(
                            "cannot reach Plane at {url} ({e}), {}; check plane.base_url, \
                         the network and plane.timeout_secs",
                            tries(attempt)
                        ),
                    )
                }
            };
            let past_deadline = deadline.is_some_and(|d| Instant::now() + wait >= d);
            if attempt >= self.patience.attempts || past_deadline {
                return Err(Failure {
                    message: failure,
                    unreachable,
                });
            }
            log::info!(
                "{}; retrying in {} ms",
                failure.split(';').next().unwrap_or_default(),
                wait.as_millis()
            );
            std::thread::sleep(wait);
        }
    }

    /// One send: the reply, its `Retry-After` and its `X-RateLimit-Remaining`.
    fn send_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Sent, ureq::Error> {
        let response = match (method, body) {
            (Method::Get, _) => self
                .agent
                .get(url)
                .header("X-API-Key", &self.key)
                .header("Accept", "application/json")
                .call(),
            (Method::Post, b) => self
                .agent
                .post(url)
                .header("X-API-Key", &self.key)
                .header("Accept", "application/json")
                .send_json(b.cloned().unwrap_or(Value::Null)),
            (Method::Patch, b) => self
                .agent
                .patch(url)
                .header("X-API-Key", &self.key)
                .header("Accept", "application/json")
                .send_json(b.cloned().unwrap_or(Value::Null)),
        };
        let mut response = response?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let remaining = header("x-ratelimit-remaining").and_then(|v| v.parse::<u64>().ok());
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()?;
        Ok(Sent {
            reply: Reply { status, body },
            retry_after,
            remaining,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(6);
        (self.retry_base * factor)
            .min(Duration::from_secs(8))
            .min(self.patience.max_wait)
    }
}

fn times(n: u32) -> String {
    if n == 1 {
        "once".into()
    } else {
        format!("{n} times")
    }
}

fn tries(n: u32) -> String {
    if n == 1 {
        "tried once".into()
    } else {
        format!("after {n} tries")
    }
}

/// A run of path segments that comes twice in a row in `url` (`api/v1` in
/// `/api/v1/api/v1/users/me/`): a base URL that already held part of the path.
fn doubled_path(url: &str) -> Option<String> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let segs: Vec<&str> = path.split('/').skip(1).filter(|s| !s.is_empty()).collect();
    for len in (1..=segs.len() / 2).rev() {
        for start in 0..=segs.len() - 2 * len {
            if segs[start..start + len] == segs[start + len..start + 2 * len]
                && segs[start..start + len].contains(&"api")
            {
                return Some(format!("/{}", segs[start..start + len].join("/")));
            }
        }
    }
    None
}

/// A cursor as Plane makes them: `per_page:page:is_prev`.
fn is_cursor(c: &str) -> bool {
    let parts: Vec<&str> = c.split(':').collect();
    parts.len() == 3
        && parts[0].parse::<f64>().is_ok()
        && parts[1].parse::<i64>().is_ok()
        && matches!(parts[2], "0" | "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubled_paths_are_found() {
        assert_eq!(
            doubled_path("https://p.example/api/v1/api/v1/users/me/").as_deref(),
            Some("/api/v1")
        );
        assert_eq!(
            doubled_path("https://p.example/api/api/v1/users/me/?x=1").as_deref(),
            Some("/api")
        );
        assert_eq!(doubled_path("https://p.example/api/v1/users/me/"), None);
        assert_eq!(
            doubled_path("https://p.example/api/v1/workspaces/a/a/"),
            None
        );
    }

    #[test]
    fn cursors_are_checked() {
        assert!(is_cursor("100:1:0"));
        assert!(is_cursor("100:-1:1"));
        assert!(!is_cursor("100:1"));
        assert!(!is_cursor("x:1:0"));
    }

    #[test]
    fn unknown_routes_are_recognised() {
        let r = Reply {
            status: 404,
            body: include_str!("../../tests/fixtures/plane/error-404-path.json").into(),
        };
        assert!(r.is_unknown_route());
        let r = Reply {
            status: 404,
            body: include_str!("../../tests/fixtures/plane/error-404-issue.json").into(),
        };
        assert!(!r.is_unknown_route());
    }
}
