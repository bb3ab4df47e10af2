//! OpenMeet core → us: the internal platform API on `listen.platform`. Errors are JSON
//! `{"error": "<sentence>", "code": "<machine code>"}`.
//!
//! Tenant-scoped calls (a tenant's `api_token` reaches only that tenant) declare rooms, moderate
//! (redactions; the audit log), move a user to a new Matrix id and read jobs; `GET /v1/status` is for operators (behind `admin_token`).

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
mod reports;
mod rooms;
mod status;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// Every operation with its route, written once: axum routes each handler by the path its
/// `#[utoipa::path]` names, and the OpenAPI document (`openapi.rs`) lists the same operations.
fn operations() -> OpenApiRouter<Arc<App>> {
    use self::moderation::{bans, moderation_log, mutes, redactions, staff};
    use self::rooms::{delete_room, get_room, member, put_room, rename};
    use self::users::{direct_message, move_user};
    OpenApiRouter::with_openapi(openapi::PlatformApi::openapi())
        .routes(routes!(
            get_room::handler,
            put_room::handler,
            delete_room::handler
        ))
        .routes(routes!(member::put, member::delete))
        .routes(routes!(rename::handler))
        .routes(routes!(messages::post))
        .routes(routes!(redactions::room))
        .routes(routes!(redactions::tenant))
        .routes(routes!(bans::put_in_room, bans::delete_in_room))
        .routes(routes!(bans::put_tenant_wide, bans::delete_tenant_wide))
        .routes(routes!(mutes::put_in_room, mutes::delete_in_room))
        .routes(routes!(mutes::put_tenant_wide, mutes::delete_tenant_wide))
        .routes(routes!(moderation_log::handler))
        .routes(routes!(staff::put, staff::delete, staff::get))
        .routes(routes!(staff::list))
        .routes(routes!(move_user::handler))
        .routes(routes!(reports::list))
        .routes(routes!(direct_message::post))
        .routes(routes!(feed::handler))
        .routes(routes!(job::get))
        .routes(routes!(status::handler))
        .routes(routes!(openapi::served))
}

pub fn router(app: Arc<App>) -> Router {
    let (routes, _) = operations().split_for_parts();
    routes
        .fallback(|| async { PlatformError::UnknownPath.into_response() })
        .method_not_allowed_fallback(|| async { PlatformError::MethodNotAllowed.into_response() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(app)
}
