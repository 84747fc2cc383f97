//! The HTTP edge: everything a request must pass before a route sees it, decided here in
//! this order: framing (400), Host (421), path decoding (400), preflight, foreign origin
//! (403), token (401), declared size (413), body read (413, 408), a free worker (503),
//! route. Then the answer is written with its headers.
//!
//! hyper has parsed the request head already and refused what it cannot frame: a head over
//! `MAX_HEAD` (431), two different `Content-Length`s, obs-fold or a malformed line (400), each
//! with the connection closed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use super::routes::{self, Body, Reply};
use super::Ctx;

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The longest request line and headers accepted, together; longer ones get 431.
pub const MAX_HEAD: usize = 32 * 1024;

/// The largest webhook body accepted: Plane sends the whole work item, description included.
const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// How long a request's body may take to arrive, all of it.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a free worker before it is answered 503.
const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// The answer body hyper writes.
pub type HttpBody = Full<Bytes>;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_state_changing(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Whether the (decoded) path needs the token: everything but the two health paths and the
/// dashboard's own files (they hold no data; the page asks for the token itself). Decided on
/// decoded segments, so `/%61pi/...` is no way around it.
fn needs_token(segments: &[String]) -> bool {
    !matches!(
        segments
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["health"] | ["orchestrator", "health"] | [] | ["ui", _]
    )
}

/// Whether a browser request comes from this server's own page (the dashboard at `/`): its
/// `Origin` is `http://` plus the `Host` it was sent to. A site that points its own name at
/// this address (DNS rebinding) would pass that check with its name as `Host`, so without a
/// token only hosts that cannot be rebound count: IP literals and `localhost`. With a token
/// such a page still has no token to send.
fn same_origin(origin: &str, host: Option<&str>, token_set: bool) -> bool {
    let Some(host) = host.map(str::trim) else {
        return false;
    };
    if origin.trim_end_matches('/').strip_prefix("http://") != Some(host) {
        return false;
    }
    if token_set || host.starts_with('[') {
        return true;
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    name.parse::<std::net::IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost")
}

/// Whether the request is answered on the network thread: these read only what is in
/// memory and never wait, so they answer while every worker is busy.
fn is_instant(method: &str, segments: &[String]) -> bool {
    matches!(method, "GET" | "HEAD")
        && matches!(
            segments
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
            ["health"] | ["orchestrator", "health"] | ["metrics"]
        )
}

/// Whether the request may have to reach Plane: those share a smaller pool, so a Plane that
/// does not answer cannot take every worker.
fn may_reach_plane(method: &str, segments: &[String]) -> bool {
    method == "POST"
        && segments.len() == 3
        && segments[0] == "api"
        && matches!(segments[1].as_str(), "approve" | "update-plane")
}

/// Compares the `Authorization` header with the token in constant time.
pub(super) fn authorized(token: &str, authorization: Option<&str>) -> bool {
    let Some((scheme, given)) = authorization.and_then(|a| a.trim().split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}

/// Which `Host` values the server answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Names accepted (lower case, without port; IPv6 in brackets).
    names: Vec<String>,
    /// Any name is accepted (a non-loopback bind without `api.allowed_hosts`).
    any: bool,
}

impl HostPolicy {
    /// On a loopback bind: the loopback names and `extra`. On another: the bound address,
    /// the loopback names and `extra`, or any name when `extra` is empty.
    #[must_use]
    pub fn for_bind(addr: std::net::SocketAddr, extra: &[String]) -> HostPolicy {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let loopback = addr.ip().is_loopback();
        if !loopback {
            names.push(match addr.ip() {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            });
        }
        names.extend(extra.iter().cloned());
        HostPolicy {
            names,
            any: !loopback && extra.is_empty(),
        }
    }

    /// Whether `host` (a `Host` header or a URL's authority, port optional) is accepted.
    #[must_use]
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let host = host.trim();
        let name = if host.starts_with('[') {
            host.find(']').map_or(host, |end| &host[..=end])
        } else {
            match host.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => host,
            }
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&name)
    }
}

