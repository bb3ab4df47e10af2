//! Matrix clients → us, through the operator's reverse proxy: Synapse's three report endpoints
//! (DESIGN §7.3 "Across the tenant"), served on the appservice listener. These routes carry a
//! user's own access token, not the hs_token, so they stand outside the hs_token layer; the
//! homeserver checks the token (`reports`).
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#reporting-content>

mod error;
mod report_event;
mod report_room;
mod report_user;
mod request;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;

use crate::app::App;

/// Report bodies are a reason and a score; Synapse itself reads at most this much JSON.
const BODY_LIMIT: usize = 64 * 1024;

/// The report routes, with no fallback of their own: they are merged into the appservice
/// listener's router, whose fallback answers every other path.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/_matrix/client/v3/rooms/{room_id}/report/{event_id}",
            post(report_event::handler),
        )
        .route(
            "/_matrix/client/v3/rooms/{room_id}/report",
            post(report_room::handler),
        )
        .route(
            "/_matrix/client/v3/users/{user_id}/report",
            post(report_user::handler),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(error::json_rejections))
        .with_state(app)
}
