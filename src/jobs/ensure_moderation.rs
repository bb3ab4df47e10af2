//! `ensure_room`'s bans step (DESIGN §7.3): every user banned here (by the room or tenant-wide) is
//! banned in Matrix with the platform's reason — which kicks a joined user and revokes an invite —
//! and a ban the tenant bot made that the platform lifted is undone. Bans by anyone else (a host
//! in a client) are left alone. Mutes are power levels: `rooms::reconcile` computes them.

use std::collections::BTreeMap;

use ruma::{OwnedUserId, UserId};

use super::JobError;
use super::in_room::InRoom;
use crate::matrix::RoomConnection;
use crate::store::member_state::MemberState;

/// The reason given with a ban the platform declared without one.
const BANNED: &str = "Banned";

/// The reason given when the platform lifts a ban.
const UNBANNED: &str = "Ban lifted";

/// Bans the users banned here and unbans those the bot banned whose ban was lifted, keeping
/// `memberships` (read from the room's state) up to date. Returns a sentence per user the bot may
/// not ban.
pub async fn ensure_bans(
    homeserver: &impl RoomConnection,
    at: &InRoom<'_>,
    declared: &[MemberState],
    memberships: &mut BTreeMap<OwnedUserId, String>,
) -> Result<Vec<String>, JobError> {
    let (bot, room_id) = (at.bot, at.room_id);
    let mut refused = Vec::new();
    for member in declared {
        let (Some(hold), Ok(user)) = (member.ban.in_force(), UserId::parse(&member.user_id)) else {
            continue;
        };
        if memberships.get(&user).map(String::as_str) == Some("ban") {
            continue;
        }
        let reason = hold.reason.as_deref().unwrap_or(BANNED);
        match homeserver.ban(bot, room_id, &user, reason).await {
            Ok(()) => {
                tracing::info!(%room_id, %user, "banned");
                memberships.insert(user, "ban".to_owned());
            }
            // Before room version 12, a user at the bot's own level (or a creator in v12).
            Err(error) if error.is_forbidden() => refused.push(format!(
                "cannot ban {user}: their power level is at or above the bot's own (lower it, or lift the ban)"
            )),
            Err(error) => return Err(error.into()),
        }
    }
    let banned_here = |user: &UserId| {
        declared
            .iter()
            .any(|m| m.user_id == user.as_str() && m.ban.is_in_force())
    };
    let lifted: Vec<OwnedUserId> = memberships
        .iter()
        .filter(|(user, membership)| {
            *membership == "ban"
                && !banned_here(user)
                && at.state.banned_by(user).as_deref() == Some(bot)
        })
        .map(|(user, _)| user.clone())
        .collect();
    for user in lifted {
        homeserver.unban(bot, room_id, &user, UNBANNED).await?;
        tracing::info!(%room_id, %user, "unbanned");
        memberships.insert(user, "leave".to_owned());
    }
    Ok(refused)
}

/// The sentence for muted users the bot cannot lower.
pub fn unmutable(users: &[OwnedUserId]) -> Vec<String> {
    users
        .iter()
        .map(|user| {
            format!(
                "cannot mute {user}: their power level is at or above the bot's own (a host at 100 before room version 12, or a creator): lower their role, or lift the mute"
            )
        })
        .collect()
}
