//! What the homeserver says about a managed room, asked without changing anything. `rooms
//! reconcile` (and its `--dry-run`) shows it; `ensure_room` picks its repair from it.
//!
//! Room ids are never parsed (v12 ids carry no server name): whether the homeserver knows a room
//! is asked of its room directory, which answers for any room it has, member or not.

use ruma::{RoomId, UserId};
use serde::Serialize;

use crate::app::App;
use crate::matrix::{self, RoomState};

/// One room's diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "finding")]
pub enum Finding {
    /// No Matrix room yet: the next `ensure_room` creates it.
    NotCreated,
    /// The tenant bot is joined and holds its power.
    Healthy,
    /// The homeserver does not know the room id: its database was reset, or the id came from
    /// another environment's data. The room is replaced.
    UnknownToHomeserver,
    /// The bot is not in the room: it was removed, or never joined (a room the appservice's
    /// sender created, as OpenMeet's single bot did before tenant bots).
    BotNotJoined { sender_can_repair: bool },
    /// The bot is joined but someone lowered its power level.
    BotLacksPower { sender_can_repair: bool },
}

impl Finding {
    /// What `ensure_room` will do about it, for the operator.
    pub fn action(self) -> &'static str {
        match self {
            Self::NotCreated => "create the room",
            Self::Healthy => "apply members and power levels",
            Self::UnknownToHomeserver => {
                "replace: create a new room, move the alias, invite the members again"
            }
            Self::BotNotJoined {
                sender_can_repair: true,
            }
            | Self::BotLacksPower {
                sender_can_repair: true,
            } => "the sender brings the bot in and grants it power (adoption)",
            Self::BotNotJoined {
                sender_can_repair: false,
            } => "the bot joins again if the room lets it, otherwise replace the room",
            Self::BotLacksPower {
                sender_can_repair: false,
            } => "replace: create a new room, move the alias, invite the members again",
        }
    }
}

/// Whether `state` (as the bot sees it) shows the bot joined with power.
pub fn healthy(state: &RoomState, bot: &UserId) -> bool {
    state.memberships().get(bot).map(String::as_str) == Some("join")
        && state
            .authority()
            .is_some_and(|authority| authority.bot_has_power(bot))
}

/// Diagnoses `room_id` (`None`: not created yet) for `bot`.
pub async fn diagnose(
    app: &App,
    bot: &UserId,
    room_id: Option<&RoomId>,
) -> Result<Finding, matrix::Error> {
    let Some(room_id) = room_id else {
        return Ok(Finding::NotCreated);
    };
    let state = app.client_for(bot).room_state(bot, room_id).await;
    classify(app, bot, room_id, state).await
}

/// Diagnoses from the bot's own read of the room's state (which `ensure_room` has already made).
pub async fn classify(
    app: &App,
    bot: &UserId,
    room_id: &RoomId,
    bot_view: Result<RoomState, matrix::Error>,
) -> Result<Finding, matrix::Error> {
    // Whether the bot is joined, and whether its read already proved the room exists (a bot that
    // left may still read the state as it was when it left).
    let (bot_joined, known) = match bot_view {
        Ok(state) if healthy(&state, bot) => return Ok(Finding::Healthy),
        Ok(state) => (
            state.memberships().get(bot).map(String::as_str) == Some("join"),
            true,
        ),
        // A homeserver that forgot our bot (a reset) may still know the room: register first.
        Err(error) if error.retry_kind() == matrix::RetryKind::UserNotRegistered => {
            if app.client_for(bot).room_known(room_id).await? {
                return Err(error);
            }
            return Ok(Finding::UnknownToHomeserver);
        }
        // 403: not a member; 404: no such room.
        Err(error) if error.is_no_way_in() => (false, false),
        Err(error) => return Err(error),
    };
    if !known && !app.client_for(bot).room_known(room_id).await? {
        return Ok(Finding::UnknownToHomeserver);
    }
    let sender_can_repair = sender_can_repair(app, bot, room_id).await?;
    Ok(if bot_joined {
        Finding::BotLacksPower { sender_can_repair }
    } else {
        Finding::BotNotJoined { sender_can_repair }
    })
}

/// Whether the appservice's sender is in the room with the power to invite the bot (unless it
/// is there already) and raise it to its level.
pub async fn sender_can_repair(
    app: &App,
    bot: &UserId,
    room_id: &RoomId,
) -> Result<bool, matrix::Error> {
    let sender = app.config().sender_beside(bot);
    let state = match app.client_for(bot).room_state(&sender, room_id).await {
        Ok(state) => state,
        Err(error) if error.is_no_way_in() => return Ok(false),
        Err(error) => return Err(error),
    };
    let memberships = state.memberships();
    if memberships.get(&sender).map(String::as_str) != Some("join") {
        return Ok(false);
    }
    let Some(authority) = state.authority() else {
        return Ok(false);
    };
    let can_bring_in = match memberships.get(bot).map(String::as_str) {
        Some("join" | "invite") => true,
        Some("ban") => false,
        _ => authority.may_invite(&sender),
    };
    Ok(can_bring_in && (authority.bot_has_power(bot) || authority.may_empower(&sender, bot)))
}
