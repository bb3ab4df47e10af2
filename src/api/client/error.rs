//! The one place where a report's outcome becomes the client's answer: the homeserver's own
//! answer passed back as it is, or the Matrix error the homeserver would have given.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::reports::Answer;

/// No access token in the request: Synapse's own answer.
pub fn missing_token() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "M_MISSING_TOKEN",
        "Missing access token",
    )
}

/// A request the daemon itself forwarded came back: `homeserver.url` leads to the proxy.
pub fn looped() -> Response {
    tracing::error!(
        "a report the daemon forwarded came back to it: set homeserver.url to Synapse's own URL, not the reverse proxy's"
    );
    error(
        StatusCode::LOOP_DETECTED,
        "M_UNKNOWN",
        "The report went round in a loop: the appservice's homeserver.url must be Synapse's own URL, not the reverse proxy's.",
    )
}

fn error(status: StatusCode, errcode: &str, message: &str) -> Response {
    (status, Json(json!({"errcode": errcode, "error": message}))).into_response()
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Homeserver { status, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
            Self::Stored => Json(json!({})).into_response(),
            Self::NotFound(message) => error(StatusCode::NOT_FOUND, "M_NOT_FOUND", message),
            Self::Unavailable(why) => {
                tracing::warn!(%why, "a report could not be checked: the homeserver did not answer");
                error(
                    StatusCode::BAD_GATEWAY,
                    "M_UNKNOWN",
                    "The homeserver could not be reached to check this report; try again later.",
                )
            }
            Self::Database(why) => {
                tracing::warn!(%why, "a report could not be stored");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "M_UNKNOWN",
                    "The report could not be stored; try again later.",
                )
            }
        }
    }
}

/// axum's own answers (a body over the limit, a path segment that is not UTF-8) in Matrix's
/// error shape.
pub async fn json_rejections(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let errcode = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "M_TOO_LARGE",
        StatusCode::BAD_REQUEST => "M_INVALID_PARAM",
        _ => "M_UNKNOWN",
    };
    let text = axum::body::to_bytes(response.into_body(), 2048)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    error(status, errcode, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_matrix_errors_or_the_homeservers_own() {
        let cases = [
            (Answer::Stored, 200),
            (Answer::NotFound("gone"), 404),
            (Answer::Unavailable("down".into()), 502),
            (
                Answer::Homeserver {
                    status: 401,
                    body: br#"{"errcode":"M_UNKNOWN_TOKEN"}"#.to_vec(),
                },
                401,
            ),
        ];
        for (answer, status) in cases {
            assert_eq!(answer.into_response().status().as_u16(), status);
        }
        assert_eq!(missing_token().status().as_u16(), 401);
    }
}
