//! Synapse → us: the Application Service API (spec v1.19), every route behind the hs_token.
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/>

mod auth;
mod error;
mod ping;
pub(crate) mod push_events;
mod query_room_alias;
mod query_user_id;
mod thirdparty;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};

use self::error::ApiError;
use crate::app::App;

/// Bodies on routes other than transactions are tiny; this caps what a misbehaving client can send.
const SMALL_BODY_LIMIT: usize = 64 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/_matrix/app/v1/transactions/{txn_id}",
            put(push_events::handler).layer(DefaultBodyLimit::max(push_events::BODY_LIMIT)),
        )
        .route(
            "/_matrix/app/v1/users/{user_id}",
            get(query_user_id::handler),
        )
        .route(
            "/_matrix/app/v1/rooms/{room_alias}",
            get(query_room_alias::handler),
        )
        .route("/_matrix/app/v1/ping", post(ping::handler))
        .route(
            "/_matrix/app/v1/thirdparty/protocol/{protocol}",
            get(thirdparty::protocol),
        )
        .route("/_matrix/app/v1/thirdparty/user", get(thirdparty::lookup))
        .route(
            "/_matrix/app/v1/thirdparty/user/{protocol}",
            get(thirdparty::lookup),
        )
        .route(
            "/_matrix/app/v1/thirdparty/location",
            get(thirdparty::lookup),
        )
        .route(
            "/_matrix/app/v1/thirdparty/location/{protocol}",
            get(thirdparty::lookup),
        )
        .fallback(|| async { ApiError::UnrecognizedPath.into_response() })
        .method_not_allowed_fallback(|| async { ApiError::WrongMethod.into_response() })
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::require_hs_token,
        ))
        .layer(axum::middleware::map_response(error::json_rejections))
        // After the layers above: the antispam callbacks have their own token and answer
        // non-decisions in plain text (`api/antispam`).
        .merge(crate::api::antispam::routes(app.clone()))
        .with_state(app)
}
