//! `ensure_room`'s settings step (DESIGN §7.1): the name, the topic while one is declared, the join
//! rule, `history_visibility` and `guest_access` match the declaration, and every slug the room
//! has had names it by an alias that `m.room.canonical_alias` lists. It
//! compares with the state `ensure_room` already read and writes only what differs; what the
//! platform never declared (avatar, pinned events, an undeclared topic) is left alone.

use ruma::{OwnedRoomAliasId, OwnedRoomId};

use super::JobError;
use super::in_room::{Fresh, InRoom, ManagedRooms};
use crate::matrix::RoomConnection;
use crate::rooms::{DeclaredRoom, settings};
use crate::store::rooms::Room;

/// Puts back the aliases of every slug the room has had (`aliases`, the current one's included),
/// then writes each declared setting the room's state does not show (the directory listings come
/// after, as publication rules may look at the aliases).
pub async fn ensure_settings(
    homeserver: &impl RoomConnection,
    rooms: &impl ManagedRooms,
    at: &InRoom<'_>,
    aliases: &[(String, OwnedRoomAliasId)],
    declared: &DeclaredRoom,
) -> Result<(), JobError> {
    ensure_aliases(homeserver, rooms, at, aliases, &declared.slug).await?;
    for (event_type, content) in settings::differing(declared, |t| at.state.content(t, "")) {
        let room_id = at.room_id;
        tracing::info!(%room_id, event_type, "the room differs from the declaration: setting it");
        homeserver
            .set_state(at.bot, room_id, event_type, "", &content)
            .await?;
    }
    Ok(())
}

/// Every slug's alias points to the room (put back when missing, moved when it points to a room
/// no declared room holds any more), and `m.room.canonical_alias` names the current one with
/// the earlier ones as `alt_aliases` — only aliases that do point here, or Synapse refuses it.
async fn ensure_aliases(
    homeserver: &impl RoomConnection,
    rooms: &impl ManagedRooms,
    at: &InRoom<'_>,
    aliases: &[(String, OwnedRoomAliasId)],
    current_slug: &str,
) -> Result<(), JobError> {
    let (mut current, mut alternatives) = (None, Vec::new());
    for (slug, alias) in aliases {
        let made_by_create = at.fresh == Fresh::JustCreated && slug == current_slug;
        if !made_by_create && !ensure_alias_points_here(homeserver, rooms, at, alias).await? {
            continue;
        }
        if slug == current_slug {
            current = Some(alias.to_string());
        } else {
            alternatives.push(alias.to_string());
        }
    }
    alternatives.sort();
    let desired = settings::canonical_alias(current.as_deref(), &alternatives);
    let present = at.state.content(settings::CANONICAL_ALIAS, "");
    if !settings::canonical_alias_matches(present, &desired) {
        homeserver
            .set_state(at.bot, at.room_id, settings::CANONICAL_ALIAS, "", &desired)
            .await?;
    }
    Ok(())
}

/// Makes `alias` point to the room; returns whether it does. The alias namespace is the
/// appservice's alone and the slug is this room's, so an alias pointing elsewhere is a leftover
/// (of a replaced or deleted room) and is moved — unless another declared room holds that room,
/// which the daemon cannot settle by itself: then it is left where it is and not named.
async fn ensure_alias_points_here(
    homeserver: &impl RoomConnection,
    rooms: &impl ManagedRooms,
    at: &InRoom<'_>,
    alias: &OwnedRoomAliasId,
) -> Result<bool, JobError> {
    let (bot, room_id) = (at.bot, at.room_id);
    let target = match homeserver.resolve_alias(bot, alias.clone()).await? {
        Some(target) if target == room_id => return Ok(true),
        None => {
            tracing::info!(%alias, "the alias is missing: putting it back");
            homeserver.ensure_alias(bot, alias.clone(), room_id).await?;
            return Ok(true);
        }
        Some(target) => target,
    };
    if let Some(holder) = (rooms.holder(&target).await?).filter(|key| *key != at.room_key) {
        tracing::warn!(%alias, %target, other_room_key = holder, "the alias points to another declared room: leaving it there and out of the canonical alias");
        return Ok(false);
    }
    tracing::info!(%alias, from = %target, "the alias points to a room no longer managed: moving it here");
    match homeserver.ensure_alias_removed(bot, alias.clone()).await {
        Ok(()) => {}
        Err(error) if error.is_forbidden() => {
            tracing::warn!(%alias, %target, error = %error, "the bot may not remove the alias from the room it points to: leaving it out of the canonical alias");
            return Ok(false);
        }
        Err(error) => return Err(error.into()),
    }
    homeserver.ensure_alias(bot, alias.clone(), room_id).await?;
    Ok(true)
}

/// The stored declaration in the room domain's terms (what createRoom and convergence both use),
/// with the Matrix room of the group it is open to ([`super::create_room::group_room`]).
pub fn declared(room: &Room, open_to: Option<OwnedRoomId>) -> DeclaredRoom {
    DeclaredRoom {
        kind: room.kind,
        slug: room.slug.clone(),
        tenant: room.tenant_id.clone(),
        name: room.name.clone(),
        topic: room.topic.clone(),
        visibility: room.visibility,
        open_to,
    }
}
