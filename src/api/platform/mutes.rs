//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}/mutes/{user_id}` `{reason?, expires_in_seconds?}`:
//! the user's power level goes below what sending messages needs; they stay in the room.
//! `DELETE …/mutes/{user_id}` `{reason?}`: their level is what their role gives again.
//! `PUT /v1/tenants/{tenant}/mutes/{user_id}` and its `DELETE`: the same in every managed room of
//! the tenant, rooms declared later included.

use axum::body::Bytes;
use axum::extract::Path;
use serde::Deserialize;

use super::call::{self, Accepted, RoomCall, TenantCall};
use super::error::PlatformError;
use super::moderate::{self, Action, LiftBody, UserPath};
use crate::store::moderation::Kind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    reason: Option<String>,
    expires_in_seconds: Option<i64>,
}

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
    )
    .await?;
    moderate::in_room(&room, action).await
}

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
    )
    .await?;
    moderate::tenant_wide(&call, action).await
}

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
