//! The operator's reverse proxy in small (docs/operations.md, "Reports reach the tenant"): the
//! three report paths go to the daemon's appservice listener, every other path to Synapse.
//! Clients talk to it as they would to the homeserver's public URL.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use super::relay::{Answer, pass_on};

pub struct PathProxy {
    /// Base URL, `http://127.0.0.1:<port>`: the homeserver as clients see it.
    pub url: String,
    _stop: oneshot::Sender<()>,
}

struct Upstreams {
    synapse: String,
    daemon: String,
}

/// Whether `path` is one of Synapse's report endpoints, as the nginx rule in
/// docs/operations.md matches them.
pub fn is_report_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/_matrix/client/v3/") else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    matches!(
        segments.as_slice(),
        ["rooms", room, "report"] | ["users", room, "report"] if !room.is_empty()
    ) || matches!(
        segments.as_slice(),
        ["rooms", room, "report", event] if !room.is_empty() && !event.is_empty()
    )
}

impl PathProxy {
    /// `synapse` and `daemon` are base URLs (the daemon's appservice listener).
    pub async fn start(synapse: &str, daemon: &str) -> Self {
        let upstreams = Arc::new(Upstreams {
            synapse: synapse.trim_end_matches('/').to_owned(),
            daemon: daemon.trim_end_matches('/').to_owned(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let app = Router::new().fallback(route).with_state(upstreams);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { url, _stop: stop }
    }
}

async fn route(
    State(upstreams): State<Arc<Upstreams>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let upstream = if method == Method::POST && is_report_path(uri.path()) {
        &upstreams.daemon
    } else {
        &upstreams.synapse
    };
    let answer = match pass_on(upstream, &method, &uri, &headers, &body).await {
        Ok(answer) => Answer::read(answer).await,
        Err(error) => Err(error),
    };
    match answer {
        Ok(answer) => answer.into_response(),
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}
