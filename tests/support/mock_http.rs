//! A mock HTTP server for the systems lever calls that cannot run here (Jenkins, deploy
//! engines, Graphite): its own runtime and thread, a free loopback port, a state the test can
//! look at, and every request recorded (method, path, query, body, Authorization, the status
//! it answered). Answers are built from recorded payloads by each test's `Respond` function.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// How long [`Mock::wait_for`] waits before failing: covers a few polls with backoff.
pub const MOCK_WAIT: Duration = Duration::from_secs(40);
/// A request as a mock saw it, with the status it answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub body: String,
    pub authorization: Option<String>,
    pub status: u16,
}

/// A mock's answer.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, value: Value) -> Answer {
        Answer {
            status,
            location: None,
            body: value.to_string(),
        }
    }

    pub fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            location: None,
            body: body.to_owned(),
        }
    }
}

/// How a mock answers: its state, its root URL, the request (without status).
pub type Respond<S> = fn(&mut S, &str, &Seen) -> Answer;

struct Inner<S> {
    root: String,
    respond: Respond<S>,
    shared: Mutex<(S, Vec<Seen>)>,
}

pub struct Mock<S: Send + 'static> {
    inner: Arc<Inner<S>>,
    _runtime: tokio::runtime::Runtime,
}

impl<S: Send + 'static> Mock<S> {
    pub fn start(state: S, respond: Respond<S>) -> Mock<S> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let inner = Arc::new(Inner {
            root: format!("http://127.0.0.1:{port}/"),
            respond,
            shared: Mutex::new((state, Vec::new())),
        });
        let app = axum::Router::new()
            .fallback(handle::<S>)
            .with_state(inner.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Mock {
            inner,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn root(&self) -> &str {
        &self.inner.root
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.shared.lock().unwrap().1.clone()
    }

    /// Looks at or changes the mock's state.
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.inner.shared.lock().unwrap().0)
    }

    /// Waits (against a hang) until `done` holds for the state and the requests seen.
    pub fn wait_for(&self, what: &str, done: impl Fn(&S, &[Seen]) -> bool) {
        let deadline = Instant::now() + MOCK_WAIT;
        loop {
            {
                let shared = self.inner.shared.lock().unwrap();
                if done(&shared.0, &shared.1) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the mock never saw {what}; requests: {:#?}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn handle<S: Send + 'static>(
    State(inner): State<Arc<Inner<S>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut request = Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        status: 0,
    };
    let answer = {
        let mut shared = inner.shared.lock().unwrap();
        let answer = (inner.respond)(&mut shared.0, &inner.root, &request);
        request.status = answer.status;
        shared.1.push(request);
        answer
    };
    let status = StatusCode::from_u16(answer.status).expect("a valid status");
    let mut response = (status, answer.body).into_response();
    let content_type = if response.status().is_success() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    if let Some(location) = answer.location {
        response
            .headers_mut()
            .insert(header::LOCATION, location.parse().unwrap());
    }
    response
}
