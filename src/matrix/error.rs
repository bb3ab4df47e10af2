//! Errors from the homeserver, classed where they are understood: whether a retry can help.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the homeserver could not be reached: {0}")]
    Unreachable(String),
    #[error("the homeserver did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the homeserver answered {status} {errcode}: {message}")]
    Matrix {
        status: u16,
        errcode: String,
        message: String,
        retry_after: Option<Duration>,
        /// The whole error body, for errcodes that carry details (`M_BAD_STATUS` on ping).
        body: serde_json::Value,
    },
    #[error("the homeserver's answer could not be read: {0}")]
    InvalidResponse(String),
    #[error("the request could not be built: {0}")]
    Request(String),
}

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// A timeout or a 5xx from a homeserver that answers: retry with backoff.
    Transient,
    /// The homeserver cannot be reached (connection refused, or a proxy's 502/503/504): not the
    /// request's fault; wait until a check reaches it again, without spending attempts.
    Unavailable,
    /// The homeserver does not know one of our users (its database was reset): register it
    /// again, then retry.
    UserNotRegistered,
    /// `M_LIMIT_EXCEEDED`: retry after the given time.
    RateLimited(Duration),
    /// The homeserver does not accept our as_token: the daemon's problem, not the request's; wait
    /// until it is accepted again.
    CredentialRejected,
    /// Retrying the same request cannot help.
    Permanent,
}

/// A Matrix error body: `{"errcode": …, "error": …, "retry_after_ms": …}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    errcode: Option<String>,
    error: Option<String>,
    retry_after_ms: Option<u64>,
}

