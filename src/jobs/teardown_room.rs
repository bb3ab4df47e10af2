//! `teardown_room`: takes a deleted room down in Synapse, step by step and resumable after a crash
//! at any step: remove its aliases and directory entry first (an alias left on a room nobody can
//! join would resolve forever), set the join rule to invite, kick every member and pending invitee
//! except the bot ("Room being deleted"), then the bot leaves and forgets. History stays.

use std::sync::Arc;

use ruma::{OwnedRoomAliasId, RoomId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::JobError;
use crate::app::App;
use crate::matrix;
use crate::store::jobs::{Job, NewJob};
use crate::store::rooms::{self as room_store, Room};

pub const KIND: &str = "teardown_room";
const REASON: &str = "Room being deleted";

/// What to take down, captured when the platform deleted the room (a later declaration of the
/// same slug may already describe a new room).
#[derive(Deserialize)]
struct Payload {
    room_id: Option<String>,
    aliases: Vec<OwnedRoomAliasId>,
}

pub fn new_job(room: &Room, aliases: &[OwnedRoomAliasId]) -> NewJob {
    new_job_for(room, room.room_id.as_deref(), aliases)
}

/// Takes down `room_id`, which work racing a DELETE of `room` created (DESIGN §7.1: DELETE wins).
pub fn new_job_for(room: &Room, room_id: Option<&str>, aliases: &[OwnedRoomAliasId]) -> NewJob {
    NewJob {
        tenant_id: room.tenant_id.clone(),
        room_key: Some(room.id),
        kind: KIND.to_owned(),
        payload: json!({"room_id": room_id, "aliases": aliases}),
    }
}

/// The same teardown once more, for a repeated DELETE after `failed` ended in failure.
pub fn again(failed: &Job) -> NewJob {
    NewJob {
        tenant_id: failed.tenant_id.clone(),
        room_key: failed.room_key,
        kind: KIND.to_owned(),
        payload: serde_json::from_str(&failed.payload).unwrap_or_else(|_| json!({})),
    }
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let payload: Payload = super::payload(job)?;
    let bot = super::tenant_bot(app, job).await?;
    for alias in payload.aliases {
        ensure_alias_removed(app, &bot, alias, payload.room_id.as_deref()).await?;
    }
    let Some(room_id) = payload.room_id else {
        return Ok(json!({"room_id": null, "note": "the room was never created in Synapse"}));
    };
    let room_id =
        RoomId::parse(&room_id).map_err(|error| JobError::Permanent(error.to_string()))?;
    // Out of the tenant's directory first, whether or not the bot is still in the room.
    super::ensure_directory::delist(app, &bot, &job.tenant_id, &room_id).await?;
    let (kicked, out_of_reach) = match app.client_for(&bot).room_state(&bot, &room_id).await {
        Ok(state) => clear(app, &bot, &room_id, &state).await?,
        // The bot is out already: an earlier attempt got as far as leaving.
        Err(error) if error.is_forbidden() => (0, Vec::new()),
        Err(error) => return Err(error.into()),
    };
    app.client_for(&bot)
        .ensure_left_and_forgotten(&bot, &room_id)
        .await?;
    Ok(json!({"room_id": room_id, "kicked": kicked, "could_not_kick": out_of_reach}))
}

/// Removes `alias` unless it names a room we manage other than `room_id`: a slug declared again
/// after the DELETE (or released by it) may already name a new room.
async fn ensure_alias_removed(
    app: &Arc<App>,
    bot: &UserId,
    alias: OwnedRoomAliasId,
    room_id: Option<&str>,
) -> Result<(), JobError> {
    let Some(target) = app
        .client_for(bot)
        .resolve_alias(bot, alias.clone())
        .await?
    else {
        return Ok(());
    };
    if room_id != Some(target.as_str()) {
        let target = target.to_string();
        let managed = app
            .store
            .run(move |c| room_store::find_live_by_room_id(c, &target))
            .await?;
        if managed.is_some() {
            return Ok(());
        }
    }
    Ok(app.client_for(bot).ensure_alias_removed(bot, alias).await?)
}

/// Unpublishes, closes and empties the room; returns how many were kicked and who could not be.
async fn clear(
    app: &Arc<App>,
    bot: &UserId,
    room_id: &RoomId,
    state: &matrix::RoomState,
) -> Result<(usize, Vec<String>), JobError> {
    let homeserver = &app.client_for(bot);
    homeserver.set_published(bot, room_id, false).await?;
    if state
        .content("m.room.canonical_alias", "")
        .is_some_and(|content| content.as_object().is_some_and(|c| !c.is_empty()))
    {
        homeserver
            .set_state(bot, room_id, "m.room.canonical_alias", "", &json!({}))
            .await?;
    }
    if state
        .content("m.room.join_rules", "")
        .and_then(|c| c["join_rule"].as_str())
        != Some("invite")
    {
        homeserver
            .set_state(
                bot,
                room_id,
                "m.room.join_rules",
                "",
                &json!({"join_rule": "invite"}),
            )
            .await?;
    }
    let (mut kicked, mut out_of_reach) = (0, Vec::new());
    for (user, membership) in state.memberships() {
        if user == bot || !matches!(membership.as_str(), "join" | "invite" | "knock") {
            continue;
        }
        match homeserver.kick(bot, room_id, &user, REASON).await {
            Ok(()) => kicked += 1,
            // Before room version 12 a member at the bot's own level cannot be kicked by it.
            Err(error) if error.is_forbidden() => {
                tracing::warn!(%user, "cannot kick this member: their power level equals the bot's");
                out_of_reach.push(user.to_string());
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok((kicked, out_of_reach))
}
