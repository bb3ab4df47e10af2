//! The repair `ensure_room` makes when its first read shows the bot out of the room or without
//! its power (DESIGN §6, "What transactions trigger"; `rooms reconcile`): the gentlest that
//! works — the sender invites and empowers the bot, or the bot joins again — else the room is
//! replaced under the same aliases and the old id kept as `previous_room_id`.

use std::sync::Arc;

use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::{Value, json};

use super::JobError;
use super::diagnose::{self, Finding};
use crate::app::App;
use crate::matrix::{self, RoomState};
use crate::store::rooms::{self as room_store, Room};
use crate::store::unix_ms;

/// A repaired room: its state to go on with, the new room when it was replaced, and what was done
/// (for the job's result).
pub struct Repaired {
    pub state: RoomState,
    /// `(room id, room version)` of the replacement.
    pub replacement: Option<(OwnedRoomId, String)>,
    pub record: Value,
}

/// Classes the room from the bot's `first` read and repairs it; `None` when the room was deleted
/// while it was being replaced. A room being adopted (`adopting`) is not the daemon's to replace:
/// when the bot cannot be brought in with its power, the job fails saying who can.
pub async fn repair(
    app: &Arc<App>,
    room: &Room,
    bot: &UserId,
    room_id: &RoomId,
    first: Result<RoomState, matrix::Error>,
    adopting: bool,
) -> Result<Option<Repaired>, JobError> {
    let finding = diagnose::classify(app, bot, room_id, first).await?;
    tracing::warn!(%room_id, ?finding, "the room needs repair: {}", finding.action());
    if let Some(state) = restore(app, bot, room_id, finding).await? {
        return Ok(Some(Repaired {
            state,
            replacement: None,
            record: json!({"finding": finding, "action": "restored"}),
        }));
    }
    if adopting {
        return Err(JobError::Permanent(cannot_adopt(app, bot, room_id).await));
    }
    let Some((new_id, version)) = replace(app, room, bot, room_id).await? else {
        return Ok(None);
    };
    tracing::warn!(lost = %room_id, new = %new_id, "replaced the room");
    let state = app.client_for(bot).room_state(bot, &new_id).await?;
    Ok(Some(Repaired {
        state,
        record: json!({"finding": finding, "action": "replaced", "previous_room_id": room_id}),
        replacement: Some((new_id, version)),
    }))
}

/// Brings the bot back with its power where the room allows it; `None`: the room must be replaced.
async fn restore(
    app: &Arc<App>,
    bot: &UserId,
    room_id: &RoomId,
    finding: Finding,
) -> Result<Option<RoomState>, JobError> {
    let acted = match finding {
        Finding::BotNotJoined {
            sender_can_repair: true,
        }
        | Finding::BotLacksPower {
            sender_can_repair: true,
        } => {
            sender_repair(app, bot, room_id).await?;
            true
        }
        Finding::BotNotJoined {
            sender_can_repair: false,
        } => rejoin(app, bot, room_id).await?,
        _ => false,
    };
    if !acted {
        return Ok(None);
    }
    let state = app.client_for(bot).room_state(bot, room_id).await?;
    Ok(diagnose::healthy(&state, bot).then_some(state))
}

/// Why a room to adopt cannot be: nobody of the appservice's holds the power in it. Names the
/// room's members who could raise the bot, when the bot or the sender can read the room.
async fn cannot_adopt(app: &App, bot: &UserId, room_id: &RoomId) -> String {
    let homeserver = app.client_for(bot);
    let sender = app.config().sender_beside(bot);
    let state = match homeserver.room_state(bot, room_id).await {
        Ok(state) => Some(state),
        Err(_) => homeserver.room_state(&sender, room_id).await.ok(),
    };
    let able: Vec<String> = state
        .as_ref()
        .and_then(|state| {
            let authority = state.authority()?;
            let joined = state.memberships().into_iter();
            Some(
                joined
                    .filter(|(user, membership)| membership == "join" && *user != *bot)
                    .filter(|(user, _)| authority.may_empower(user, bot))
                    .map(|(user, _)| user.to_string())
                    .collect(),
            )
        })
        .unwrap_or_default();
    let who = match able.as_slice() {
        [] => "A member allowed to change its m.room.power_levels".to_owned(),
        [one] => one.clone(),
        many => format!("one of {}", many.join(", ")),
    };
    let joined = state
        .as_ref()
        .is_some_and(|state| state.memberships().get(bot).is_some_and(|m| m == "join"));
    let task = if joined {
        format!("raise {bot} to 100")
    } else {
        format!("invite {bot} and raise it to 100")
    };
    format!(
        "cannot adopt {room_id}: none of the appservice's users holds the power there. {who} must {task} (m.room.power_levels), then PUT the room again"
    )
}

/// The bot was removed: it joins again if it may (a public room, or invited back). Returns false
/// when it may not (a private room it was not invited back to).
async fn rejoin(app: &Arc<App>, bot: &UserId, room_id: &RoomId) -> Result<bool, JobError> {
    match app.client_for(bot).join(bot, room_id).await {
        Ok(()) => Ok(true),
        // 403: not allowed in; 404: no joined member left on the server to join through.
        Err(error) if error.is_no_way_in() => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// A room the bot cannot manage again (unknown to the homeserver, or out of the bot's and the
/// sender's reach) is replaced: its aliases (in our exclusive namespace, so the appservice may
/// remove them) move to a new room, created like the first, whose id is stored with the old one
/// as `previous_room_id`. The old room keeps its history.
async fn replace(
    app: &Arc<App>,
    room: &Room,
    bot: &UserId,
    lost: &RoomId,
) -> Result<Option<(OwnedRoomId, String)>, JobError> {
    tracing::warn!(%lost, "the bot cannot join the lost room again: replacing it");
    super::ensure_directory::delist(app, bot, &room.tenant_id, lost).await?;
    for (_, alias) in super::slug_aliases(app, room).await? {
        app.client_for(bot).ensure_alias_removed(bot, alias).await?;
    }
    let (room_key, now) = (room.id, unix_ms(app.clock.now()));
    app.store
        .write(move |c| room_store::clear_created(c, room_key, now))
        .await?;
    super::create_room::ensure_created(app, room_key, room.generation).await
}

/// The sender invites the bot (unless invited or joined), the bot joins, and the sender raises the
/// bot to its level: from then on the bot manages the room.
pub async fn sender_repair(app: &App, bot: &UserId, room_id: &RoomId) -> Result<(), matrix::Error> {
    let sender = app.config().sender_beside(bot);
    let homeserver = app.client_for(bot);
    let state = homeserver.room_state(&sender, room_id).await?;
    let membership = state.memberships().get(bot).cloned();
    if !matches!(membership.as_deref(), Some("join" | "invite")) {
        homeserver.invite(&sender, room_id, bot).await?;
    }
    if membership.as_deref() != Some("join") {
        homeserver.join(bot, room_id).await?;
    }
    if !state
        .authority()
        .is_some_and(|authority| authority.bot_has_power(bot))
    {
        let mut content = state
            .content("m.room.power_levels", "")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        if !content["users"].is_object() {
            content["users"] = serde_json::json!({});
        }
        content["users"][bot.as_str()] = crate::rooms::power_levels::BOT_LEVEL.into();
        homeserver
            .set_state(&sender, room_id, "m.room.power_levels", "", &content)
            .await?;
    }
    tracing::info!(%room_id, "the sender brought the tenant bot into the room with power: the bot manages it from now on");
    Ok(())
}
