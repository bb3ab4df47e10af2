//! An HTTP proxy that spreads requests over several upstreams in turn, as a Kubernetes Service
//! spreads them over a Deployment's pods: each request goes to the next upstream, and one that
//! cannot be reached (a replica killed or stopping) is skipped for the one after, as a Service
//! drops a pod that is gone. Listens where Synapse's registration sends its transactions and
//! queries, so the replicas behind it share one address.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use tokio::sync::oneshot;

use super::relay::{Answer, pass_on};

pub struct RoundRobin {
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

struct Shared {
    upstreams: Mutex<Vec<String>>,
    next: AtomicUsize,
    /// Requests answered, per upstream index.
    answered: Mutex<Vec<usize>>,
}

impl RoundRobin {
    /// Listens on 127.0.0.1:`port` (the registered appservice port) in front of `upstreams`.
    pub async fn start(port: u16, upstreams: Vec<String>) -> Self {
        let count = upstreams.len();
        let shared = Arc::new(Shared {
            upstreams: Mutex::new(upstreams),
            next: AtomicUsize::new(0),
            answered: Mutex::new(vec![0; count]),
        });
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => break listener,
                Err(error) if attempts < 100 => {
                    attempts += 1;
                    let _ = error;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(error) => panic!("bind the round-robin proxy on {port}: {error}"),
            }
        };
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
            shared,
            _stop: stop,
        }
    }

    /// Points upstream `index` elsewhere (a replica restarted on another port).
    pub fn replace(&self, index: usize, upstream: String) {
        self.shared
            .upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)[index] = upstream;
    }

    /// Adds an upstream (a replica scaled up).
    pub fn add(&self, upstream: String) {
        self.shared
            .upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(upstream);
        self.shared
            .answered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(0);
    }

    /// How many requests each upstream answered.
    pub fn answered(&self) -> Vec<usize> {
        self.shared
            .answered
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
    let upstreams = shared
        .upstreams
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let first = shared.next.fetch_add(1, Ordering::SeqCst);
    for turn in 0..upstreams.len() {
        let index = (first + turn) % upstreams.len();
        // Only a replica that could not be reached is skipped: one that took the request and
        // failed answers with its own error, as behind a Service.
        let answer = match pass_on(&upstreams[index], &method, &uri, &headers, &body).await {
            Ok(answer) => answer,
            Err(error) if error.is_connect() => continue,
            Err(_) => return bad_gateway(),
        };
        let Ok(answer) = Answer::read(answer).await else {
            return bad_gateway();
        };
        shared
            .answered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)[index] += 1;
        return answer.into_response();
    }
    bad_gateway()
}

fn bad_gateway() -> Response {
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(Body::empty())
        .expect("a valid response")
}
