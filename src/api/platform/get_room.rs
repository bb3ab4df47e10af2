//! `GET /v1/tenants/{tenant}/rooms/{kind}/{slug}`: the desired and the actual state of a room. Its
//! members are the declared ones and the users banned or muted in it (by the room or
//! tenant-wide), each with `banned` and `muted` (`null`, or the reason, scope and expiry).

use axum::Json;
use serde_json::{Value, json};

use super::call::RoomCall;
use super::error::PlatformError;
use crate::store::member_state::{self, Hold, MemberState};
use crate::store::{moderation, rooms as room_store};

pub async fn handler(room: RoomCall) -> Result<Json<Value>, PlatformError> {
    let (app, config) = (&room.call.app, &room.call.config);
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
            Ok(Some((
                room,
                member_state::member_states(&members, &moderation),
            )))
        })
        .await?;
    let Some((stored, members)) = found else {
        return Err(PlatformError::NotFound(format!(
            "no room is declared as {}",
            room.alias
        )));
    };
    let alias = crate::rooms::alias(
        room.kind,
        &stored.slug,
        &room.call.tenant.id,
        &config.homeserver.server_name,
    )?;
    Ok(Json(json!({
        "tenant": stored.tenant_id,
        "kind": stored.kind,
        "slug": stored.slug,
        "alias": alias,
        "name": stored.name,
        "topic": stored.topic,
        "visibility": stored.visibility,
        "room_id": stored.room_id,
        "room_version": stored.room_version,
        "previous_room_id": stored.previous_room_id,
        "status": stored.status,
        "last_error": stored.last_error,
        "members": members.iter().filter_map(member).collect::<Vec<_>>(),
    })))
}

/// A declared member, or a user banned or muted here; `None` for a removed member.
fn member(state: &MemberState) -> Option<Value> {
    let (banned, muted) = (state.ban.in_force(), state.mute.in_force());
    if state.role().is_none() && banned.is_none() && muted.is_none() {
        return None;
    }
    Some(json!({
        "user_id": state.user_id,
        "role": state.role(),
        "power_level": state.role().and(state.applied_level),
        "banned": banned.map(hold),
        "muted": muted.map(hold),
    }))
}

/// A ban or mute in force, its expiry in RFC 3339 like the audit log's times.
fn hold(hold: &Hold) -> Value {
    json!({
        "scope": hold.scope,
        "reason": hold.reason,
        "expires_at": hold.expires_at.map(crate::clock::rfc3339),
    })
}