impl Default for HostPolicy {
    fn default() -> HostPolicy {
        HostPolicy::for_bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), &[])
    }
}

/// A query string's decoded `key=value` pairs, in order.
pub type Query = Vec<(String, String)>;

/// The path split at `/` and percent-decoded, and the query's decoded pairs.
///
/// # Errors
/// A segment that is not UTF-8 once decoded (400).
pub fn split_url(url: &str) -> Result<(Vec<String>, Query), Reply> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| Reply::error(400, "invalid", "the path is not UTF-8 once decoded"))
    };
    let mut segments = path
        .split('/')
        .skip(1)
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    if segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(&k.replace('+', " "))?, decode(&v.replace('+', " "))?))
        })
        .collect::<Result<Vec<_>, Reply>>()?;
    Ok((segments, query))
}

/// An answer and whether the connection is closed after it.
struct Outcome {
    reply: Reply,
    close: bool,
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Outcome {
        Outcome {
            reply,
            close: false,
        }
    }
}

fn closing(reply: Reply) -> Outcome {
    Outcome { reply, close: true }
}

/// Refuses framing that two HTTP parsers could read two ways. hyper itself answers 400 and
/// closes on two different `Content-Length`s, a `Transfer-Encoding` whose last coding is not
/// chunked, obs-fold and malformed lines; and when a request has both `Content-Length` and
/// `Transfer-Encoding` it reads the body as chunked and closes the connection after the
/// answer, so nothing after that body is ever read as a request. What is left to refuse
/// here: `Transfer-Encoding` sent more than once, or with any coding besides `chunked`.
fn framing(headers: &HeaderMap) -> Option<Outcome> {
    let mut codings = headers.get_all(hyper::header::TRANSFER_ENCODING).iter();
    let first = codings.next()?;
    let plain_chunked = first
        .to_str()
        .is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
    if codings.next().is_some() || !plain_chunked {
        return Some(closing(Reply::error(
            400,
            "invalid",
            "the request's framing is ambiguous: send one Content-Length, or \
             Transfer-Encoding: chunked alone",
        )));
    }
    None
}

/// The 421 for a `Host` this server does not answer to (a DNS rebinding page, a typo).
fn check_host(ctx: &Ctx, rq: &hyper::Request<Incoming>) -> Option<Outcome> {
    let given = rq
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .into_iter()
        .chain(header(rq.headers(), "host").map(str::to_string))
        .chain(
            rq.headers()
                .get("host")
                .filter(|v| v.to_str().is_err())
                .map(|_| "(not text)".to_string()),
        );
    for host in given {
        if !ctx.hosts.allows(&host) {
            return Some(
                Reply::error(
                    421,
                    "misdirected",
                    &format!(
                        "this server does not answer to the host {host:?}: use localhost or \
                         127.0.0.1, or add the name to api.allowed_hosts"
                    ),
                )
                .into(),
            );
        }
    }
    if rq.headers().get_all("host").iter().count() > 1 {
        return Some(closing(Reply::error(
            400,
            "invalid",
            "the request has more than one Host",
        )));
    }
    None
}

