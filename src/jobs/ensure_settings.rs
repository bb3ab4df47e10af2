//! `ensure_room`'s settings step (DESIGN §7.1): the name, the topic while one is declared, the join
//! rule, `history_visibility` and `guest_access` match the declaration, and every slug the room
//! has had names it by an alias that `m.room.canonical_alias` lists. It
//! compares with the state `ensure_room` already read and writes only what differs; what the
//! platform never declared (avatar, pinned events, an undeclared topic) is left alone.

use std::sync::Arc;

use ruma::{OwnedRoomAliasId, OwnedRoomId, RoomId, UserId};

use super::JobError;
use crate::app::App;
use crate::matrix::RoomState;
use crate::rooms::{DeclaredRoom, settings};
use crate::store::rooms::{self as room_store, Room};

/// Whether the room was created from its declaration by this very job (`createRoom` set the current
/// slug's alias and left the room out of every directory, and nothing can have moved them since):
/// then neither is read back, two calls fewer per new room on the homeserver every tenant shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fresh {
    JustCreated,
    Existing,
}

/// Puts back the aliases, then writes each declared setting the room's `state` does not show (the
/// directory listings come after, as publication rules may look at the aliases).
pub async fn ensure_settings(
    app: &Arc<App>,
    room: &Room,
    declared: &DeclaredRoom,
    bot: &UserId,
    room_id: &RoomId,
    state: &RoomState,
    fresh: Fresh,
) -> Result<(), JobError> {
    ensure_aliases(app, room, bot, room_id, state, fresh).await?;
    for (event_type, content) in settings::differing(declared, |t| state.content(t, "")) {
        tracing::info!(%room_id, event_type, "the room differs from the declaration: setting it");
        app.client_for(bot)
            .set_state(bot, room_id, event_type, "", &content)
            .await?;
    }
    Ok(())
}

/// Every slug's alias points to the room (put back when missing, moved when it points to a room
/// no declared room holds any more), and `m.room.canonical_alias` names the current one with
/// the earlier ones as `alt_aliases` — only aliases that do point here, or Synapse refuses it.
async fn ensure_aliases(
    app: &Arc<App>,
    room: &Room,
    bot: &UserId,
    room_id: &RoomId,
    state: &RoomState,
    fresh: Fresh,
) -> Result<(), JobError> {
    let (mut current, mut alternatives) = (None, Vec::new());
    for (slug, alias) in super::slug_aliases(app, room).await? {
        let made_by_create = fresh == Fresh::JustCreated && *slug == room.slug;
        if !made_by_create && !ensure_alias_points_here(app, room, bot, room_id, &alias).await? {
            continue;
        }
        if *slug == room.slug {
            current = Some(alias.to_string());
        } else {
            alternatives.push(alias.to_string());
        }
    }
    alternatives.sort();
    let desired = settings::canonical_alias(current.as_deref(), &alternatives);
    let present = state.content(settings::CANONICAL_ALIAS, "");
    if !settings::canonical_alias_matches(present, &desired) {
        app.client_for(bot)
            .set_state(bot, room_id, settings::CANONICAL_ALIAS, "", &desired)
            .await?;
    }
    Ok(())
}

/// Makes `alias` point to `room_id`; returns whether it does. The alias namespace is the
/// appservice's alone and the slug is this room's, so an alias pointing elsewhere is a leftover
/// (of a replaced or deleted room) and is moved — unless another declared room holds that room,
/// which the daemon cannot settle by itself: then it is left where it is and not named.
async fn ensure_alias_points_here(
    app: &Arc<App>,
    room: &Room,
    bot: &UserId,
    room_id: &RoomId,
    alias: &OwnedRoomAliasId,
) -> Result<bool, JobError> {
    let homeserver = app.client_for(bot);
    let target = match homeserver.resolve_alias(bot, alias.clone()).await? {
        Some(target) if target == room_id => return Ok(true),
        None => {
            tracing::info!(%alias, "the alias is missing: putting it back");
            homeserver.ensure_alias(bot, alias.clone(), room_id).await?;
            return Ok(true);
        }
        Some(target) => target,
    };
    let other = target.to_string();
    let holder = app
        .store
        .run(move |c| room_store::find_live_by_room_id(c, &other))
        .await?;
    if let Some(holder) = holder.filter(|holder| holder.id != room.id) {
        tracing::warn!(%alias, %target, other_slug = %holder.slug, "the alias points to another declared room: leaving it there and out of the canonical alias");
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
