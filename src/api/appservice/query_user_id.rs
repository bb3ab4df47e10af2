//! `GET /_matrix/app/v1/users/{userId}`
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#get_matrixappv1usersuserid>
//!
//! Only the calling homeserver's sender and the bots of the tenants it hosts exist: they are
//! registered (if they were not) before we answer 200; everyone else is 404. Synapse blocks
//! delivery while it asks.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ruma::UserId;

use super::auth::CallingHomeserver;
use super::error::{ApiError, empty_object};
use crate::app::App;

#[tracing::instrument(name = "as.query_user", skip_all, fields(user_id = %user_id))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Extension(CallingHomeserver(homeserver)): Extension<CallingHomeserver>,
    Path(user_id): Path<String>,
) -> Response {
    let outcome = |label: &str| app.metrics.user_queries.with_label_values(&[label]).inc();
    let Ok(user_id) = UserId::parse(&user_id) else {
        outcome("invalid");
        return ApiError::NotFound("not a valid user id").into_response();
    };
    if !app.config().is_own_user_on(&homeserver, &user_id) {
        outcome("not_ours");
        return ApiError::NotFound("this appservice has no such user").into_response();
    }
    match app.ensure_user_registered(&user_id).await {
        Ok(()) => {
            outcome("registered");
            empty_object().into_response()
        }
        Err(error) => {
            outcome("failed");
            tracing::warn!(%error, "could not register one of our users");
            ApiError::NotFound("the user could not be registered; try again").into_response()
        }
    }
}
