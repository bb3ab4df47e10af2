//! `GET /_matrix/app/v1/thirdparty/{protocol,user,location}[/{protocol}]`
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#third-party-networks>
//!
//! OpenMeet bridges no third-party network: no protocol exists, and lookups find nothing.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;

pub async fn protocol() -> Response {
    ApiError::NotFound("this appservice bridges no third-party protocol").into_response()
}

pub async fn lookup() -> Json<serde_json::Value> {
    Json(json!([]))
}
