//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}/bans/{user_id}` `{reason, expires_in_seconds?}`:
//! ban the user from the room (kicked if joined, invite revoked, never invited again while banned).
//! `DELETE …/bans/{user_id}` `{reason?}`: lift it; a declared member is invited again.
//! `PUT /v1/tenants/{tenant}/bans/{user_id}` `{reason, expires_in_seconds?, redact?}` and its
//! `DELETE`: the same in every managed room of the tenant, rooms declared later included.

use axum::body::Bytes;
use axum::extract::Path;
use serde::Deserialize;

use super::call::{self, Accepted, RoomCall, TenantCall};
use super::error::PlatformError;
use super::moderate::{self, Action, LiftBody, UserPath};
use crate::store::moderation::Kind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomBody {
    reason: Option<String>,
    expires_in_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantBody {
    reason: Option<String>,
    expires_in_seconds: Option<i64>,
    #[serde(default)]
    redact: bool,
}

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
    )
    .await?;
    moderate::in_room(&room, action).await
}

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
    )
    .await?
    .with_redaction(body.redact);
    moderate::tenant_wide(&call, action).await
}

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
