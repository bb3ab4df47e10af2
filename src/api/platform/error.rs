//! The one place where a platform API failure becomes a status and a machine code:
//! `{"error": "<sentence>", "code": "<machine code>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::rooms::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("an Authorization: Bearer token is required")]
    MissingToken,
    #[error(
        "this token is not a tenant's api_token: check tenants[].api_token in the daemon's config"
    )]
    UnknownToken,
    #[error("this token belongs to another tenant: use the token of tenant {0}")]
    OtherTenant(String),
    #[error("no tenant {0} is configured: add it to tenants in the daemon's config")]
    UnknownTenant(String),
    #[error("{0}")]
    NotFound(String),
    #[error("no such resource: see the platform API in the README")]
    UnknownPath,
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("this route needs the admin_token")]
    AdminOnly,
    #[error("the status route is off: set admin_token in the config to turn it on")]
    StatusDisabled,
    #[error("{0}")]
    Invalid(FieldError),
    #[error("{0}")]
    Conflict(String),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body is not valid for this call: {0}")]
    BadBody(String),
    #[error("the database is unavailable; try again")]
    DatabaseUnavailable,
    /// What axum's extractors refused themselves (a path they cannot read), status kept.
    #[error("{1}")]
    Rejected(StatusCode, String),
}

impl PlatformError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MissingToken => (StatusCode::UNAUTHORIZED, "missing_token"),
            Self::UnknownToken => (StatusCode::UNAUTHORIZED, "unknown_token"),
            Self::OtherTenant(_) | Self::AdminOnly => (StatusCode::FORBIDDEN, "forbidden"),
            Self::UnknownTenant(_) => (StatusCode::NOT_FOUND, "unknown_tenant"),
            Self::NotFound(_) | Self::UnknownPath | Self::StatusDisabled => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            Self::BadBody(_) => (StatusCode::BAD_REQUEST, "bad_body"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::DatabaseUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Self::Rejected(status, _) if *status == StatusCode::BAD_REQUEST => {
                (*status, "bad_request")
            }
            Self::Rejected(status, _) => (*status, "rejected"),
        }
    }
}

impl From<FieldError> for PlatformError {
    fn from(error: FieldError) -> Self {
        Self::Invalid(error)
    }
}

impl From<crate::store::StoreError> for PlatformError {
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(%error, "platform API: database error");
        Self::DatabaseUnavailable
    }
}

impl IntoResponse for PlatformError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        (
            status,
            Json(json!({"error": self.to_string(), "code": code})),
        )
            .into_response()
    }
}
