//! The API's defences: the token, binding, CORS and cross-site requests.

mod common;

use common::Env;

const TOKEN: &str = "s3cret-token";

#[test]
fn with_a_token_the_api_needs_it_and_health_stays_open() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    let s = env.serve(&[], &[("PLANE_ORCH_API_TOKEN", TOKEN)]);
    let none = s.get("/api/pending-tickets");
    none.assert_error(401, "unauthorized");
    assert_eq!(none.header("www-authenticate").as_deref(), Some("Bearer"));
    s.request(
        "GET",
        "/api/pending-tickets",
        &[("Authorization", "Bearer wrong")],
        None,
    )
    .assert_error(401, "unauthorized");
    s.get("/metrics").assert_error(401, "unauthorized");
    let encoded = s.raw(
        b"GET /%61pi/pending-tickets HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(encoded.starts_with("HTTP/1.1 401"), "{encoded}");
    let before = env.state_bytes();
    s.request(
        "POST",
        "/api/approve/A-1",
        &[("Authorization", &format!("Bearer {TOKEN}x"))],
        None,
    )
    .assert_error(401, "unauthorized");
    assert_eq!(
        env.state_bytes(),
        before,
        "a refused request changes nothing"
    );

    let auth = format!("Bearer {TOKEN}");
    let ok = s.request(
        "GET",
        "/api/pending-tickets",
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json().as_array().unwrap().len(), 1);
    assert_eq!(
        s.request("GET", "/metrics", &[("Authorization", &auth)], None)
            .status,
        200
    );
    let approved = s.request(
        "POST",
        "/api/approve/A-1",
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(env.ticket("A-1")["status"], "active");

    assert_eq!(s.get("/health").status, 200);
    assert_eq!(s.get("/orchestrator/health").status, 200);
}

#[test]
fn a_token_env_from_the_config_is_honoured() {
    let env = Env::for_serve("api:\n  token_env: MY_DASH_TOKEN\n");
    let s = env.serve(&[], &[("MY_DASH_TOKEN", TOKEN)]);
    s.get("/api/tickets").assert_error(401, "unauthorized");
    let ok = s.request(
        "GET",
        "/api/tickets",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        None,
    );
    assert_eq!(ok.status, 200);
}

#[test]
fn binding_beyond_loopback_without_a_token_is_refused() {
    let env = Env::for_serve("");
    let out = env
        .serve_command(&["--bind", "0.0.0.0:0"], &[])
        .output()
        .expect("run serve");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "it must not start listening");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{err}"
    );
    assert!(err.contains("PLANE_ORCH_API_TOKEN"), "{err}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let env = Env::for_serve("");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = env
        .serve_command(&["--bind", &addr], &[])
        .output()
        .expect("run serve");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "address {addr} is in use: stop the other server or pass --bind"
        )),
        "{err}"
    );
}

#[test]
fn an_allowed_origin_gets_cors_headers_and_a_preflight_answer() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    let s = env.serve(&[], &[]);
    let origin = "http://localhost:5173";
    let get = s.request("GET", "/api/pending-tickets", &[("Origin", origin)], None);
    assert_eq!(get.status, 200);
    assert_eq!(get.header_all("access-control-allow-origin"), [origin]);
    assert!(get.header_all("vary").iter().any(|v| v.contains("Origin")));

    let pre = s.request(
        "OPTIONS",
        "/api/approve/A-1",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        None,
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header_all("access-control-allow-origin"), [origin]);
    assert_eq!(
        pre.header("access-control-allow-methods").as_deref(),
        Some("GET, POST, DELETE, OPTIONS")
    );
    assert_eq!(
        pre.header("access-control-allow-headers").as_deref(),
        Some("Content-Type, Authorization")
    );
    assert_eq!(pre.header("access-control-max-age").as_deref(), Some("600"));
    assert_eq!(
        env.ticket("A-1")["status"],
        "pending",
        "a preflight changes nothing"
    );

    // An allowed page may approve; the answer carries the header once.
    let post = s.request("POST", "/api/approve/A-1", &[("Origin", origin)], None);
    assert_eq!(post.status, 200, "{}", post.body);
    assert_eq!(post.header_all("access-control-allow-origin"), [origin]);
}

#[test]
fn a_foreign_origin_gets_no_cors_headers_and_cannot_change_anything() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    env.add("A-2", "two");
    let s = env.serve(&[], &[]);
    let evil = "http://evil.example";
    let get = s.request("GET", "/api/pending-tickets", &[("Origin", evil)], None);
    assert_eq!(get.status, 200);
    assert!(get.header_all("access-control-allow-origin").is_empty());

    let before = env.state_bytes();
    let post = s.request("POST", "/api/approve/A-1", &[("Origin", evil)], None);
    post.assert_error(403, "forbidden");
    assert!(post.header_all("access-control-allow-origin").is_empty());
    s.request("DELETE", "/api/tickets/A-1", &[("Origin", evil)], None)
        .assert_error(403, "forbidden");
    s.request(
        "POST",
        "/api/tickets",
        &[("Origin", "null")],
        Some(br#"{"id": "A-3", "title": "t"}"#),
    )
    .assert_error(403, "forbidden");
    let pre = s.request(
        "OPTIONS",
        "/api/approve/A-1",
        &[("Origin", evil), ("Access-Control-Request-Method", "POST")],
        None,
    );
    assert!(pre.header_all("access-control-allow-origin").is_empty());
    assert_eq!(env.state_bytes(), before);

    // Scripts and curl send no Origin and pass.
    assert_eq!(s.post("/api/approve/A-2", None).status, 200);
    assert_eq!(env.ticket("A-2")["status"], "active");
    assert_eq!(env.ticket("A-1")["status"], "pending");
}

#[test]
fn a_refused_request_with_a_chunked_body_leaves_the_connection_usable() {
    let env = Env::for_serve("");
    env.add("A-1", "one");
    let s = env.serve(&[], &[]);
    let answer = s.raw(
        b"POST /api/approve/A-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n\
          Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
          GET /api/tickets/A-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    let statuses: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .collect();
    assert_eq!(
        statuses,
        ["HTTP/1.1 403 Forbidden", "HTTP/1.1 200 OK"],
        "{answer}"
    );
    assert_eq!(env.ticket("A-1")["status"], "pending");
}
