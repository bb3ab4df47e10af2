//! `GET /v1/status`: the inbox at a glance, for operators holding `admin_token`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::error::PlatformError;
use crate::app::App;
use crate::store::inbox;

pub async fn handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Value>, PlatformError> {
    let config = app.config();
    let admin_token = config
        .admin_token
        .as_ref()
        .ok_or(PlatformError::StatusDisabled)?;
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(PlatformError::MissingToken)?;
    let same_length = presented.len() == admin_token.expose().len();
    if !(same_length && bool::from(presented.as_bytes().ct_eq(admin_token.expose().as_bytes()))) {
        return Err(PlatformError::AdminOnly);
    }
    let (pending, oldest) = app
        .store
        .run(inbox::pending_summary)
        .await
        .map_err(|_| PlatformError::DatabaseUnavailable)?;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "database": app.config().database.url.describe(),
        "inbox": {"pending": pending, "oldest_received_at_ms": oldest},
        "ready": {"as_token": app.health.token_accepted(), "ping": app.health.ping_ok()},
        "tenants": app.config().tenants.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
    })))
}
