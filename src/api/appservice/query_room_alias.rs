//! `GET /_matrix/app/v1/rooms/{roomAlias}`
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#get_matrixappv1roomsroomalias>
//!
//! No room is declared through the platform API yet, so every alias is unknown: 404.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::App;

#[tracing::instrument(name = "as.query_alias", skip_all, fields(alias = %alias))]
pub async fn handler(State(app): State<Arc<App>>, Path(alias): Path<String>) -> Response {
    let label = if app.config.namespaces.is_our_alias(&alias) {
        "undeclared"
    } else {
        "not_ours"
    };
    app.metrics.alias_queries.with_label_values(&[label]).inc();
    ApiError::NotFound("no room is declared for this alias").into_response()
}
