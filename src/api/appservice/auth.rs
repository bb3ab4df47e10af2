//! Synapse authenticates with `Authorization: Bearer <hs_token>` (spec v1.4+). A token in
//! `?access_token=` alone is refused; the comparison takes the same time whatever the token
//! (`Secret::any_matches`). The token also says which homeserver is calling: tokens differ across
//! homeservers (checked at load).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::App;

/// The homeserver whose hs_token authenticated a request (its config id; DESIGN §13): handlers
/// answer for its namespaces and store its transactions under it.
#[derive(Debug, Clone)]
pub struct CallingHomeserver(pub String);

pub async fn require_hs_token(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = crate::api::bearer::token(request.headers()) else {
        return ApiError::MissingToken.into_response();
    };
    let calling = (app.config().homeserver_by_hs_token(token)).map(|hs| hs.id.to_owned());
    match calling {
        Some(homeserver) => {
            request
                .extensions_mut()
                .insert(CallingHomeserver(homeserver));
            next.run(request).await
        }
        None => {
            tracing::warn!("refused a request with a wrong hs_token");
            ApiError::WrongToken.into_response()
        }
    }
}
