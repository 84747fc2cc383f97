//! A receiver for notifications on 127.0.0.1: records every request (method, path, headers,
//! body) and answers with the statuses it is told, in turn.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Got {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

struct Shared {
    got: Mutex<Vec<Got>>,
    /// Statuses to answer with, in turn; when empty, `then`.
    script: Mutex<VecDeque<u16>>,
    then: Mutex<u16>,
    stop: AtomicBool,
}

/// The receiver; stops on drop.
pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver that answers 200 to everything.
    pub fn new() -> Receiver {
        Receiver::scripted(&[], 200)
    }

    /// Answers `first` in turn, then `then` to every later request.
    pub fn scripted(first: &[u16], then: u16) -> Receiver {
        let server = super::loopback::server();
        let port = server.server_addr().to_ip().expect("an ip address").port();
        let shared = Arc::new(Shared {
            got: Mutex::new(Vec::new()),
            script: Mutex::new(first.iter().copied().collect()),
            then: Mutex::new(then),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                let Ok(Some(mut rq)) = server.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let mut body = Vec::new();
                let _ = rq.as_reader().read_to_end(&mut body);
                let status = s
                    .script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(*s.then.lock().unwrap());
                s.got.lock().unwrap().push(Got {
                    method: rq.method().to_string(),
                    path: rq.url().to_string(),
                    headers: rq
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                    status,
                });
                let _ = rq.respond(tiny_http::Response::from_string("ok").with_status_code(status));
            }
        });
        Receiver {
            port,
            shared,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// From now on, answer `status` to every request.
    pub fn answer(&self, status: u16) {
        self.shared.script.lock().unwrap().clear();
        *self.shared.then.lock().unwrap() = status;
    }

    /// Every request so far.
    pub fn got(&self) -> Vec<Got> {
        self.shared.got.lock().unwrap().clone()
    }

    /// The requests answered with a 2xx.
    pub fn delivered(&self) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| (200..300).contains(&g.status))
            .collect()
    }

    /// Waits up to `limit` for at least `n` requests; returns whether they came.
    pub fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.got().len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.got().len() >= n
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
