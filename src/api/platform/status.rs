//! `GET /v1/status`: per tenant its bot, whether the bot is registered, the as_token's state, the
//! job queue and its newest dead jobs with their last error; and the inbox. For operators holding
//! `admin_token`; the same as `openmeet-appservice status --json` (see `crate::status`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use super::error::{ErrorBody, PlatformError};
use crate::app::App;
use crate::status::{self, HomeserverView, Status};

/// Per tenant: its bot, the job queue and its failed jobs; and the inbox. The same as
/// `openmeet-appservice status --json`.
#[utoipa::path(
    get,
    path = "/v1/status",
    operation_id = "get_status",
    tag = "operations",
    responses(
        (status = 200, description = "The daemon's status.", body = Status),
        (status = 401, description = "No bearer token (`missing_token`).", body = ErrorBody),
        (status = 403, description = "Not the admin token (`forbidden`).", body = ErrorBody),
        (status = 404, description = "No admin_token is configured: the route is off (`not_found`).", body = ErrorBody),
        (status = 503, description = "The database could not be reached (`database_unavailable`).", body = ErrorBody),
    ),
    security(("admin_token" = [])),
)]
#[tracing::instrument(name = "platform.status", skip_all)]
pub async fn handler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<Status>, PlatformError> {
    let config = app.config();
    let admin_token = config
        .admin_token
        .as_ref()
        .ok_or(PlatformError::StatusDisabled)?;
    let presented = crate::api::bearer::token(&headers).ok_or(PlatformError::MissingToken)?;
    let same_length = presented.len() == admin_token.expose().len();
    if !(same_length && bool::from(presented.as_bytes().ct_eq(admin_token.expose().as_bytes()))) {
        return Err(PlatformError::AdminOnly);
    }
    let status = status::collect(&app, &HomeserverView::of_daemon(&app)).await?;
    Ok(Json(status))
}