impl Error {
    /// Builds the error for a non-success answer from its status, `Retry-After` header and body.
    pub fn from_response(status: u16, retry_after_header: Option<Duration>, body: &[u8]) -> Self {
        let json: serde_json::Value =
            serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        let parsed: Option<ErrorBody> = serde_json::from_value(json.clone()).ok();
        let errcode = parsed
            .as_ref()
            .and_then(|b| b.errcode.clone())
            .unwrap_or_else(|| format!("HTTP_{status}"));
        let message = parsed
            .as_ref()
            .and_then(|b| b.error.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        let retry_after = parsed
            .and_then(|b| b.retry_after_ms)
            .map(Duration::from_millis)
            .or(retry_after_header);
        Self::Matrix {
            status,
            errcode,
            message,
            retry_after,
            body: json,
        }
    }

    pub fn errcode(&self) -> &str {
        match self {
            Self::Matrix { errcode, .. } => errcode,
            Self::Unreachable(_) => "network",
            Self::Timeout(_) => "timeout",
            Self::InvalidResponse(_) => "invalid_response",
            Self::Request(_) => "invalid_request",
        }
    }

    /// The homeserver's HTTP status, for an error it answered with.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Matrix { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// `M_FORBIDDEN`: the acting user may not do this (no power, not in the room, banned).
    pub fn is_forbidden(&self) -> bool {
        self.errcode() == "M_FORBIDDEN"
    }

    /// A 403 refusal to list a room in the server-wide directory: Synapse answers `M_UNKNOWN` "Not
    /// allowed to publish room" when its `room_list_publication_rules` (by default: no one) do
    /// not allow it, `M_FORBIDDEN` when a spam-checker module or the room's levels say no.
    pub fn is_publication_refused(&self) -> bool {
        self.status() == Some(403)
            && matches!(self.errcode(), "M_UNKNOWN" | "M_FORBIDDEN")
            && self.retry_kind() == RetryKind::Permanent
    }

    /// `M_NOT_FOUND` (or a bare 404): the thing asked about does not exist.
    pub fn is_not_found(&self) -> bool {
        self.errcode() == "M_NOT_FOUND" || self.status() == Some(404)
    }

    /// The user may not enter the room, or there is no server left to join it through (403, 404).
    pub fn is_no_way_in(&self) -> bool {
        matches!(self.status(), Some(403 | 404))
    }

    /// The alias or id asked for is taken: `M_ROOM_IN_USE` from createRoom, 409 from an alias PUT
    /// (Synapse answers createRoom with 409 too when two callers race for one alias).
    pub fn is_in_use(&self) -> bool {
        self.errcode() == "M_ROOM_IN_USE" || self.status() == Some(409)
    }

    pub fn retry_kind(&self) -> RetryKind {
        match self {
            Self::Unreachable(_) => RetryKind::Unavailable,
            Self::Timeout(_) => RetryKind::Transient,
            Self::Matrix {
                errcode,
                retry_after,
                status,
                message,
                ..
            } => match errcode.as_str() {
                "M_LIMIT_EXCEEDED" => {
                    RetryKind::RateLimited(retry_after.unwrap_or(Duration::from_secs(1)))
                }
                "M_UNKNOWN_TOKEN" | "M_MISSING_TOKEN" => RetryKind::CredentialRejected,
                // Synapse: "Application service has not registered this user (@…)".
                "M_FORBIDDEN" if message.contains("has not registered this user") => {
                    RetryKind::UserNotRegistered
                }
                _ if matches!(*status, 502..=504) && !errcode.starts_with("M_") => {
                    RetryKind::Unavailable
                }
                _ if *status >= 500 || *status == 429 => RetryKind::Transient,
                _ => RetryKind::Permanent,
            },
            Self::InvalidResponse(_) | Self::Request(_) => RetryKind::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, body: &str) -> Error {
        Error::from_response(status, None, body.as_bytes())
    }

    #[test]
    fn a_refusal_to_publish_is_known_by_its_status_whatever_the_errcode() {
        let rules = error(
            403,
            r#"{"errcode":"M_UNKNOWN","error":"Not allowed to publish room"}"#,
        );
        assert!(rules.is_publication_refused());
        assert!(
            !rules.is_forbidden(),
            "Synapse's refusal is not M_FORBIDDEN"
        );
        let module = error(
            403,
            r#"{"errcode":"M_FORBIDDEN","error":"This user is not permitted to publish rooms to the room list"}"#,
        );
        assert!(module.is_publication_refused());
        let unregistered = error(
            403,
            r#"{"errcode":"M_FORBIDDEN","error":"Application service has not registered this user (@openmeet-bot-a:s)"}"#,
        );
        assert!(!unregistered.is_publication_refused());
        assert!(
            !error(400, r#"{"errcode":"M_UNKNOWN","error":"Unknown room"}"#)
                .is_publication_refused()
        );
        assert!(
            !error(500, r#"{"errcode":"M_UNKNOWN","error":"Internal"}"#).is_publication_refused()
        );
    }

    #[test]
    fn rate_limit_waits_retry_after_ms() {
        let e = error(
            429,
            r#"{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":1500}"#,
        );
        assert_eq!(
            e.retry_kind(),
            RetryKind::RateLimited(Duration::from_millis(1500))
        );
        assert_eq!(e.errcode(), "M_LIMIT_EXCEEDED");
    }

    #[test]
    fn rate_limit_falls_back_to_the_retry_after_header() {
        let e = Error::from_response(
            429,
            Some(Duration::from_secs(3)),
            br#"{"errcode":"M_LIMIT_EXCEEDED"}"#,
        );
        assert_eq!(
            e.retry_kind(),
            RetryKind::RateLimited(Duration::from_secs(3))
        );
    }

    #[test]
    fn unknown_token_is_the_daemons_credential_problem() {
        assert_eq!(
            error(401, r#"{"errcode":"M_UNKNOWN_TOKEN","error":"x"}"#).retry_kind(),
            RetryKind::CredentialRejected
        );
        assert_eq!(
            error(401, r#"{"errcode":"M_MISSING_TOKEN","error":"x"}"#).retry_kind(),
            RetryKind::CredentialRejected
        );
    }

    #[test]
    fn server_errors_are_transient_and_an_unreachable_homeserver_is_waited_for() {
        let e = error(
            500,
            r#"{"errcode":"M_UNKNOWN","error":"Internal server error"}"#,
        );
        assert_eq!(e.retry_kind(), RetryKind::Transient);
        assert_eq!(
            error(502, r#"{"errcode":"M_UNKNOWN","error":"x"}"#).retry_kind(),
            RetryKind::Transient
        );
        // A proxy in front of a stopped Synapse.
        let e = error(502, "<html>Bad Gateway</html>");
        assert_eq!(e.retry_kind(), RetryKind::Unavailable);
        assert_eq!(e.errcode(), "HTTP_502");
        assert_eq!(
            Error::Unreachable("refused".into()).retry_kind(),
            RetryKind::Unavailable
        );
        assert_eq!(
            Error::Timeout(Duration::from_secs(30)).retry_kind(),
            RetryKind::Transient
        );
    }

    #[test]
    fn a_user_synapse_forgot_is_registered_again() {
        let e = error(
            403,
            r#"{"errcode":"M_FORBIDDEN","error":"Application service has not registered this user (@openmeet-bot-t:example.org)"}"#,
        );
        assert_eq!(e.retry_kind(), RetryKind::UserNotRegistered);
    }

    #[test]
    fn errors_answer_what_they_are() {
        let forbidden = error(403, r#"{"errcode":"M_FORBIDDEN","error":"no power"}"#);
        assert!(forbidden.is_forbidden() && forbidden.is_no_way_in() && !forbidden.is_not_found());
        let missing = error(404, r#"{"errcode":"M_NOT_FOUND","error":"x"}"#);
        assert!(missing.is_not_found() && !missing.is_forbidden());
        assert!(error(404, "<html>").is_not_found());
        assert!(error(400, r#"{"errcode":"M_ROOM_IN_USE","error":"x"}"#).is_in_use());
        assert!(error(409, r#"{"errcode":"M_UNKNOWN","error":"x"}"#).is_in_use());
        assert!(!Error::Timeout(Duration::from_secs(1)).is_not_found());
    }

    #[test]
    fn forbidden_and_bad_input_are_permanent() {
        assert_eq!(
            error(403, r#"{"errcode":"M_FORBIDDEN","error":"no power"}"#).retry_kind(),
            RetryKind::Permanent
        );
        assert_eq!(
            error(400, r#"{"errcode":"M_BAD_JSON","error":"x"}"#).retry_kind(),
            RetryKind::Permanent
        );
    }
}
