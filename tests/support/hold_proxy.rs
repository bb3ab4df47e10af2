//! An HTTP proxy in front of the real Synapse that holds the requests whose path contains a
//! pattern until the test releases them, so a race (a DELETE while `createRoom` is in flight) is
//! forced rather than hoped for. Everything else passes straight through. With
//! [`HoldProxy::hold_answers`] the request reaches Synapse and only its answer is held: the
//! homeserver has acted, the daemon has not heard (a crash between a send and storing its result).

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

use super::relay::{Answer, pass_on};

pub struct HoldProxy {
    /// Base URL, `http://127.0.0.1:<port>`, for `homeserver.url`.
    pub url: String,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

struct Shared {
    upstream: String,
    pattern: Mutex<Option<String>>,
    /// Whether held requests go to Synapse first and only their answers wait.
    after: std::sync::atomic::AtomicBool,
    /// How many requests are held now.
    held: watch::Sender<usize>,
    released: watch::Sender<bool>,
    /// The JSON answers to the held requests, once Synapse gave them.
    answers: Mutex<Vec<Value>>,
    /// The path of every request that came through, in order.
    paths: Mutex<Vec<String>>,
}

impl HoldProxy {
    pub async fn start(upstream: &str) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            pattern: Mutex::new(None),
            after: std::sync::atomic::AtomicBool::new(false),
            held: watch::channel(0).0,
            released: watch::channel(false).0,
            answers: Mutex::new(Vec::new()),
            paths: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            url,
            shared,
            _stop: stop,
        }
    }

    /// From now on, requests whose path contains `pattern` wait for [`HoldProxy::release`].
    pub fn hold(&self, pattern: &str) {
        self.hold_with(pattern, false);
    }

    /// From now on, requests whose path contains `pattern` go to Synapse at once, and Synapse's
    /// answers wait for [`HoldProxy::release`]; [`HoldProxy::wait_held`] counts held answers.
    pub fn hold_answers(&self, pattern: &str) {
        self.hold_with(pattern, true);
    }

    fn hold_with(&self, pattern: &str, after: bool) {
        self.shared.released.send_replace(false);
        self.shared
            .after
            .store(after, std::sync::atomic::Ordering::SeqCst);
        *self
            .shared
            .pattern
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(pattern.to_owned());
    }

    /// Waits until `count` requests are held.
    pub async fn wait_held(&self, count: usize) {
        let mut held = self.shared.held.subscribe();
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            held.wait_for(|held| *held >= count),
        )
        .await
        .expect("no request to hold arrived within 30 s")
        .expect("the proxy is running");
    }

    /// Lets the held requests (and later ones) through.
    pub fn release(&self) {
        *self
            .shared
            .pattern
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.shared.released.send_replace(true);
    }

    /// How many requests whose path contains `fragment` came through (held or not).
    pub fn seen(&self, fragment: &str) -> usize {
        self.shared
            .paths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|path| path.contains(fragment))
            .count()
    }

    /// What Synapse answered to the requests that were held.
    pub fn held_answers(&self) -> Vec<Value> {
        self.shared
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared
        .paths
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(uri.path().to_owned());
    let held = shared
        .pattern
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_deref()
        .is_some_and(|pattern| uri.path().contains(pattern));
    let after = held && shared.after.load(std::sync::atomic::Ordering::SeqCst);
    if held && !after {
        wait_for_release(&shared).await;
    }
    let answer = pass_on(&shared.upstream, &method, &uri, &headers, &body)
        .await
        .expect("Synapse answers the proxy");
    let answer = Answer::read(answer).await.expect("Synapse's answer body");
    if held {
        shared
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(serde_json::from_slice(&answer.body).unwrap_or(Value::Null));
        if after {
            wait_for_release(&shared).await;
        }
        shared.held.send_modify(|held| *held -= 1);
    }
    answer.into_response()
}

/// Counts the request as held until the test releases it.
async fn wait_for_release(shared: &Shared) {
    shared.held.send_modify(|held| *held += 1);
    let mut released = shared.released.subscribe();
    let _ = released.wait_for(|released| *released).await;
}
