//! The one place where a platform API failure becomes a status and a machine code:
//! `{"error": "<sentence>", "code": "<machine code>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::rooms::FieldError;

/// Every error the platform API answers, whatever the status (DESIGN §7).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    example = json!({"error": "no tenant tenantX is configured: add it to tenants in the daemon's config", "code": "unknown_tenant"})
)]
pub struct ErrorBody {
    /// A sentence saying what is wrong and how to fix it.
    pub error: String,
    pub code: ErrorCode,
}

/// The machine code of an error; one per way a call can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MissingToken,
    UnknownToken,
    Forbidden,
    UnknownTenant,
    NotFound,
    MethodNotAllowed,
    InvalidInput,
    BadBody,
    Conflict,
    TooLarge,
    DatabaseUnavailable,
    BadRequest,
}

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
    /// A request the router's extractors could not read (axum's rejection, in its words).
    #[error("the request could not be read ({reason}): see the platform API in the README")]
    Unreadable { status: StatusCode, reason: String },
}

impl PlatformError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::MissingToken => (StatusCode::UNAUTHORIZED, ErrorCode::MissingToken),
            Self::UnknownToken => (StatusCode::UNAUTHORIZED, ErrorCode::UnknownToken),
            Self::OtherTenant(_) | Self::AdminOnly => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Self::UnknownTenant(_) => (StatusCode::NOT_FOUND, ErrorCode::UnknownTenant),
            Self::NotFound(_) | Self::UnknownPath | Self::StatusDisabled => {
                (StatusCode::NOT_FOUND, ErrorCode::NotFound)
            }
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidInput),
            Self::BadBody(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadBody),
            Self::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
            Self::DatabaseUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::DatabaseUnavailable,
            ),
            Self::Unreadable { status, .. } => (*status, ErrorCode::BadRequest),
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
        let body = ErrorBody {
            error: self.to_string(),
            code,
        };
        (status, Json(body)).into_response()
    }
}