fn gate(ctx: &Ctx, method: &str, segments: &[String], headers: &HeaderMap) -> Option<Outcome> {
    if method == "OPTIONS" {
        return Some(
            Reply {
                status: 204,
                body: Body::Empty,
                allow: None,
                headers: Vec::new(),
            }
            .into(),
        );
    }
    if let Some(origin) = header(headers, "origin") {
        if is_state_changing(method)
            && !ctx.origin_allowed(origin)
            && !same_origin(origin, header(headers, "host"), ctx.token.is_some())
        {
            return Some(
                Reply::error(
                    403,
                    "forbidden",
                    &format!(
                        "requests from the web page at {origin} may not change tickets: \
                         add it to api.cors_origins if it is your dashboard"
                    ),
                )
                .into(),
            );
        }
    }
    // Plane cannot send the API token: its webhooks are checked by their signature instead.
    let webhook = is_webhook(ctx, segments);
    if let Some(token) = &ctx.token {
        if needs_token(segments) && !webhook && !authorized(token, header(headers, "authorization"))
        {
            return Some(
                Reply::error(
                    401,
                    "unauthorized",
                    "this API needs \"Authorization: Bearer <token>\" with the token set in the \
                     server's environment",
                )
                .into(),
            );
        }
    }
    let declared = header(headers, "content-length").and_then(|n| n.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > body_limit(webhook) as u64) {
        // Not read: closing is cheaper than draining it.
        return Some(closing(too_large(body_limit(webhook))));
    }
    None
}

fn is_webhook(ctx: &Ctx, segments: &[String]) -> bool {
    super::webhook::Webhooks::is_path(&ctx.app.config.plane.webhook_path, segments)
}

fn body_limit(webhook: bool) -> usize {
    if webhook {
        MAX_WEBHOOK_BODY
    } else {
        MAX_BODY
    }
}

fn too_large(limit: usize) -> Reply {
    Reply::error(
        413,
        "too_large",
        &format!("the request body is over {} KiB", limit / 1024),
    )
}

fn busy() -> Reply {
    Reply::error(
        503,
        "busy",
        "the server is busy with other requests: try again in a moment",
    )
    .with_header("Retry-After", "1")
}

/// Reads the body, at most `max` bytes and within `BODY_TIMEOUT`.
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, Outcome> {
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(closing(too_large(max))),
        Ok(Err(e)) => Err(closing(Reply::error(
            400,
            "invalid",
            &format!("cannot read the request body: {e}"),
        ))),
        Err(_) => Err(closing(Reply::error(
            408,
            "timeout",
            &format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        ))),
    }
}

/// Waits up to `QUEUE_WAIT` for a permit of `pool`.
async fn permit(pool: &Arc<tokio::sync::Semaphore>) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::time::timeout(QUEUE_WAIT, Arc::clone(pool).acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
}

/// The request's headers as the routes see them: lower-case names, values as text.
fn route_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Answers one request.
pub(super) async fn handle(
    ctx: Arc<Ctx>,
    rq: hyper::Request<Incoming>,
) -> Result<hyper::Response<HttpBody>, Infallible> {
    let started = Instant::now();
    let method = rq.method().as_str().to_ascii_uppercase();
    let url = rq
        .uri()
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str)
        .to_string();
    let origin = header(rq.headers(), "origin")
        .filter(|o| ctx.origin_allowed(o))
        .map(str::to_string);
    let outcome = decide(&ctx, &method, &url, rq).await;
    let status = outcome.reply.status;
    let response = build(outcome, origin.as_deref(), method == "OPTIONS");
    ctx.metrics.request(status);
    log::debug!(
        "{method} {url} -> {status} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(response)
}

