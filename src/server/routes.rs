//! Every endpoint of the HTTP API: `route` matches a method and the decoded path segments and
//! calls one handler per endpoint. Nothing here touches a socket, so it is tested directly.
//!
//! A route sees the request's headers (`Request::header`, names in any case) and its raw
//! body, and can add headers to its answer (`Reply::with_header`); the edge (`http`) adds
//! the common ones (content type, CORS, `Cache-Control`) after. Every route but /health and
//! /metrics runs on a worker thread and may block; those two run on the network thread and
//! must never wait on anything (see `is_instant` in `http`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{self, Kind};
use crate::ticket::{Status, Ticket, TicketId};
use crate::view::{ApiTicket, ApiTicketDetail};
use crate::workflow::{
    self, AddRequest, ApproveOptions, RemoveOptions, SummarySource, UpdatePlaneOptions,
};

use super::Ctx;

/// One request as the routes see it: the method, the path split at `/` and percent-decoded,
/// the query's pairs (decoded), the headers and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub segments: &'a [String],
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The first header called `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What an answer carries besides its status.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Json(Value),
    /// JSON serialized already, with its final newline (a cached answer).
    Raw(std::sync::Arc<Vec<u8>>),
    /// Text with its content type.
    Text(String, &'static str),
    /// Bytes with their content type (a static asset, or something made for this answer).
    Bytes(std::borrow::Cow<'static, [u8]>, &'static str),
    Empty,
}

/// An answer: status, body, the `Allow` header of a 405 and any headers of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Body,
    pub allow: Option<&'static str>,
    /// Headers the route sets (they replace the edge's own of the same name).
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    #[must_use]
    pub fn json(status: u16, value: Value) -> Reply {
        Reply::new(status, Body::Json(value))
    }

    #[must_use]
    pub fn new(status: u16, body: Body) -> Reply {
        Reply {
            status,
            body,
            allow: None,
            headers: Vec::new(),
        }
    }

    /// The answer with one more header, e.g. `Content-Security-Policy`.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// An error answer: `detail` for the old dashboard, `error` for everything newer.
    #[must_use]
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"detail": message, "error": {"code": code, "message": message}}),
        )
    }

    /// The answer for a failed workflow step, mapped like the command line's exit codes.
    #[must_use]
    pub fn from_err(err: &anyhow::Error) -> Reply {
        let (status, code) = Kind::of(err).http();
        if status >= 500 {
            log::warn!("{err:#}");
        }
        Reply::error(status, code, &format!("{err:#}"))
    }

    /// The JSON body, for tests.
    #[must_use]
    pub fn value(&self) -> Value {
        match &self.body {
            Body::Json(v) => v.clone(),
            Body::Raw(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
            Body::Text(t, _) => Value::String(t.clone()),
            Body::Bytes(b, _) => serde_json::from_slice(b).unwrap_or(Value::Null),
            Body::Empty => Value::Null,
        }
    }
}

fn result(status: u16, r: Result<Value>) -> Reply {
    match r {
        Ok(v) => Reply::json(status, v),
        Err(e) => Reply::from_err(&e),
    }
}

/// The endpoints, by path pattern, with the methods each allows.
fn allowed_methods(segments: &[&str]) -> Option<&'static str> {
    Some(match segments {
        [] | ["ui", _] => "GET, HEAD, OPTIONS",
        ["api", "tickets", _, "screen"] => "GET, HEAD, OPTIONS",
        ["health"]
        | ["orchestrator", "health"]
        | ["api", "pending-tickets" | "completed-tickets"]
        | ["metrics"] => "GET, HEAD, OPTIONS",
        ["api", "tickets"] => "GET, HEAD, POST, OPTIONS",
        ["api", "tickets", _] => "GET, HEAD, DELETE, OPTIONS",
        ["api", "approve" | "complete" | "update-plane" | "restart" | "budget", _] => {
            "POST, OPTIONS"
        }
        _ => return None,
    })
}

/// Answers one request.
#[must_use]
pub fn route(ctx: &Ctx, req: &Request<'_>) -> Reply {
    if super::webhook::Webhooks::is_path(&ctx.app.config.plane.webhook_path, req.segments) {
        return webhook(ctx, req);
    }
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let Some(allow) = allowed_methods(&segs) else {
        return Reply::error(
            404,
            "not_found",
            &format!("no such endpoint /{}", req.segments.join("/")),
        );
    };
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method
    };
    if !allow.split(", ").any(|m| m == method) {
        let mut reply = Reply::error(
            405,
            "invalid",
            &format!(
                "{} is not allowed on /{}: use {allow}",
                req.method,
                segs.join("/")
            ),
        );
        reply.allow = Some(allow);
        return reply;
    }
    // Ids are checked before anything reads or changes the state.
    let id = match segs.as_slice() {
        [_, _, raw] | [_, _, raw, _] => match TicketId::parse(raw) {
            Ok(id) => Some(id),
            Err(e) => return Reply::error(400, "invalid", &e.to_string()),
        },
        _ => None,
    };
    match (method, segs.as_slice(), id) {
        ("GET", [], _) => super::ui::page(),
        ("GET", ["ui", name], _) => super::ui::file(name)
            .unwrap_or_else(|| Reply::error(404, "not_found", &format!("no such file /ui/{name}"))),
        ("GET", ["health"] | ["orchestrator", "health"], _) => health(ctx, req),
        ("GET", ["metrics"], _) => metrics(ctx),
        ("GET", ["api", "pending-tickets"], _) => list(ctx, Some(Status::Pending), false),
        ("GET", ["api", "completed-tickets"], _) => list(ctx, Some(Status::Completed), false),
        ("GET", ["api", "tickets"], _) => list_filtered(ctx, req.query),
        ("POST", ["api", "tickets"], _) => add_ticket(ctx, req.body),
        ("GET", ["api", "tickets", _], Some(id)) => get_ticket(ctx, &id),
        ("DELETE", ["api", "tickets", _], Some(id)) => delete_ticket(ctx, &id, req.query),
        ("POST", ["api", "approve", _], Some(id)) => approve(ctx, &id, req.body),
        ("POST", ["api", "budget", _], Some(id)) => budget(ctx, &id, req.body),
        ("POST", ["api", "complete", _], Some(id)) => complete(ctx, &id, req.body),
        ("POST", ["api", "update-plane", _], Some(id)) => update_plane(ctx, &id, req.body),
        ("POST", ["api", "restart", _], Some(id)) => restart(ctx, &id),
        ("GET", ["api", "tickets", _, "screen"], Some(id)) => screen(ctx, &id, req.query),
        _ => Reply::error(500, "internal", "the route table is inconsistent"),
    }
}

/// Whether the ticket's session is among the live ones; `None` when unknown or sessionless.
fn alive(t: &Ticket, live: Option<&HashSet<String>>) -> Option<bool> {
    let session = t.session.as_ref()?;
    live.map(|l| l.contains(&session.name))
}

fn api_ticket<'a>(t: &'a Ticket, live: Option<&HashSet<String>>) -> ApiTicket<'a> {
    ApiTicket::new(t, alive(t, live))
}

/// Every ticket's activity, read once for a whole answer.
type Activities = std::collections::BTreeMap<TicketId, crate::activity::Activity>;

/// An `ApiTicket` with its activity and cost.
fn api_ticket_with<'a>(
    ctx: &Ctx,
    t: &'a Ticket,
    live: Option<&HashSet<String>>,
    activities: &'a Activities,
) -> ApiTicket<'a> {
    ApiTicket::new(t, alive(t, live)).with_activity(
        t,
        activities.get(&t.id),
        &ctx.app.config,
        crate::ticket::now(),
    )
}

/// A ticket answer after a change: with its activity read now.
fn changed_ticket(ctx: &Ctx, t: &Ticket) -> Result<Value> {
    let a = ctx.app.activity.load(&t.id);
    let live = ctx.live_sessions(true);
    to_value(&ApiTicket::new(t, alive(t, live.as_deref())).with_activity(
        t,
        a.as_ref(),
        &ctx.app.config,
        crate::ticket::now(),
    ))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    Ok(serde_json::to_value(v)?)
}

// ---- reading ----------------------------------------------------------------------------

/// Plane's webhook deliveries (the path is `plane.webhook_path`).
fn webhook(ctx: &Ctx, req: &Request<'_>) -> Reply {
    if req.method != "POST" {
        let mut reply = Reply::error(
            405,
            "invalid",
            &format!(
                "{} is not allowed on {}: use POST",
                req.method, ctx.app.config.plane.webhook_path
            ),
        );
        reply.allow = Some("POST");
        return reply;
    }
    match &ctx.webhooks {
        Some(hooks) => hooks.handle(&ctx.app.config.plane, req),
        None => Reply::error(
            404,
            "not_found",
            &format!(
                "webhooks are off: set {} to the secret Plane showed when the webhook was made, \
                 and restart serve",
                ctx.app.config.plane.webhook_secret_env
            ),
        ),
    }
}

/// The health answer (see `health`): only `healthy` or `degraded` without the token, when
/// one is set.
fn health(ctx: &Ctx, req: &Request<'_>) -> Reply {
    let authorized = ctx
        .token
        .as_ref()
        .is_none_or(|t| super::http::authorized(t, req.header("Authorization")));
    super::health::answer(ctx, authorized)
}

fn metrics(ctx: &Ctx) -> Reply {
    let state = ctx.cache.summary_now(&ctx.app.store);
    let mut text = ctx
        .metrics
        .render(state.summary.as_ref().ok(), ctx.cache.loads(), state.age);
    // Like the summary, the active set never waits for another process's lock.
    let activities = ctx.app.activity.load_all();
    let active: HashSet<TicketId> = ctx
        .cache
        .state_now(&ctx.app.store)
        .map(|s| {
            s.tickets
                .values()
                .filter(|t| t.status == Status::Active)
                .map(|t| t.id.clone())
                .collect()
        })
        .unwrap_or_default();
    text.push_str(&super::metrics::render_activity(
        &activities,
        &active,
        &ctx.app.config.prices,
    ));
    Reply::new(
        200,
        Body::Text(text, "text/plain; version=0.0.4; charset=utf-8"),
    )
}

/// Tickets with `status` (`None`: all but done; `all`: every one), oldest first per status.
/// The serialized list is kept per state generation and liveness, as dashboards ask for the
/// same lists every few seconds.
fn list(ctx: &Ctx, status: Option<Status>, all: bool) -> Reply {
    if all || status == Some(Status::Done) {
        return list_with_done(ctx, status);
    }
    let answer = ctx
        .cache
        .get_with_generation(&ctx.app.store)
        .and_then(|(state, generation)| {
            let live = ctx.live_sessions(false);
            let key = list_key(ctx, status, all, live.as_deref());
            ctx.cache.answer_shared(generation, &key, || {
                let tickets: Vec<&Arc<Ticket>> = state
                    .tickets
                    .values()
                    .filter(|t| match status {
                        Some(s) => t.status == s,
                        None => all || t.status != Status::Done,
                    })
                    .collect();
                let kind = format!("{status:?} {all}");
                open_list_bytes(ctx, &kind, tickets, live.as_deref())
            })
        });
    if let Ok(bytes) = &answer {
        // On a worker, as the file is written: a large kept answer then goes out from it.
        ctx.files.register(bytes);
    }
    match answer {
        Ok(bytes) => Reply::new(200, Body::Raw(bytes)),
        Err(e) => Reply::from_err(&e),
    }
}

/// What a list answer is kept under: what it shows, and what else it depends on.
fn list_key(
    ctx: &Ctx,
    status: Option<Status>,
    all: bool,
    live: Option<&HashSet<String>>,
) -> String {
    // Activity lives beside the state file: its files are part of the key.
    let mut key = format!("list {status:?} {all} {}", ctx.app.activity.fingerprint());
    if let Some(live) = live {
        let mut names: Vec<&String> = live.iter().collect();
        names.sort();
        for n in names {
            key.push(' ');
            key.push_str(n);
        }
    }
    key
}

/// A list of open tickets answered at once when it was made already from the current
/// version of the state (what a dashboard asks again and again): no worker is taken. `None`
/// when it must be made, or read, on a worker; and for every other request.
#[must_use]
pub fn list_if_made(ctx: &Ctx, req: &Request<'_>) -> Option<Reply> {
    if !matches!(req.method, "GET" | "HEAD")
        || super::webhook::Webhooks::is_path(&ctx.app.config.plane.webhook_path, req.segments)
    {
        return None;
    }
    let status = match req.segments {
        [a, p] if a == "api" && p == "pending-tickets" => Some(Status::Pending),
        [a, p] if a == "api" && p == "completed-tickets" => Some(Status::Completed),
        [a, p] if a == "api" && p == "tickets" => {
            match req.query.iter().find(|(k, _)| k == "status") {
                None => None,
                Some((_, wanted)) => match wanted.to_ascii_lowercase().as_str() {
                    "pending" => Some(Status::Pending),
                    "active" => Some(Status::Active),
                    "completed" => Some(Status::Completed),
                    _ => return None,
                },
            }
        }
        _ => return None,
    };
    let (_, generation) = ctx.cache.get_if_current(&ctx.app.store)?;
    let live = ctx.live_sessions(false);
    let key = list_key(ctx, status, false, live.as_deref());
    let bytes = ctx.cache.answer_if_made(generation, &key)?;
    Some(Reply::new(200, Body::Raw(bytes)))
}

/// A list answer: by status in workflow order, oldest first, as JSON.
fn list_bytes(
    ctx: &Ctx,
    mut tickets: Vec<&Ticket>,
    live: Option<&HashSet<String>>,
) -> Result<Vec<u8>> {
    tickets.sort_by(|a, b| a.list_order(b));
    let activities = ctx.app.activity.load_all();
    let api: Vec<ApiTicket> = tickets
        .iter()
        .map(|t| api_ticket_with(ctx, t, live, &activities))
        .collect();
    // About a kilobyte a ticket: one allocation instead of doubling through a megabyte.
    let mut bytes = Vec::with_capacity(api.len() * 1200 + 16);
    serde_json::to_writer(&mut bytes, &api)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Each list's last answer, by what it lists, with where each ticket's part of it lies and
/// the version of the ticket and the liveness it was made from: a new version of the state
/// changes a few tickets, so a list is made again from the others' bytes in the last answer
/// (which the answer cache holds anyway). Only tickets without activity are taken from it:
/// the answer of one with activity tells its state as of now.
#[derive(Debug, Default)]
pub struct Fragments(Mutex<HashMap<String, Kept>>);

#[derive(Debug)]
struct Kept {
    answer: Arc<Vec<u8>>,
    tickets: HashMap<TicketId, Fragment>,
}

#[derive(Debug, Clone)]
struct Fragment {
    ticket: Arc<Ticket>,
    alive: Option<bool>,
    at: std::ops::Range<usize>,
}

/// [`list_bytes`] for open tickets as the cache holds them (`kind` names the list), each
/// ticket's part taken from the list's last answer while the ticket and its session's
/// liveness are as they were: the same bytes, made at the cost of what changed.
fn open_list_bytes(
    ctx: &Ctx,
    kind: &str,
    mut tickets: Vec<&Arc<Ticket>>,
    live: Option<&HashSet<String>>,
) -> Result<Arc<Vec<u8>>> {
    tickets.sort_by(|a, b| a.list_order(b));
    let activities = ctx.app.activity.load_all();
    let mut kept = ctx
        .fragments
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let last = kept.remove(kind);
    let mut made = HashMap::with_capacity(tickets.len());
    let mut bytes = Vec::with_capacity(last.as_ref().map_or(0, |k| k.answer.len()) + 4096);
    bytes.push(b'[');
    for (i, t) in tickets.into_iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        let alive = alive(t, live);
        if activities.contains_key(&t.id) {
            serde_json::to_writer(&mut bytes, &api_ticket_with(ctx, t, live, &activities))?;
            continue;
        }
        let start = bytes.len();
        match last.as_ref().and_then(|k| Some((k, k.tickets.get(&t.id)?))) {
            Some((k, f)) if Arc::ptr_eq(&f.ticket, t) && f.alive == alive => {
                bytes.extend_from_slice(&k.answer[f.at.clone()]);
            }
            _ => serde_json::to_writer(&mut bytes, &api_ticket_with(ctx, t, live, &activities))?,
        }
        made.insert(
            t.id.clone(),
            Fragment {
                ticket: Arc::clone(t),
                alive,
                at: start..bytes.len(),
            },
        );
    }
    bytes.extend_from_slice(b"]\n");
    drop(last);
    // Kept for as long as the version lasts: without the room it grew into (up to twice the
    // answer, a MiB for a thousand tickets).
    bytes.shrink_to_fit();
    let answer = Arc::new(bytes);
    kept.insert(
        kind.to_string(),
        Kept {
            answer: Arc::clone(&answer),
            tickets: made,
        },
    );
    Ok(answer)
}

/// Lists holding done tickets: read from the file each time (the cache keeps open tickets
/// only), with archived ones too, as `list --status done|all` shows them.
fn list_with_done(ctx: &Ctx, status: Option<Status>) -> Reply {
    let answer = (|| -> Result<Vec<u8>> {
        let tickets = ctx
            .app
            .store
            .load_listed(|s| status.is_none_or(|w| w == s))?;
        let live = ctx.live_sessions(false);
        list_bytes(ctx, tickets.iter().collect(), live.as_deref())
    })();
    match answer {
        Ok(bytes) => Reply::new(200, Body::Raw(std::sync::Arc::new(bytes))),
        Err(e) => Reply::from_err(&e),
    }
}

fn list_filtered(ctx: &Ctx, query: &[(String, String)]) -> Reply {
    let Some((_, wanted)) = query.iter().find(|(k, _)| k == "status") else {
        return list(ctx, None, false);
    };
    match wanted.to_ascii_lowercase().as_str() {
        "all" => list(ctx, None, true),
        "pending" => list(ctx, Some(Status::Pending), false),
        "active" => list(ctx, Some(Status::Active), false),
        "completed" => list(ctx, Some(Status::Completed), false),
        "done" => list(ctx, Some(Status::Done), false),
        other => Reply::error(
            400,
            "invalid",
            &format!("status {other:?} is not one of pending, active, completed, done, all"),
        ),
    }
}

fn get_ticket(ctx: &Ctx, id: &TicketId) -> Reply {
    result(
        200,
        ctx.cache.get(&ctx.app.store).and_then(|state| {
            let live = ctx.live_sessions(false);
            let a = ctx.app.activity.load(id);
            let detail = |t: &Ticket| {
                to_value(&ApiTicketDetail::with_activity(
                    t,
                    alive(t, live.as_deref()),
                    a.as_ref(),
                    &ctx.app.config,
                    crate::ticket::now(),
                ))
            };
            if let Some(t) = state.tickets.get(id) {
                return detail(t);
            }
            // Not open: done (in the file, not in the cache) or archived.
            let store = &ctx.app.store;
            match store.find(id)? {
                Some(t) => detail(&t),
                None => match store.find_archived(id)? {
                    Some(t) => detail(&t),
                    None => Err(crate::error::Error::NotFound(id.to_string()).into()),
                },
            }
        }),
    )
}

// ---- changing ---------------------------------------------------------------------------

/// Parses a JSON body, saying what was expected when it does not fit.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| error::invalid(format!("the body is not {expected}: {e}")))
}

#[derive(Deserialize)]
struct AddBody {
    id: String,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

fn add_ticket(ctx: &Ctx, body: &[u8]) -> Reply {
    let r = (|| {
        let b: AddBody = parse_body(
            body,
            r#"JSON like {"id": "CSLOG-TEST", "title": "...", "description": "...", "url": "..."}"#,
        )?;
        let id = TicketId::parse(&b.id)?;
        let t = workflow::add(
            &ctx.app,
            AddRequest {
                id,
                title: b.title,
                description: b.description,
                url: b.url,
            },
        )?;
        // A new ticket has no session: nothing to check.
        to_value(&api_ticket(&t, None))
    })();
    ctx.metrics.tickets_added.count(&r);
    result(201, r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetBody {
    #[serde(default)]
    budget_usd: Option<f64>,
}

/// The optional approve body: nothing, `{}`, or `{"budget_usd": 5}`.
fn approve_options(body: &[u8]) -> Result<ApproveOptions> {
    let budget_usd = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        parse_body::<BudgetBody>(body, r#"JSON like {"budget_usd": 5}, or nothing"#)?.budget_usd
    };
    Ok(ApproveOptions {
        budget_usd,
        ..ApproveOptions::default()
    })
}

fn approve(ctx: &Ctx, id: &TicketId, body: &[u8]) -> Reply {
    let r = approve_options(body).and_then(|opts| workflow::approve(&ctx.app, id, opts));
    ctx.metrics.approvals.count(&r);
    result(
        200,
        r.and_then(|t| {
            Ok(json!({
                "session_id": t.session.as_ref().map(|s| s.name.clone()),
                "ticket_id": t.id.to_string(),
                "created_at": t.session.as_ref().and_then(|s| s.started_at).or(t.approved_at),
                "ticket": changed_ticket(ctx, &t)?,
            }))
        }),
    )
}

/// `POST /api/budget/{id}` with `{"budget_usd": 10}` (null: back to `automation.budget_usd`):
/// the ticket with its activity and cost.
fn budget(ctx: &Ctx, id: &TicketId, body: &[u8]) -> Reply {
    let r = (|| {
        let raw: Value = parse_body(body, r#"JSON like {"budget_usd": 10}"#)?;
        if raw.get("budget_usd").is_none() {
            return Err(error::invalid(
                r#"the body has no "budget_usd": send {"budget_usd": 10}, or null for the default"#,
            ));
        }
        let b: BudgetBody = parse_body(body, r#"JSON like {"budget_usd": 10}"#)?;
        workflow::supervise::set_budget(&ctx.app, id, b.budget_usd)?;
        let t = ctx
            .app
            .store
            .find(id)?
            .ok_or_else(|| crate::error::Error::NotFound(id.to_string()))?;
        changed_ticket(ctx, &t)
    })();
    result(200, r)
}

#[derive(Deserialize)]
struct SummaryBody {
    summary: Option<String>,
}

/// `POST /api/update-plane/{id}`: a new summary, and `force` to post past the branch warnings.
#[derive(Deserialize)]
struct UpdatePlaneBody {
    summary: Option<String>,
    #[serde(default)]
    force: bool,
}

fn complete(ctx: &Ctx, id: &TicketId, body: &[u8]) -> Reply {
    let r = (|| {
        let b: SummaryBody = parse_body(body, r#"JSON like {"summary": "what was done"}"#)?;
        let summary = b
            .summary
            .ok_or_else(|| error::invalid(r#"the body has no "summary": say what was done"#))?;
        let t = workflow::complete(&ctx.app, id, &summary, SummarySource::Api)?;
        changed_ticket(ctx, &t)
    })();
    ctx.metrics.completions.count(&r);
    result(200, r)
}

fn update_plane(ctx: &Ctx, id: &TicketId, body: &[u8]) -> Reply {
    let r = (|| {
        // The body is optional: the dashboard sends none, or `{}`, or a new summary.
        let (summary, force) = if body.iter().all(u8::is_ascii_whitespace) {
            (None, false)
        } else {
            let b = parse_body::<UpdatePlaneBody>(
                body,
                r#"JSON like {"summary": "...", "force": false} or nothing"#,
            )?;
            (b.summary.filter(|s| !s.trim().is_empty()), b.force)
        };
        let out = workflow::update_plane(
            &ctx.app,
            id,
            &UpdatePlaneOptions {
                summary,
                force,
                ..UpdatePlaneOptions::default()
            },
        )?;
        Ok(json!({
            "status": "updated",
            "ticket_id": out.ticket.id.to_string(),
            "comment_posted": out.comment_posted,
            "comment_edited": out.comment_edited,
            "state_updated": out.state_updated,
            "warnings": out.warnings,
            "item_deleted": out.item_deleted,
            "ticket": changed_ticket(ctx, &out.ticket)?,
        }))
    })();
    ctx.metrics.plane_updates.count(&r);
    result(200, r)
}

fn restart(ctx: &Ctx, id: &TicketId) -> Reply {
    let r = workflow::restart(&ctx.app, id);
    result(200, r.and_then(|t| changed_ticket(ctx, &t)))
}

/// Lines a peek shows unless `?lines=` asks for another number, and the most it may ask.
const SCREEN_LINES: usize = 40;
const SCREEN_LINES_MAX: usize = 500;

/// A read-only look at the last lines of a ticket's session screen.
fn screen(ctx: &Ctx, id: &TicketId, query: &[(String, String)]) -> Reply {
    let lines = match query.iter().find(|(k, _)| k == "lines") {
        None => SCREEN_LINES,
        Some((_, v)) => match v.parse::<usize>() {
            Ok(n) if (1..=SCREEN_LINES_MAX).contains(&n) => n,
            _ => {
                return Reply::error(
                    400,
                    "invalid",
                    &format!("lines must be a number from 1 to {SCREEN_LINES_MAX}, not {v:?}"),
                )
            }
        },
    };
    let r = (|| {
        let state = ctx.cache.get(&ctx.app.store)?;
        let ticket = match state.tickets.get(id) {
            Some(t) => Ticket::clone(t),
            None => ctx
                .app
                .store
                .find(id)?
                .ok_or_else(|| crate::error::Error::NotFound(id.to_string()))?,
        };
        let Some(session) = &ticket.session else {
            return Err(error::conflict(format!(
                "{id} is {} and has no session to look at",
                ticket.status
            )));
        };
        if !crate::session::can_capture(session) {
            return Ok(Err(Reply::error(
                501,
                "session_error",
                &format!(
                    "the {} session backend cannot show a session's screen: \
                     `plane-orch attach {id}` to see it",
                    session.backend
                ),
            )));
        }
        let text = crate::session::capture_screen(&ctx.app.config, session, lines)?;
        Ok(Ok(json!({
            "ticket_id": id.to_string(),
            "session": session.name,
            "alive": text.is_some(),
            "lines": lines,
            "text": text,
            "captured_at": crate::ticket::now(),
        })))
    })();
    match r {
        Ok(Ok(v)) => Reply::json(200, v),
        Ok(Err(reply)) => reply,
        Err(e) => Reply::from_err(&e),
    }
}

fn delete_ticket(ctx: &Ctx, id: &TicketId, query: &[(String, String)]) -> Reply {
    let kill_session = query
        .iter()
        .any(|(k, v)| k == "kill_session" && matches!(v.as_str(), "true" | "1" | "yes"));
    let r = workflow::remove(&ctx.app, id, RemoveOptions { kill_session });
    ctx.metrics.removals.count(&r);
    result(
        200,
        r.map(|t| json!({"status": "deleted", "ticket_id": t.id.to_string()})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;

    fn ctx() -> (tempfile::TempDir, Ctx) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::parse("", &dir.path().join("config.yaml")).unwrap();
        let ctx = Ctx::new(App::from_config(config), None);
        (dir, ctx)
    }

    fn call(ctx: &Ctx, method: &str, path: &str, body: &str) -> Reply {
        let (segments, query) = super::super::split_url(path).unwrap();
        route(
            ctx,
            &Request {
                method,
                segments: &segments,
                query: &query,
                headers: &[],
                body: body.as_bytes(),
            },
        )
    }

    #[test]
    fn a_list_is_answered_at_once_only_when_made_from_the_current_state() {
        let (_dir, ctx) = ctx();
        let add = |id: &str| {
            ctx.app
                .store
                .update(|s| {
                    let t = Ticket::new(
                        crate::ticket::NewTicket::manual(TicketId::parse(id).unwrap(), "t"),
                        crate::ticket::now(),
                    );
                    s.tickets.insert(t.id.clone(), t);
                    Ok(())
                })
                .unwrap();
        };
        add("A-1");
        let at_once = |path: &str| {
            let (segments, query) = super::super::split_url(path).unwrap();
            list_if_made(
                &ctx,
                &Request {
                    method: "GET",
                    segments: &segments,
                    query: &query,
                    headers: &[],
                    body: &[],
                },
            )
        };
        assert!(at_once("/api/pending-tickets").is_none(), "not made yet");
        let made = call(&ctx, "GET", "/api/pending-tickets", "");
        let fast = at_once("/api/pending-tickets").expect("made already");
        assert_eq!(fast, made);
        // Done and all lists are read from the file: never at once.
        call(&ctx, "GET", "/api/tickets?status=all", "");
        assert!(at_once("/api/tickets?status=all").is_none());
        add("A-2");
        assert!(
            at_once("/api/pending-tickets").is_none(),
            "the state changed"
        );
        let v = call(&ctx, "GET", "/api/pending-tickets", "").value();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(at_once("/api/pending-tickets").unwrap().value(), v);
    }

    #[test]
    fn a_list_made_again_from_kept_answers_is_the_list_made_afresh() {
        let (_dir, ctx) = ctx();
        for i in 0..30 {
            let t = Ticket::new(
                crate::ticket::NewTicket::manual(
                    TicketId::parse(&format!("L-{i}")).unwrap(),
                    &format!("title {i}"),
                ),
                crate::ticket::now(),
            );
            ctx.app
                .store
                .insert_new(&t, |_| anyhow::anyhow!("known"))
                .unwrap();
        }
        let first = call(&ctx, "GET", "/api/pending-tickets", "").value();
        assert_eq!(first.as_array().unwrap().len(), 30);
        let changed = TicketId::parse("L-7").unwrap();
        ctx.app
            .store
            .update_ticket(&changed, |t| {
                t.title = "changed".into();
                Ok(())
            })
            .unwrap();
        let again = call(&ctx, "GET", "/api/pending-tickets", "");
        let Body::Raw(again_bytes) = &again.body else {
            panic!("a list is sent as bytes");
        };
        let tickets = ctx.app.store.load_where(|s| s == Status::Pending).unwrap();
        let fresh = list_bytes(&ctx, tickets.iter().collect(), None).unwrap();
        // Byte for byte the list made afresh.
        assert!(**again_bytes == fresh);
        let again = again.value();
        assert_ne!(again, first);
        let titled: Vec<&Value> = again
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["title"] == "changed")
            .collect();
        assert_eq!(titled.len(), 1);
    }

    #[test]
    fn unknown_paths_and_wrong_methods_are_told_apart() {
        let (_dir, ctx) = ctx();
        let r = call(&ctx, "GET", "/api/nope", "");
        assert_eq!(r.status, 404);
        assert_eq!(r.value()["error"]["code"], "not_found");
        let r = call(&ctx, "DELETE", "/api/pending-tickets", "");
        assert_eq!(r.status, 405);
        assert_eq!(r.allow, Some("GET, HEAD, OPTIONS"));
        assert!(r.value()["detail"].is_string());
    }

    #[test]
    fn ids_are_checked_before_the_state_is_read() {
        let (dir, ctx) = ctx();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/pending-tickets.json"), "{bad").unwrap();
        let r = call(&ctx, "POST", "/api/approve/..%2F..%2Fetc", "");
        assert_eq!(r.status, 400, "{:?}", r.value());
        assert!(r.value()["detail"]
            .as_str()
            .unwrap()
            .contains("invalid ticket id"));
        // A valid id does reach the damaged file.
        assert_eq!(call(&ctx, "POST", "/api/approve/A-1", "").status, 500);
    }

    #[test]
    fn a_posted_ticket_is_listed_and_approving_an_unknown_one_is_404() {
        // Approving for real starts a session: that is tested over HTTP in tests/serve_*.rs.
        let (_dir, ctx) = ctx();
        let r = call(
            &ctx,
            "POST",
            "/api/tickets",
            r#"{"id": "a-1", "title": "t"}"#,
        );
        assert_eq!(r.status, 201);
        assert_eq!(r.value()["id"], "A-1");
        let list = call(&ctx, "GET", "/api/pending-tickets", "").value();
        assert_eq!(list.as_array().unwrap().len(), 1);
        let r = call(&ctx, "POST", "/api/approve/A-2", "");
        assert_eq!(r.status, 404);
        assert_eq!(r.value()["error"]["code"], "not_found");
    }

    #[test]
    fn a_budget_is_set_over_the_api_and_bad_ones_are_refused() {
        let (_dir, ctx) = ctx();
        call(
            &ctx,
            "POST",
            "/api/tickets",
            r#"{"id": "B-1", "title": "t"}"#,
        );
        let r = call(&ctx, "POST", "/api/budget/B-1", r#"{"budget_usd": 5}"#);
        assert_eq!(r.status, 200, "{:?}", r.value());
        let stored = ctx
            .app
            .store
            .find(&TicketId::parse("B-1").unwrap())
            .unwrap();
        assert_eq!(stored.unwrap().budget_usd, Some(5.0));
        for bad in [r#"{"budget_usd": -1}"#, r#"{}"#, r#"{"budget": 5}"#, "nope"] {
            let r = call(&ctx, "POST", "/api/budget/B-1", bad);
            assert_eq!(r.status, 400, "{bad}: {:?}", r.value());
        }
        assert_eq!(
            call(&ctx, "POST", "/api/budget/B-9", r#"{"budget_usd": 5}"#).status,
            404
        );
        let r = call(&ctx, "POST", "/api/approve/B-1", r#"{"budget_usd": "x"}"#);
        assert_eq!(r.status, 400, "{:?}", r.value());
        let metrics = call(&ctx, "GET", "/metrics", "").value();
        let text = metrics.as_str().unwrap();
        assert!(
            text.contains("plane_orch_activity{state=\"working\"} 0"),
            "{text}"
        );
        assert!(text.contains("plane_orch_cost_usd_total 0"), "{text}");
    }

    #[test]
    fn health_is_degraded_but_answers_when_the_state_is_damaged() {
        let (dir, ctx) = ctx();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/pending-tickets.json"), "{bad").unwrap();
        let r = call(&ctx, "GET", "/health", "");
        assert_eq!(r.status, 200);
        assert_eq!(r.value()["status"], "degraded");
        assert_eq!(r.value()["state"]["ok"], false);
        assert!(r.value()["state"]["error"]
            .as_str()
            .unwrap()
            .contains("damaged"));
    }
}
