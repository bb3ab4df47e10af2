//! Synapse authenticates with `Authorization: Bearer <hs_token>` (spec v1.4+). A token in
//! `?access_token=` alone is refused; the comparison takes the same time whatever the token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::app::App;
use crate::config::Secret;

pub async fn require_hs_token(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        None => ApiError::MissingToken.into_response(),
        Some(token) if accepts(&app.config().appservice.hs_tokens, token) => {
            next.run(request).await
        }
        Some(_) => {
            tracing::warn!("refused a request with a wrong hs_token");
            ApiError::WrongToken.into_response()
        }
    }
}

/// Whether `presented` is one of `tokens`, comparing SHA-256 digests in constant time so that
/// neither the content nor the length of a token leaks through timing.
fn accepts(tokens: &[Secret], presented: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    tokens.iter().fold(false, |found, token| {
        found | bool::from(Sha256::digest(token.expose().as_bytes()).ct_eq(&presented))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_token_is_accepted_and_nothing_else() {
        let tokens = [
            Secret::new("current-token-0123456789"),
            Secret::new("previous-token-0123456789"),
        ];
        assert!(accepts(&tokens, "current-token-0123456789"));
        assert!(accepts(&tokens, "previous-token-0123456789"));
        assert!(!accepts(&tokens, "current-token-012345678"));
        assert!(!accepts(&tokens, ""));
    }
}