async fn decide(ctx: &Arc<Ctx>, method: &str, url: &str, rq: hyper::Request<Incoming>) -> Outcome {
    if let Some(refused) = framing(rq.headers()).or_else(|| check_host(ctx, &rq)) {
        return refused;
    }
    let (segments, query) = match split_url(url) {
        Ok(parts) => parts,
        Err(reply) => return reply.into(),
    };
    if let Some(refused) = gate(ctx, method, &segments, rq.headers()) {
        return refused;
    }
    let headers = route_headers(rq.headers());
    if is_instant(method, &segments) {
        return routes::route(
            ctx,
            &routes::Request {
                method,
                segments: &segments,
                query: &query,
                headers: &headers,
                body: &[],
            },
        )
        .into();
    }
    let body = rq.into_body();
    // A list made already from the current state: at once, without a worker.
    if hyper::body::Body::is_end_stream(&body) {
        let request = routes::Request {
            method,
            segments: &segments,
            query: &query,
            headers: &headers,
            body: &[],
        };
        if let Some(reply) = routes::list_if_made(ctx, &request) {
            return reply.into();
        }
    }
    if !hyper::body::Body::is_end_stream(&body) {
        // On the network thread: a slow uploader holds no worker.
        log::debug!("{method} {url}: reading its body");
    }
    let body = match read_body(body, body_limit(is_webhook(ctx, &segments))).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    // A Plane request takes a permit of its own pool first, then a worker.
    let _plane = if may_reach_plane(method, &segments) {
        match permit(&ctx.plane_slots).await {
            Some(p) => Some(p),
            None => return busy().into(),
        }
    } else {
        None
    };
    let Some(_worker) = permit(&ctx.workers).await else {
        return busy().into();
    };
    let (shared, method_owned) = (Arc::clone(ctx), method.to_string());
    let work = tokio::task::spawn_blocking(move || {
        routes::route(
            &shared,
            &routes::Request {
                method: &method_owned,
                segments: &segments,
                query: &query,
                headers: &headers,
                body: &body,
            },
        )
    });
    match work.await {
        Ok(reply) => reply.into(),
        Err(e) => {
            log::error!("{method} {url}: the handler failed: {e}");
            Reply::error(
                500,
                "internal",
                "the request failed inside the server: see its log",
            )
            .into()
        }
    }
}

/// An answer's bytes, shared with the answer cache or compiled in, rather than copied.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn set(response: &mut hyper::Response<HttpBody>, name: &str, value: &str) {
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        (Ok(n), Ok(v)) => {
            response.headers_mut().insert(n, v);
        }
        _ => log::warn!("header {name:?} was not sent: not a valid header"),
    }
}

