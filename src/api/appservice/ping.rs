//! `POST /_matrix/app/v1/ping`
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#post_matrixappv1ping>
//!
//! Synapse calls this when someone (our preflight) asks it to ping us; answering proves the
//! round trip and the hs_token.

use axum::Json;

use super::error::empty_object;

#[tracing::instrument(name = "as.ping", skip_all)]
pub async fn handler() -> Json<serde_json::Value> {
    tracing::debug!("answered Synapse's ping");
    empty_object()
}
