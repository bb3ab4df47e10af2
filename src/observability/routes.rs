//! The metrics listener: `/metrics`, `/health/live`, `/health/ready`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .with_state(app)
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    // The readiness gauges are fresh on every scrape, not only when a probe asked.
    readiness(&app).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}

async fn ready(State(app): State<Arc<App>>) -> impl IntoResponse {
    let (database, as_token, ping) = readiness(&app).await;
    let status = if database && as_token && ping {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"ready": status == StatusCode::OK, "database": database, "as_token": as_token, "ping": ping});
    (status, Json(body))
}

/// The three readiness checks (database, as_token, ping), also set as `openmeet_as_ready`.
async fn readiness(app: &App) -> (bool, bool, bool) {
    let database = matches!(
        tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await,
        Ok(Ok(()))
    );
    let as_token = app.health.token_accepted();
    let ping = app.health.ping_ok();
    for (check, ok) in [
        ("database", database),
        ("as_token", as_token),
        ("ping", ping),
    ] {
        app.metrics
            .ready
            .with_label_values(&[check])
            .set(i64::from(ok));
    }
    (database, as_token, ping)
}