fn build(outcome: Outcome, origin: Option<&str>, preflight: bool) -> hyper::Response<HttpBody> {
    let Outcome { reply, close } = outcome;
    let (bytes, content_type) = match reply.body {
        Body::Json(v) => {
            let mut b = serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec());
            b.push(b'\n');
            (Bytes::from(b), Some("application/json"))
        }
        Body::Raw(b) => (Bytes::from_owner(SharedBytes(b)), Some("application/json")),
        Body::Text(t, ct) => (Bytes::from(t), Some(ct)),
        Body::Bytes(b, ct) => (
            match b {
                std::borrow::Cow::Borrowed(s) => Bytes::from_static(s),
                std::borrow::Cow::Owned(v) => Bytes::from(v),
            },
            Some(ct),
        ),
        Body::Empty => (Bytes::new(), None),
    };
    let mut response = hyper::Response::new(Full::new(bytes));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    // The headers every answer has, with names known at compile time: not parsed per answer.
    let headers = response.headers_mut();
    if let Some(ct) = content_type {
        match HeaderValue::from_str(ct) {
            Ok(v) => {
                headers.insert(hyper::header::CONTENT_TYPE, v);
            }
            Err(_) => log::warn!("the content type {ct:?} was not sent: not a valid header"),
        }
    }
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(hyper::header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        hyper::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(allow) = reply.allow {
        set(&mut response, "Allow", allow);
    }
    if reply.status == 401 {
        set(&mut response, "WWW-Authenticate", "Bearer");
    }
    if let Some(origin) = origin {
        // Only origins from api.cors_origins reach here, so echoing one is safe.
        if origin.bytes().all(|b| b.is_ascii_graphic()) {
            set(&mut response, "Access-Control-Allow-Origin", origin);
            if preflight {
                set(
                    &mut response,
                    "Access-Control-Allow-Methods",
                    "GET, POST, DELETE, OPTIONS",
                );
                set(
                    &mut response,
                    "Access-Control-Allow-Headers",
                    "Content-Type, Authorization",
                );
                set(&mut response, "Access-Control-Max-Age", "600");
            }
        }
    }
    for (name, value) in &reply.headers {
        set(&mut response, name, value);
    }
    if close {
        set(&mut response, "Connection", "close");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_decoded() {
        let (segs, query) = split_url("/api/approve/..%2F..%2Fetc?status=all&x").unwrap();
        assert_eq!(segs, ["api", "approve", "../../etc"]);
        assert_eq!(
            query,
            [("status".into(), "all".into()), ("x".into(), String::new())]
        );
        let (segs, _) = split_url("/api/tickets/").unwrap();
        assert_eq!(segs, ["api", "tickets"]);
        assert!(split_url("/api/%FF").is_err());
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(authorized("s3cret", Some("Bearer s3cret")));
        assert!(authorized("s3cret", Some("bearer  s3cret")));
        assert!(!authorized("s3cret", Some("Basic s3cret")));
        assert!(!authorized("s3cret", Some("Bearer s3cre")));
        assert!(!authorized("s3cret", Some("Bearer s3crets")));
        assert!(!authorized("s3cret", Some("s3cret")));
        assert!(!authorized("s3cret", None));
    }

    #[test]
    fn the_own_page_is_same_origin_but_a_rebound_name_is_not() {
        assert!(same_origin(
            "http://127.0.0.1:5002",
            Some("127.0.0.1:5002"),
            false
        ));
        assert!(same_origin(
            "http://localhost:5002",
            Some("localhost:5002"),
            false
        ));
        assert!(same_origin("http://[::1]:5002", Some("[::1]:5002"), false));
        assert!(!same_origin(
            "http://evil.example:5002",
            Some("evil.example:5002"),
            false
        ));
        assert!(same_origin(
            "http://orch.lan:5002",
            Some("orch.lan:5002"),
            true
        ));
        assert!(!same_origin(
            "http://evil.example",
            Some("127.0.0.1:5002"),
            true
        ));
        assert!(!same_origin(
            "https://127.0.0.1:5002",
            Some("127.0.0.1:5002"),
            true
        ));
        assert!(!same_origin("http://127.0.0.1:5002", None, true));
        assert!(!same_origin("null", Some("127.0.0.1:5002"), false));
    }

    #[test]
    fn only_health_needs_no_token() {
        let needs = |url: &str| needs_token(&split_url(url).unwrap().0);
        assert!(!needs("/health"));
        assert!(!needs("/orchestrator/health/"));
        assert!(needs("/api/pending-tickets"));
        assert!(needs("/%61pi/pending-tickets"));
        assert!(needs("/metrics"));
        assert!(!needs("/"));
        assert!(!needs("/ui/app.js"));
        assert!(needs("/ui/a/b"));
        assert!(needs("/api/tickets/A-1/screen"));
    }

    #[test]
    fn only_loopback_names_pass_on_a_loopback_bind() {
        let p = HostPolicy::for_bind("127.0.0.1:5002".parse().unwrap(), &[]);
        for ok in [
            "localhost",
            "LOCALHOST:5002",
            "127.0.0.1",
            "127.0.0.1:9",
            "[::1]",
            "[::1]:5002",
            "localhost.",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:5002",
            "127.0.0.2",
            "localhost.attacker.example",
            "",
            "[::2]",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
        let p = HostPolicy::for_bind("127.0.0.1:5002".parse().unwrap(), &["box.lan".into()]);
        assert!(p.allows("box.lan:5002"));
    }

    #[test]
    fn other_binds_take_the_listed_hosts_or_any() {
        let any = HostPolicy::for_bind("0.0.0.0:5002".parse().unwrap(), &[]);
        assert!(any.allows("whatever.example"));
        let listed = HostPolicy::for_bind("10.0.0.5:5002".parse().unwrap(), &["orch.lan".into()]);
        assert!(listed.allows("orch.lan:5002"));
        assert!(listed.allows("10.0.0.5:5002"));
        assert!(!listed.allows("attacker.example"));
    }
}
