//! What the platform API's operations share in their OpenAPI description: the path parameters, the
//! actor header and the error sets (the handlers' `#[utoipa::path]` name them; `openapi.rs` lists
//! the operations).
#![allow(
    dead_code,
    reason = "these types only describe the operations to utoipa: nothing constructs or reads them"
)]

use utoipa::{IntoParams, IntoResponses};

use super::error::ErrorBody;
use crate::rooms::RoomKind;

/// `{tenant}`: the tenant a tenant-scoped call is for.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The tenant's id as configured (`tenants[].id`, case kept); the token must be its own.
    #[param(pattern = "^[A-Za-z0-9._=]+$", example = "tenantA")]
    pub tenant: String,
}

/// `{tenant}/rooms/{kind}/{slug}`: a declared room.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RoomPath {
    /// The tenant's id as configured (`tenants[].id`, case kept); the token must be its own.
    #[param(pattern = "^[A-Za-z0-9._=]+$", example = "tenantA")]
    pub tenant: String,
    /// An event's chat or a group's.
    #[param(inline)]
    pub kind: RoomKind,
    /// The event's or group's URL slug: letters, digits and `. _ = -`, case kept; the whole
    /// alias it makes must fit in 255 bytes.
    #[param(pattern = "^[A-Za-z0-9._=-]+$", example = "summer-party-2026")]
    pub slug: String,
}

/// `X-OpenMeet-Actor`: who acted, on the moderation calls.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ActorHeader {
    /// The platform user who acted, stored with the audit entry (trimmed, at most 255
    /// characters kept).
    #[param(rename = "X-OpenMeet-Actor")]
    pub actor: Option<String>,
}

/// The errors any tenant-scoped call may answer, each a JSON [`ErrorBody`].
#[derive(IntoResponses)]
pub enum TenantErrors {
    /// A path segment, query parameter, header or body field is not valid (`invalid_input`,
    /// `bad_body`, `bad_request`); the sentence names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No bearer token, or not a tenant's (`missing_token`, `unknown_token`).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token belongs to another tenant (`forbidden`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such tenant, room or job (`unknown_tenant`, `not_found`).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The database could not be reached; try again (`database_unavailable`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The error of a call with a JSON body, besides [`TenantErrors`].
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// The body is larger than 1 MiB (`too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
}
