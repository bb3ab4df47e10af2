//! `POST /_matrix/client/v3/users/{userId}/report`
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3usersuseridreport>
//!
//! A user report is passed straight through to the homeserver: a user is not a room of any
//! tenant, and telling the tenants a reporter shares rooms with would tell them of users in
//! other tenants' rooms too (`crate::reports::report_user`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

use super::error::{looped, missing_token};
use super::request;
use crate::app::App;

#[tracing::instrument(name = "client.report_user", skip_all, fields(user_id = %user_id))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if request::came_back(&headers) {
        return looped();
    }
    match request::report(&headers, &uri, user_id, None, body) {
        Some(report) => crate::reports::report_user(&app, report)
            .await
            .into_response(),
        None => missing_token(),
    }
}
