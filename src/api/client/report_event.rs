//! `POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}`
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3roomsroomidreporteventid>
//!
//! A member reports an event. In a managed room the tenant hears of it (`report.created`) and
//! the homeserver gets it too; elsewhere it is passed through (`crate::reports`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

use super::error::{looped, missing_token};
use super::request;
use crate::app::App;

#[tracing::instrument(name = "client.report_event", skip_all, fields(room_id = %room_id, event_id = %event_id))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Path((room_id, event_id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if request::came_back(&headers) {
        return looped();
    }
    match request::report(&headers, &uri, room_id, Some(event_id), body) {
        Some(report) => crate::reports::report_room(&app, report)
            .await
            .into_response(),
        None => missing_token(),
    }
}
