//! A tiny_http server on 127.0.0.1 at a free port, for the fakes of the tests and the bench.

/// Binds 127.0.0.1:0 with TCP_NODELAY, as real servers answer: tiny_http writes an answer's
/// head and body apart, and without it the body waits for the client's delayed ACK.
pub fn server() -> tiny_http::Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    socket2::SockRef::from(&listener)
        .set_tcp_nodelay(true)
        .expect("TCP_NODELAY");
    tiny_http::Server::from_listener(listener, None).expect("serve on 127.0.0.1")
}
