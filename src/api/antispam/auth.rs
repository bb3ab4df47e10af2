//! The module authenticates with `Authorization: Bearer <authorization>`, the homeserver's
//! `appservice.antispam_token`; the token says which homeserver is calling. Compared in constant
//! time (`Secret::any_matches`). A refusal here is plain text, so that the module treats it as a
//! failure and applies `fail_open` (see `mod.rs`), and it is logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;

/// The homeserver whose antispam token authenticated the request (its config id).
#[derive(Debug, Clone)]
pub struct CallingHomeserver(pub String);

pub async fn require_antispam_token(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    let calling = crate::api::bearer::token(request.headers()).and_then(|token| {
        (app.config().homeserver_by_antispam_token(token)).map(|hs| hs.id.to_owned())
    });
    match calling {
        Some(homeserver) => {
            request
                .extensions_mut()
                .insert(CallingHomeserver(homeserver));
            next.run(request).await
        }
        None => {
            tracing::warn!(
                path = request.uri().path(),
                "refused an antispam callback without a valid antispam token: check the module's authorization against appservice.antispam_token"
            );
            (
                StatusCode::UNAUTHORIZED,
                "a Bearer token equal to the homeserver's appservice.antispam_token is required",
            )
                .into_response()
        }
    }
}
