//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}/bans/{user_id}` `{reason, expires_in_seconds?}`:
//! ban the user from the room (kicked if joined, invite revoked, never invited again while banned).
//! `DELETE …/bans/{user_id}` `{reason?}`: lift it; a declared member is invited again.
//! `PUT /v1/tenants/{tenant}/bans/{user_id}` `{reason, expires_in_seconds?, redact?}` and its
//! `DELETE`: the same in every managed room of the tenant, rooms declared later included.

use axum::body::Bytes;
use axum::extract::Path;
use serde::Deserialize;
use utoipa::ToSchema;

use super::moderate::{self, Action, LiftBody, UserPath};
use crate::api::platform::call::{self, Accepted, RoomCall, TenantCall};
use crate::api::platform::error::PlatformError;
use crate::api::platform::job::JobAccepted;
use crate::api::platform::params::{ActorHeader, BodyErrors, RoomPath, TenantErrors, TenantPath};
use crate::store::moderation::Kind;

/// A ban in a room.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RoomBan)]
struct RoomBody {
    /// Why (members see it with the ban): required, not blank, at most 1024 bytes.
    #[schema(value_type = String, required = true, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$", max_length = 1024, example = "Spam")]
    reason: Option<String>,
    /// Lift it by itself after this many seconds (1 to a year); left out, until lifted.
    #[schema(minimum = 1, maximum = 31_622_400)]
    expires_in_seconds: Option<i64>,
}

/// A tenant-wide ban.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TenantBan)]
struct TenantBody {
    /// Why (members see it with the ban): required, not blank, at most 1024 bytes.
    #[schema(value_type = String, required = true, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$", max_length = 1024, example = "Spam")]
    reason: Option<String>,
    /// Lift it by itself after this many seconds (1 to a year); left out, until lifted.
    #[schema(minimum = 1, maximum = 31_622_400)]
    expires_in_seconds: Option<i64>,
    /// Also redact the user's messages of the last 24 hours in every room of the tenant.
    #[serde(default)]
    redact: bool,
}

/// Declare a ban of the user in this room, kicked if joined or invited; with
/// `expires_in_seconds` it lifts by itself then.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/bans/{user_id}",
    operation_id = "ban_in_room",
    tag = "moderation",
    params(RoomPath, UserPath, ActorHeader),
    request_body = RoomBody,
    responses(
        (status = 202, description = "Stored, with its audit entry; the job applies it.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.put_ban", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn put_in_room(
    room: RoomCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: RoomBody = call::body(&body)?;
    let action = Action::declare(
        &room.call,
        Kind::Ban,
        &user_id,
        body.reason,
        body.expires_in_seconds,
    )?;
    moderate::in_room(&room, action).await
}

/// Lift the user's ban in this room (a declared member is invited again).
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/bans/{user_id}",
    operation_id = "unban_in_room",
    tag = "moderation",
    params(RoomPath, UserPath, ActorHeader),
    request_body = Option<LiftBody>,
    responses(
        (status = 202, description = "Lifted, with its audit entry; the job applies it.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.delete_ban", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn delete_in_room(
    room: RoomCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: LiftBody = call::body(&body)?;
    let action = Action::lift(&room.call, Kind::Ban, &user_id, body)?;
    moderate::in_room(&room, action).await
}

/// Declare a ban of the user in every managed room of the tenant, rooms declared later
/// included; `redact: true` also redacts their messages of the last 24 hours.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/bans/{user_id}",
    operation_id = "ban_in_tenant",
    tag = "moderation",
    params(TenantPath, UserPath, ActorHeader),
    request_body = TenantBody,
    responses(
        (status = 202, description = "Stored, with its audit entry; the job applies it.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.put_tenant_ban", skip_all, fields(tenant = %call.tenant.id))]
pub async fn put_tenant_wide(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: TenantBody = call::body(&body)?;
    let action = Action::declare(
        &call,
        Kind::Ban,
        &user_id,
        body.reason,
        body.expires_in_seconds,
    )?
    .with_redaction(body.redact);
    moderate::tenant_wide(&call, action).await
}

/// Lift the tenant-wide ban (a room's own ban stays).
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/bans/{user_id}",
    operation_id = "unban_in_tenant",
    tag = "moderation",
    params(TenantPath, UserPath, ActorHeader),
    request_body = Option<LiftBody>,
    responses(
        (status = 202, description = "Lifted, with its audit entry; the job applies it.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.delete_tenant_ban", skip_all, fields(tenant = %call.tenant.id))]
pub async fn delete_tenant_wide(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: LiftBody = call::body(&body)?;
    let action = Action::lift(&call, Kind::Ban, &user_id, body)?;
    moderate::tenant_wide(&call, action).await
}
