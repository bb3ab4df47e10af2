//! The token of an `Authorization: Bearer <token>` header, as every listener reads it: the
//! platform's tenant and admin tokens, Synapse's hs_token, the antispam module's token and a
//! reporter's access token.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// The header's token, trimmed; `None` when there is no such header, it is not `Bearer`, or the
/// token is empty.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn only_a_non_empty_bearer_token_is_a_token() {
        assert_eq!(token(&with("Bearer abc ")), Some("abc"));
        assert_eq!(token(&with("Bearer ")), None);
        assert_eq!(token(&with("Basic abc")), None);
        assert_eq!(token(&HeaderMap::new()), None);
    }
}
