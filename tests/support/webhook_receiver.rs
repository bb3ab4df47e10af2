//! A webhook receiver for tests: an axum server that records every POST, verifies its Standard
//! Webhooks signature with its own HMAC (ring, not the daemon's `webhooks::sign`), answers with
//! the status the test sets per tenant, and can hold answers until the test releases them.
//! It also notes when two requests of one tenant were in flight at once (which must never be).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    /// `webhook-id`: `{tenant}-{seq}`.
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: Vec<u8>,
    /// Every header as it arrived (names lowercase, values that are not text left out).
    pub headers: Vec<(String, String)>,
    pub json: Value,
    /// The status answered (0: held and never answered, e.g. the daemon died).
    pub answered: u16,
}

impl Received {
    pub fn tenant(&self) -> &str {
        self.json["tenant"].as_str().unwrap_or_default()
    }

    /// Whether the signature verifies with `secret` (`whsec_<base64>` or a raw string).
    pub fn signed_with(&self, secret: &str) -> bool {
        let key = match secret.strip_prefix("whsec_") {
            Some(encoded) => STANDARD.decode(encoded).expect("a base64 secret"),
            None => secret.as_bytes().to_vec(),
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
        let message = format!("{}.{}.", self.id, self.timestamp).into_bytes();
        let message = [message, self.body.clone()].concat();
        self.signature.split(' ').any(|entry| {
            entry
                .strip_prefix("v1,")
                .and_then(|tag| STANDARD.decode(tag).ok())
                .is_some_and(|tag| hmac::verify(&key, &message, &tag).is_ok())
        })
    }
}

struct Shared {
    log: Mutex<Vec<Received>>,
    /// Status per tenant (200 when not set), and per `webhook-id` (before the tenant's).
    statuses: Mutex<HashMap<String, u16>>,
    event_statuses: Mutex<HashMap<String, u16>>,
    /// While true, answers wait.
    held: watch::Sender<bool>,
    /// Requests in flight per tenant, and whether two of one tenant ever overlapped.
    in_flight: Mutex<HashMap<String, usize>>,
    overlapped: Mutex<Vec<String>>,
    arrived: watch::Sender<usize>,
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            statuses: Mutex::new(HashMap::new()),
            event_statuses: Mutex::new(HashMap::new()),
            held: watch::channel(false).0,
            in_flight: Mutex::new(HashMap::new()),
            overlapped: Mutex::new(Vec::new()),
            arrived: watch::channel(0).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("its address")
        );
        let app = Router::new()
            .route("/hook", axum::routing::post(receive))
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

    /// Answers `status` to `tenant`'s requests from now on.
    pub fn answer(&self, tenant: &str, status: u16) {
        lock(&self.shared.statuses).insert(tenant.to_owned(), status);
    }

    /// Answers `status` to the requests carrying `webhook-id: id`, whatever the tenant's status.
    pub fn answer_event(&self, id: &str, status: u16) {
        lock(&self.shared.event_statuses).insert(id.to_owned(), status);
    }

    /// Holds every answer until [`Receiver::release`].
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.log).clone()
    }

    /// The ids acknowledged (answered 2xx), in order.
    pub fn acknowledged(&self, tenant: &str) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|r| r.tenant() == tenant && (200..300).contains(&r.answered))
            .map(|r| r.id)
            .collect()
    }

    /// The tenants of which two requests were ever in flight at once.
    pub fn overlapped(&self) -> Vec<String> {
        lock(&self.shared.overlapped).clone()
    }

    /// Waits until at least `count` requests arrived (answered or not).
    pub async fn wait_for_requests(&self, count: usize, within: Duration) {
        let mut arrived = self.shared.arrived.subscribe();
        let waited = tokio::time::timeout(within, arrived.wait_for(|n| *n >= count))
            .await
            .is_ok_and(|result| result.is_ok());
        assert!(
            waited,
            "the receiver got {} request(s) within {within:?}, not {count}: {:?}",
            *arrived.borrow(),
            self.received()
                .iter()
                .map(|r| (&r.id, r.answered))
                .collect::<Vec<_>>()
        );
    }

    /// Waits until `tenant` has `count` acknowledged requests.
    pub async fn wait_for_acknowledged(&self, tenant: &str, count: usize, within: Duration) {
        super::eventually(
            &format!("{count} acknowledged webhook(s) of {tenant}"),
            within,
            || async { (self.acknowledged(tenant).len() >= count).then_some(()) },
        )
        .await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let tenant = json["tenant"].as_str().unwrap_or_default().to_owned();
    let index = {
        let mut log = lock(&shared.log);
        log.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp").parse().unwrap_or(-1),
            signature: header("webhook-signature"),
            body: body.to_vec(),
            headers: headers
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect(),
            json,
            answered: 0,
        });
        log.len() - 1
    };
    // Counted out when this request ends, also when the daemon dies and axum drops it.
    let _in_flight = InFlight::enter(&shared, &tenant);
    shared.arrived.send_modify(|n| *n += 1);
    let mut held = shared.held.subscribe();
    let _ = held.wait_for(|held| !*held).await;
    let id = header("webhook-id");
    let status = lock(&shared.event_statuses)
        .get(&id)
        .or(lock(&shared.statuses).get(&tenant))
        .copied()
        .unwrap_or(200);
    lock(&shared.log)[index].answered = status;
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

struct InFlight {
    shared: Arc<Shared>,
    tenant: String,
}

impl InFlight {
    fn enter(shared: &Arc<Shared>, tenant: &str) -> Self {
        let mut in_flight = lock(&shared.in_flight);
        let count = in_flight.entry(tenant.to_owned()).or_default();
        *count += 1;
        if *count > 1 {
            lock(&shared.overlapped).push(tenant.to_owned());
        }
        Self {
            shared: Arc::clone(shared),
            tenant: tenant.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *lock(&self.shared.in_flight)
            .entry(self.tenant.clone())
            .or_default() -= 1;
    }
}
