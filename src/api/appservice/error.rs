//! The one place where a failure on the Synapse-facing API becomes a status and an `errcode`.
//! Synapse counts an empty or non-JSON answer as a failure, so every answer is a JSON object.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a Bearer token in the Authorization header is required")]
    MissingToken,
    #[error("the token is not this appservice's hs_token")]
    WrongToken,
    #[error("{0}")]
    NotFound(&'static str),
    #[error("unrecognized request")]
    UnrecognizedPath,
    #[error("method not allowed on this path")]
    WrongMethod,
    #[error("the body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidParam(&'static str),
    #[error("the database is unavailable; Synapse keeps the transaction and retries")]
    DatabaseUnavailable,
}

impl ApiError {
    fn status_and_errcode(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MissingToken => (StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED"),
            Self::WrongToken => (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            Self::UnrecognizedPath => (StatusCode::NOT_FOUND, "M_UNRECOGNIZED"),
            Self::WrongMethod => (StatusCode::METHOD_NOT_ALLOWED, "M_UNRECOGNIZED"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
            Self::InvalidParam(_) => (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
            Self::DatabaseUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, errcode) = self.status_and_errcode();
        (
            status,
            Json(json!({"errcode": errcode, "error": self.to_string()})),
        )
            .into_response()
    }
}

/// axum's extractors answer what they cannot read (a path segment that is not UTF-8) themselves, in
/// plain text, which Synapse counts as a failure: such answers become this API's JSON error, status
/// kept (`M_INVALID_PARAM` for a 400).
pub async fn json_rejections(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let errcode = if status == StatusCode::BAD_REQUEST {
        "M_INVALID_PARAM"
    } else {
        "M_UNKNOWN"
    };
    (status, Json(json!({"errcode": errcode, "error": text}))).into_response()
}

/// The empty JSON object every successful answer carries.
pub fn empty_object() -> Json<serde_json::Value> {
    Json(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcodes_follow_the_spec() {
        let cases = [
            (ApiError::MissingToken, 401, "M_UNAUTHORIZED"),
            (ApiError::WrongToken, 403, "M_FORBIDDEN"),
            (ApiError::NotFound("no such user"), 404, "M_NOT_FOUND"),
            (ApiError::UnrecognizedPath, 404, "M_UNRECOGNIZED"),
            (ApiError::WrongMethod, 405, "M_UNRECOGNIZED"),
            (ApiError::TooLarge(1), 413, "M_TOO_LARGE"),
            (ApiError::DatabaseUnavailable, 503, "M_UNKNOWN"),
        ];
        for (error, status, errcode) in cases {
            let (actual_status, actual_errcode) = error.status_and_errcode();
            assert_eq!(
                (actual_status.as_u16(), actual_errcode),
                (status, errcode),
                "{error:?}"
            );
        }
    }
}
