//! `POST /_matrix/client/v3/rooms/{roomId}/report`
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3roomsroomidreport>
//!
//! A member reports a room. A managed room's tenant hears of it from its members
//! (`report.created`, with no event); the homeserver gets every report (`crate::reports`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

use super::error::{looped, missing_token};
use super::request;
use crate::app::App;

#[tracing::instrument(name = "client.report_room", skip_all, fields(room_id = %room_id))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Path(room_id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if request::came_back(&headers) {
        return looped();
    }
    match request::report(&headers, &uri, room_id, None, body) {
        Some(report) => crate::reports::report_room(&app, report)
            .await
            .into_response(),
        None => missing_token(),
    }
}
