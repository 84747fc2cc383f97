//! The HTTP edge: CORS, the token, body limits, decoding the path, and writing the answer.
//! Everything a request must pass before a route sees it is decided here, in this order:
//! path decoding (400), preflight, foreign origin (403), token (401), declared size (413),
//! body read (413), route.

use std::io::{Cursor, Read};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;
use tiny_http::{Header, Response, StatusCode};

use super::routes::{self, Body, Reply};
use super::Ctx;

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The largest webhook body accepted: Plane sends the whole work item, description included.
const MAX_WEBHOOK_BODY: usize = 1024 * 1024;

/// The most bytes of an unwanted body read only to throw them away.
const DISCARD_MAX: u64 = 1024 * 1024;

/// tiny_http reads bodies up to this size itself before handing the request over; larger or
/// chunked ones are read from the socket by whoever handles the request.
const BUFFERED_BY_TINY_HTTP: usize = 1024;

fn header(rq: &tiny_http::Request, name: &'static str) -> Option<String> {
    rq.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
}

fn is_state_changing(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Whether the (decoded) path needs the token: everything but the two health paths. Decided
/// on decoded segments, so `/%61pi/...` is no way around it.
fn needs_token(segments: &[String]) -> bool {
    !matches!(
        segments
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["health"] | ["orchestrator", "health"]
    )
}

/// Compares the `Authorization` header with the token in constant time.
fn authorized(token: &str, authorization: Option<&str>) -> bool {
    let Some((scheme, given)) = authorization.and_then(|a| a.trim().split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
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

/// What the edge decided before any route runs.
enum Gate {
    /// Answer this, without reading the body.
    Answer(Reply),
    /// Go on to the route.
    Pass,
}

fn gate(ctx: &Ctx, method: &str, segments: &[String], rq: &tiny_http::Request) -> Gate {
    if method == "OPTIONS" {
        return Gate::Answer(Reply {
            status: 204,
            body: Body::Empty,
            allow: None,
        });
    }
    if let Some(origin) = header(rq, "Origin") {
        if is_state_changing(method) && !ctx.origin_allowed(&origin) {
            return Gate::Answer(Reply::error(
                403,
                "forbidden",
                &format!(
                    "requests from the web page at {origin} may not change tickets: \
                     add it to api.cors_origins if it is your dashboard"
                ),
            ));
        }
    }
    // Plane cannot send the API token: its webhooks are checked by their signature instead.
    let webhook = is_webhook(ctx, segments);
    if let Some(token) = &ctx.token {
        if needs_token(segments)
            && !webhook
            && !authorized(token, header(rq, "Authorization").as_deref())
        {
            return Gate::Answer(Reply::error(
                401,
                "unauthorized",
                "this API needs \"Authorization: Bearer <token>\" with the token set in the \
                 server's environment",
            ));
        }
    }
    if rq.body_length().is_some_and(|n| n > body_limit(webhook)) {
        return Gate::Answer(too_large(body_limit(webhook)));
    }
    Gate::Pass
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

/// Whether reading (or discarding) the body means waiting on the client's socket.
fn body_is_streamed(rq: &tiny_http::Request) -> bool {
    match rq.body_length() {
        Some(0) => false,
        Some(n) => n > BUFFERED_BY_TINY_HTTP || header(rq, "Expect").is_some(),
        None => header(rq, "Transfer-Encoding").is_some(),
    }
}

/// Counts a request finished on its own thread as done, even if it panicked.
struct Inflight<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Handles one request from a worker. A request whose body still has to come over the
/// network is finished on its own thread, so a slow uploader never holds a worker.
pub(super) fn handle(ctx: &Arc<Ctx>, rq: tiny_http::Request) {
    if body_is_streamed(&rq) {
        log::debug!(
            "{} {}: reading its body on a thread of its own",
            rq.method(),
            rq.url()
        );
        ctx.inflight.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::clone(ctx);
        let spawned = std::thread::Builder::new()
            .name("plane-orch-upload".into())
            .spawn(move || {
                let _done = Inflight(&shared.inflight);
                finish(&shared, rq);
            });
        if let Err(e) = spawned {
            // The request went down with the closure: tiny_http answers a dropped one 500.
            ctx.inflight.fetch_sub(1, Ordering::SeqCst);
            log::error!("cannot start a thread for a request: {e}");
        }
    } else {
        finish(ctx, rq);
    }
}

fn finish(ctx: &Ctx, mut rq: tiny_http::Request) {
    let started = Instant::now();
    let method = rq.method().as_str().to_ascii_uppercase();
    let url = rq.url().to_string();
    let reply = match split_url(&url) {
        Err(reply) => reply,
        Ok((segments, query)) => match gate(ctx, &method, &segments, &rq) {
            Gate::Answer(reply) => {
                discard_body(&mut rq);
                reply
            }
            Gate::Pass => match read_body(&mut rq, body_limit(is_webhook(ctx, &segments))) {
                Err(reply) => reply,
                Ok(body) => {
                    let headers: Vec<(String, String)> = rq
                        .headers()
                        .iter()
                        .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                        .collect();
                    routes::route(
                        ctx,
                        &routes::Request {
                            method: &method,
                            segments: &segments,
                            query: &query,
                            headers: &headers,
                            body: &body,
                        },
                    )
                }
            },
        },
    };
    let status = reply.status;
    let origin = header(&rq, "Origin").filter(|o| ctx.origin_allowed(o));
    let response = build(reply, origin.as_deref(), method == "OPTIONS");
    if let Err(e) = rq.respond(response) {
        log::debug!("{method} {url}: cannot send the answer: {e}");
    }
    ctx.metrics.request(status);
    log::debug!(
        "{method} {url} -> {status} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

/// Reads and drops what is left of a body that will not be used, at most `DISCARD_MAX`
/// bytes. The connection is kept alive for the client's next request, which starts right
/// after this body: a chunked body left unread would be taken for that request. (A body with
/// a `Content-Length` is drained by tiny_http itself; one still longer than this limit
/// leaves the connection unusable, and tiny_http closes it at the next request.)
fn discard_body(rq: &mut tiny_http::Request) {
    let _ = std::io::copy(&mut rq.as_reader().take(DISCARD_MAX), &mut std::io::sink());
}

/// Reads the body, at most `max` bytes (a chunked or lying client is cut off too).
fn read_body(rq: &mut tiny_http::Request, max: usize) -> Result<Vec<u8>, Reply> {
    let mut body = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX) + 1;
    rq.as_reader()
        .take(limit)
        .read_to_end(&mut body)
        .map_err(|e| {
            Reply::error(
                400,
                "invalid",
                &format!("cannot read the request body: {e}"),
            )
        })?;
    if body.len() > max {
        discard_body(rq);
        return Err(too_large(max));
    }
    Ok(body)
}

fn hdr(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values are ASCII")
}

/// An answer's bytes, shared with the answer cache rather than copied.
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn build(reply: Reply, origin: Option<&str>, preflight: bool) -> Response<Cursor<SharedBytes>> {
    let (bytes, content_type) = match reply.body {
        Body::Json(v) => {
            let mut b = serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec());
            b.push(b'\n');
            (Arc::new(b), Some("application/json"))
        }
        Body::Raw(b) => (b, Some("application/json")),
        Body::Text(t, ct) => (Arc::new(t.into_bytes()), Some(ct)),
        Body::Empty => (Arc::new(Vec::new()), None),
    };
    let len = bytes.len();
    let mut response = Response::new(
        StatusCode(reply.status),
        Vec::new(),
        Cursor::new(SharedBytes(bytes)),
        Some(len),
        None,
    );
    if let Some(ct) = content_type {
        response.add_header(hdr("Content-Type", ct));
    }
    response.add_header(hdr("Cache-Control", "no-store"));
    response.add_header(hdr("Vary", "Origin"));
    if let Some(allow) = reply.allow {
        response.add_header(hdr("Allow", allow));
    }
    if reply.status == 401 {
        response.add_header(hdr("WWW-Authenticate", "Bearer"));
    }
    if let Some(origin) = origin {
        // Only origins from api.cors_origins reach here, so echoing one is safe.
        if origin.bytes().all(|b| b.is_ascii_graphic()) {
            response.add_header(hdr("Access-Control-Allow-Origin", origin));
            if preflight {
                response.add_header(hdr(
                    "Access-Control-Allow-Methods",
                    "GET, POST, DELETE, OPTIONS",
                ));
                response.add_header(hdr(
                    "Access-Control-Allow-Headers",
                    "Content-Type, Authorization",
                ));
                response.add_header(hdr("Access-Control-Max-Age", "600"));
            }
        }
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
    fn only_health_needs_no_token() {
        let needs = |url: &str| needs_token(&split_url(url).unwrap().0);
        assert!(!needs("/health"));
        assert!(!needs("/orchestrator/health/"));
        assert!(needs("/api/pending-tickets"));
        assert!(needs("/%61pi/pending-tickets"));
        assert!(needs("/metrics"));
        assert!(needs("/"));
    }
}
