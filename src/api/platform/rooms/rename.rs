//! `POST /v1/tenants/{tenant}/rooms/{kind}/{slug}/rename` `{new_slug}`: the event or group got a new
//! slug. The new alias is added and made canonical, the old one stays as an alternative and keeps
//! resolving; both find the same room, and the new alias never creates a second one.

use axum::body::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::platform::call::{self, Accepted, RoomCall};
use crate::api::platform::error::{ErrorBody, PlatformError};
use crate::api::platform::job::JobAccepted;
use crate::api::platform::params::{BodyErrors, RoomPath, TenantErrors};
use crate::rooms;
use crate::store::rooms::{self as room_store, Renamed};

/// The room's new slug.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Rename)]
struct Body {
    /// Letters, digits and `. _ = -`, like every slug.
    #[schema(pattern = "^[A-Za-z0-9._=-]+$", example = "summer-party-2027")]
    new_slug: String,
}

/// The event or group got a new slug: the new alias is added and made canonical; the old one
/// keeps resolving as an alternative.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/rename",
    operation_id = "rename_room",
    tag = "rooms",
    params(RoomPath),
    request_body = Body,
    responses(
        (status = 202, description = "Stored; the job adds the alias.", body = JobAccepted),
        (status = 409, description = "The new slug belongs to another room (`conflict`).", body = ErrorBody),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.rename", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn handler(room: RoomCall, body: Bytes) -> Result<Accepted, PlatformError> {
    let body: Body = call::body(&body)?;
    let new_alias = rooms::alias(
        room.kind,
        &body.new_slug,
        &room.call.tenant.id,
        room.call.server_name(),
    )
    .map_err(|mut error| {
        error.field = "new_slug".into();
        error
    })?;
    let new_slug = body.new_slug;
    room.queue_on_live_room(move |conn, room, now| {
        match room_store::rename(conn, room, &new_slug, now)? {
            Renamed::Taken => Ok(Err(PlatformError::Conflict(format!(
                "{new_alias} belongs to another room: choose another slug"
            )))),
            Renamed::Done(room, changed) => {
                Ok(Ok(call::ensure_if_changed(conn, &room, changed, now)?))
            }
        }
    })
    .await
}
