//! A push service stand-in: a real HTTP/1.1 server (hyper) on loopback that
//! records every request — method, path, headers, body — and answers each
//! path as told: a status, a sequence of statuses, or never.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names (lower case) and values, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// Every byte of the request as recorded: to search for things that must
    /// not be there.
    pub fn bytes(&self) -> Vec<u8> {
        let mut all = format!("{} {}\r\n", self.method, self.path).into_bytes();
        for (k, v) in &self.headers {
            all.extend(format!("{k}: {v}\r\n").into_bytes());
        }
        all.extend(&self.body);
        all
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the server answers one path.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Always this status.
    Status(u16),
    /// These statuses in turn, then the last one for ever.
    Sequence(VecDeque<u16>),
    /// Never: the request is recorded and the connection left hanging.
    Hang,
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    answers: Mutex<HashMap<String, Answer>>,
    arrived: Notify,
}

/// The running server; stops when dropped.
pub struct PushServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for PushServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PushServer {
    /// Binds 127.0.0.1 on a free port; every path answers 201 Created (as a
    /// Web Push service does) until told otherwise.
    pub async fn start() -> PushServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let serving = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        PushServer { addr, state, task }
    }

    /// The endpoint URL for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers requests to `path` this way from now on.
    pub fn answer(&self, path: &str, answer: Answer) {
        self.state
            .answers
            .lock()
            .expect("lock")
            .insert(path.to_owned(), answer);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// The requests so far to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `path` has had at least `n` requests (panics after `secs`).
    pub async fn wait_for(&self, path: &str, n: usize, secs: u64) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let arrived = self.state.arrived.notified();
            let seen = self.requests_to(path);
            if seen.len() >= n {
                return seen;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("{path}: {} of {n} requests in {secs} s", seen.len());
            }
        }
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    state.requests.lock().expect("lock").push(recorded);
    state.arrived.notify_waiters();
    let status = {
        let mut answers = state.answers.lock().expect("lock");
        match answers.get_mut(&path) {
            None => Some(201),
            Some(Answer::Status(s)) => Some(*s),
            Some(Answer::Sequence(seq)) => {
                let s = if seq.len() > 1 {
                    seq.pop_front()
                } else {
                    seq.front().copied()
                };
                Some(s.unwrap_or(201))
            }
            Some(Answer::Hang) => None,
        }
    };
    let Some(status) = status else {
        let never: Infallible = std::future::pending().await;
        match never {}
    };
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    Ok(response)
}
