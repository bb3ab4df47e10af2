//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}/members/{user_id}` `{role}`: invite the user (if
//! not in the room) with the role's power level. `DELETE …/members/{user_id}` `{reason?}`: kick or
//! revoke the invite and drop their power-level entry; removing a non-member succeeds. Each stores
//! the change and queues the room's `ensure_room` job in one transaction — or answers with the
//! room's `ensure_room` that is queued, not yet running, which reads the change when it runs (a
//! thousand member PUTs while a big room's job waits are one job); a call that changes nothing
//! answers with the room's latest job.

use axum::body::Bytes;
use axum::extract::Path;
use serde::Deserialize;
use utoipa::ToSchema;

use super::put_room::{MemberBody, NOT_A_MEMBER, declared_members};
use crate::api::platform::call::{self, Accepted, RoomCall};
use crate::api::platform::error::PlatformError;
use crate::api::platform::job::JobAccepted;
use crate::api::platform::moderation::moderate::UserPath;
use crate::api::platform::params::{BodyErrors, RoomPath, TenantErrors};

/// A member's role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MemberRole)]
struct PutBody {
    /// A role of the room's kind in `roles` of the daemon's config.
    role: String,
}

/// Why the member is removed (optional; the body may be empty).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MemberRemoval)]
struct DeleteBody {
    /// Shown with the kick: no control character but line breaks and tabs.
    #[schema(pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    reason: Option<String>,
}

/// Invite the user (if not in the room) with the role's power level. While the room's job is
/// queued, not yet running, the change folds into it and the answer is that job.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/members/{user_id}",
    operation_id = "put_member",
    tag = "rooms",
    params(RoomPath, UserPath),
    request_body = PutBody,
    responses(
        (status = 202, description = "Stored; the job makes Synapse match.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.put_member", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn put(
    room: RoomCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: PutBody = call::body(&body)?;
    let (user_id, role) = declared_members(
        &room.call,
        room.kind,
        &[MemberBody {
            user_id,
            role: body.role,
        }],
    )?
    .remove(0);
    change(&room, user_id, Some(role), None).await
}

/// Kick the user (or revoke the invite) and drop their power-level entry; removing a
/// non-member succeeds.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/members/{user_id}",
    operation_id = "delete_member",
    tag = "rooms",
    params(RoomPath, UserPath),
    request_body = Option<DeleteBody>,
    responses(
        (status = 202, description = "Stored; the job makes Synapse match.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.delete_member", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn delete(
    room: RoomCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: DeleteBody = call::body(&body)?;
    if let Some(reason) = &body.reason {
        crate::rooms::validate::lines("reason", reason)?;
    }
    let user_id = room.call.platform_user("user_id", &user_id, NOT_A_MEMBER)?;
    change(&room, user_id.to_string(), None, body.reason).await
}

/// Stores the member's new role (`None`: removed) and queues the room's job, in one transaction.
async fn change(
    room: &RoomCall,
    user_id: String,
    role: Option<String>,
    reason: Option<String>,
) -> Result<Accepted, PlatformError> {
    room.queue_on_live_room(move |conn, room, now| {
        let changed = crate::store::members::set_member(
            conn,
            room.id,
            &user_id,
            role.as_deref(),
            reason.as_deref(),
            now,
        )?;
        Ok(Ok(call::ensure_if_changed(conn, room, changed, now)?))
    })
    .await
}
