//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}/mutes/{user_id}` `{reason?, expires_in_seconds?}`:
//! the user's power level goes below what sending messages needs; they stay in the room.
//! `DELETE …/mutes/{user_id}` `{reason?}`: their level is what their role gives again.
//! `PUT /v1/tenants/{tenant}/mutes/{user_id}` and its `DELETE`: the same in every managed room of
//! the tenant, rooms declared later included.

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

/// A mute, in a room or tenant-wide.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Mute)]
struct Body {
    /// Why, for the audit log: not blank, at most 1024 bytes.
    #[schema(
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
        max_length = 1024
    )]
    reason: Option<String>,
    /// Lift it by itself after this many seconds (1 to a year); left out, until lifted.
    #[schema(minimum = 1, maximum = 31_622_400)]
    expires_in_seconds: Option<i64>,
}

/// Declare a mute of the user in this room: their power level goes below what sending messages needs; with
/// `expires_in_seconds` it lifts by itself then.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/mutes/{user_id}",
    operation_id = "mute_in_room",
    tag = "moderation",
    params(RoomPath, UserPath, ActorHeader),
    request_body = Body,
    responses(
        (status = 202, description = "Stored, with its audit entry; the job applies it.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.put_mute", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn put_in_room(
    room: RoomCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: Body = call::body(&body)?;
    let action = Action::declare(
        &room.call,
        Kind::Mute,
        &user_id,
        body.reason,
        body.expires_in_seconds,
    )?;
    moderate::in_room(&room, action).await
}

/// Lift the user's mute in this room (their level is what their role gives again).
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/mutes/{user_id}",
    operation_id = "unmute_in_room",
    tag = "moderation",
    params(RoomPath, UserPath, ActorHeader),
    request_body = Option<LiftBody>,
    responses(
        (status = 202, description = "Lifted, with its audit entry; the job applies it.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.delete_mute", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn delete_in_room(
    room: RoomCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: LiftBody = call::body(&body)?;
    let action = Action::lift(&room.call, Kind::Mute, &user_id, body)?;
    moderate::in_room(&room, action).await
}

/// Declare a mute of the user in every managed room of the tenant, rooms declared later
/// included.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/mutes/{user_id}",
    operation_id = "mute_in_tenant",
    tag = "moderation",
    params(TenantPath, UserPath, ActorHeader),
    request_body = Body,
    responses(
        (status = 202, description = "Stored, with its audit entry; the job applies it.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.put_tenant_mute", skip_all, fields(tenant = %call.tenant.id))]
pub async fn put_tenant_wide(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: Body = call::body(&body)?;
    let action = Action::declare(
        &call,
        Kind::Mute,
        &user_id,
        body.reason,
        body.expires_in_seconds,
    )?;
    moderate::tenant_wide(&call, action).await
}

/// Lift the tenant-wide mute (a room's own mute stays).
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/mutes/{user_id}",
    operation_id = "unmute_in_tenant",
    tag = "moderation",
    params(TenantPath, UserPath, ActorHeader),
    request_body = Option<LiftBody>,
    responses(
        (status = 202, description = "Lifted, with its audit entry; the job applies it.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.delete_tenant_mute", skip_all, fields(tenant = %call.tenant.id))]
pub async fn delete_tenant_wide(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: LiftBody = call::body(&body)?;
    let action = Action::lift(&call, Kind::Mute, &user_id, body)?;
    moderate::tenant_wide(&call, action).await
}
