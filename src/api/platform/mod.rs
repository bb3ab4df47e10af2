//! OpenMeet core → us: the internal platform API on `listen.platform`. Errors are JSON
//! `{"error": "<sentence>", "code": "<machine code>"}`.
//!
//! Tenant-scoped calls (a tenant's `api_token` reaches only that tenant) declare rooms, moderate
//! (redactions; the audit log) and read jobs; `GET /v1/status` is for operators (behind `admin_token`).

mod auth;
mod call;
mod error;
mod feed;
mod job;
mod messages;
pub(crate) mod moderation;
pub(crate) mod openapi;
mod page;
mod params;
mod rooms;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use self::error::PlatformError;
use crate::app::App;

/// Requests larger than this are refused (413).
const BODY_LIMIT: usize = 1024 * 1024;

/// axum answers a request its extractors cannot read (an oversized body, a job id that is not a
/// number, a path segment that is not UTF-8) itself, in plain text; the platform gets JSON like
/// every error.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return PlatformError::TooLarge(BODY_LIMIT).into_response();
    }
    let text = axum::body::to_bytes(response.into_body(), 2048)
        .await
        .unwrap_or_default();
    PlatformError::Unreadable {
        status,
        reason: String::from_utf8_lossy(&text).trim().to_owned(),
    }
    .into_response()
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/status", get(status::handler))
        .route(
            "/v1/tenants/{tenant}/rooms/{kind}/{slug}",
            get(rooms::get_room::handler)
                .put(rooms::put_room::handler)
                .delete(rooms::delete_room::handler),
        )
        .route(
            "/v1/tenants/{tenant}/rooms/{kind}/{slug}/members/{user_id}",
            axum::routing::put(rooms::member::put).delete(rooms::member::delete),
        )
        .route(
            "/v1/tenants/{tenant}/rooms/{kind}/{slug}/rename",
            axum::routing::post(rooms::rename::handler),
        )
        .route(
            "/v1/tenants/{tenant}/rooms/{kind}/{slug}/messages",
            axum::routing::post(messages::post),
        )
        .route(
            "/v1/tenants/{tenant}/rooms/{kind}/{slug}/redactions",
            axum::routing::post(moderation::redactions::room),
        )
        .route(
            "/v1/tenants/{tenant}/redactions",
            axum::routing::post(moderation::redactions::tenant),
        )
        .route(
            "/v1/tenants/{tenant}/moderation",
            get(moderation::moderation_log::handler),
        )
        .route("/v1/tenants/{tenant}/events", get(feed::handler))
        .route(
            "/v1/tenants/{tenant}/rooms/{kind}/{slug}/bans/{user_id}",
            axum::routing::put(moderation::bans::put_in_room)
                .delete(moderation::bans::delete_in_room),
        )
        .route(
            "/v1/tenants/{tenant}/rooms/{kind}/{slug}/mutes/{user_id}",
            axum::routing::put(moderation::mutes::put_in_room)
                .delete(moderation::mutes::delete_in_room),
        )
        .route(
            "/v1/tenants/{tenant}/bans/{user_id}",
            axum::routing::put(moderation::bans::put_tenant_wide)
                .delete(moderation::bans::delete_tenant_wide),
        )
        .route(
            "/v1/tenants/{tenant}/mutes/{user_id}",
            axum::routing::put(moderation::mutes::put_tenant_wide)
                .delete(moderation::mutes::delete_tenant_wide),
        )
        .route("/v1/jobs/{id}", get(job::get))
        .route("/v1/openapi.json", get(openapi::served))
        .fallback(|| async { PlatformError::UnknownPath.into_response() })
        .method_not_allowed_fallback(|| async { PlatformError::MethodNotAllowed.into_response() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(app)
}
