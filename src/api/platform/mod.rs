//! OpenMeet core → us: the internal platform API on `listen.platform`. Errors are JSON
//! `{"error": "<sentence>", "code": "<machine code>"}`.
//!
//! Rooms, members and jobs arrive with the rooms work; for now it serves `GET /v1/status` for
//! operators (behind `admin_token`) and answers everything else with a JSON 404.

mod error;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;

use self::error::PlatformError;
use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/status", get(status::handler))
        .fallback(|| async { PlatformError::NotFound.into_response() })
        .method_not_allowed_fallback(|| async { PlatformError::MethodNotAllowed.into_response() })
        .with_state(app)
}
