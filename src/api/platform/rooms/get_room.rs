//! `GET /v1/tenants/{tenant}/rooms/{kind}/{slug}`: the desired and the actual state of a room. Its
//! members are the declared ones and the users banned or muted in it (by the room or
//! tenant-wide), each with `banned` and `muted` (`null`, or the reason, scope and expiry).

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::platform::call::RoomCall;
use crate::api::platform::error::PlatformError;
use crate::api::platform::params::{RoomPath, TenantErrors};
use crate::rooms::RoomKind;
use crate::rooms::validate::Visibility;
use crate::store::member_state::{self, Hold, MemberState};
use crate::store::rooms::RoomStatus;
use crate::store::{moderation, room_access, rooms as room_store};

/// A declared room: what the platform declared and what the daemon made of it in Matrix.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomView {
    pub tenant: String,
    pub kind: RoomKind,
    /// The slug the room has now (after a rename, the new one).
    pub slug: String,
    /// `#{kind}-{slug}-{tenant}:{server}`.
    pub alias: String,
    pub name: String,
    pub topic: Option<String>,
    pub visibility: Visibility,
    /// For a private event room open to a group's members: that group room (its current slug).
    pub open_to: Option<OpenToView>,
    /// Why the room is not in the homeserver's server-wide directory although its tenant lists
    /// rooms there (`server_directory`): the homeserver refused. The room is in its tenant's own
    /// directory either way.
    pub directory_note: Option<String>,
    /// The Matrix room has end-to-end encryption on (an adopted room may): the daemon sends no
    /// message there, as it does not speak Megolm.
    pub encrypted: bool,
    /// The Matrix room, once created; never parse it (v12 room ids have no server part).
    pub room_id: Option<String>,
    pub room_version: Option<String>,
    /// The Matrix room this one replaced, when a lost room had to be made again.
    pub previous_room_id: Option<String>,
    pub status: RoomStatus,
    /// Why the room's last job failed, when `status` is `failed`.
    pub last_error: Option<String>,
    /// The declared members and the users banned or muted here.
    pub members: Vec<MemberView>,
}

/// The group room whose members may join.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenToView {
    /// Always `group`.
    pub kind: &'static str,
    pub slug: String,
}

/// A declared member, or a user banned or muted in the room.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    /// The declared role; `null` for a user who is only banned or muted.
    pub role: Option<String>,
    /// The power level the daemon applied for the role, once it has.
    pub power_level: Option<i32>,
    pub banned: Option<HoldView>,
    pub muted: Option<HoldView>,
}

/// A ban or mute in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    /// `room`, or `tenant` for a tenant-wide ban or mute.
    pub scope: &'static str,
    pub reason: Option<String>,
    /// When it lifts by itself (RFC 3339); `null`: until lifted.
    pub expires_at: Option<String>,
}

/// The desired and actual state of a room, also after DELETE (`status: deleted`).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}",
    operation_id = "get_room",
    tag = "rooms",
    params(RoomPath),
    responses((status = 200, description = "The room.", body = RoomView), TenantErrors),
    security(("tenant_token" = [])),
)]
pub async fn handler(room: RoomCall) -> Result<Json<RoomView>, PlatformError> {
    let app = &room.call.app;
    let (tenant, kind, slug) = (
        room.call.tenant.id.clone(),
        room.kind.as_str(),
        room.slug.clone(),
    );
    let found = app
        .store
        .run(move |c| {
            let Some(room) = room_store::find(c, &tenant, kind, &slug)? else {
                return Ok(None);
            };
            let members = crate::store::members::members(c, room.id)?;
            let moderation = moderation::for_room(c, &room.tenant_id, room.id)?;
            let room_access = room_access::get(c, room.id)?;
            let open_to = match room_access.open_to_room_key {
                Some(group_key) => room_store::get(c, group_key)?.map(|group| OpenToView {
                    kind: RoomKind::Group.as_str(),
                    slug: group.slug,
                }),
                None => None,
            };
            Ok(Some((
                room,
                member_state::member_states(&members, &moderation),
                open_to,
                room_access,
            )))
        })
        .await?;
    let Some((stored, members, open_to, access)) = found else {
        return Err(PlatformError::NotFound(format!(
            "no room is declared as {}",
            room.alias
        )));
    };
    let alias = crate::rooms::alias(
        room.kind,
        &stored.slug,
        &room.call.tenant.id,
        room.call.server_name(),
    )?;
    Ok(Json(RoomView {
        tenant: stored.tenant_id,
        kind: stored.kind,
        slug: stored.slug,
        alias: alias.to_string(),
        name: stored.name,
        topic: stored.topic,
        visibility: stored.visibility,
        open_to,
        directory_note: access.directory_note,
        encrypted: access.encrypted,
        room_id: stored.room_id,
        room_version: stored.room_version,
        previous_room_id: stored.previous_room_id,
        status: stored.status,
        last_error: stored.last_error,
        members: members.iter().filter_map(member).collect(),
    }))
}

/// A declared member, or a user banned or muted here; `None` for a removed member.
fn member(state: &MemberState) -> Option<MemberView> {
    let (banned, muted) = (state.ban.in_force(), state.mute.in_force());
    if state.role().is_none() && banned.is_none() && muted.is_none() {
        return None;
    }
    Some(MemberView {
        user_id: state.user_id.clone(),
        role: state.role().map(str::to_owned),
        power_level: state.role().and(state.applied_level),
        banned: banned.map(hold),
        muted: muted.map(hold),
    })
}

/// A ban or mute in force, its expiry in RFC 3339 like the audit log's times.
fn hold(hold: &Hold) -> HoldView {
    HoldView {
        scope: hold.scope,
        reason: hold.reason.clone(),
        expires_at: hold.expires_at.map(crate::clock::rfc3339),
    }
}
