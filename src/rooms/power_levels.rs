//! `m.room.power_levels` as JSON: the createRoom override and the read-modify-write of reconcile.
//!
//! JSON rather than ruma's typed content, which needs the room's authorization rules and omits
//! fields equal to their defaults when serialized; here every field we do not own passes through.

use std::collections::{BTreeMap, BTreeSet};

use ruma::{OwnedUserId, UserId};
use serde_json::{Map, Value, json};

/// The tenant bot's level in rooms where it is not a creator with unlimited power.
pub const BOT_LEVEL: i64 = 100;

/// Levels written explicitly (when absent) so a server's `default_power_level_content_override`
/// or a preset cannot change them. `invite` is pinned too, although DESIGN §7 names only the other
/// four: the `private_chat` preset lowers it to 0, which would let any member invite anyone into a
/// room whose membership the platform owns.
pub const PINNED_LEVELS: [(&str, i64); 5] = [
    ("redact", 50),
    ("kick", 50),
    ("ban", 50),
    ("state_default", 50),
    ("invite", 50),
];

/// The outcome of [`reconcile`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled {
    /// The content to send, or `None` when the room already has it.
    pub content: Option<Value>,
    /// Users whose entry should change but that Matrix does not let the bot change: their current
    /// level is at or above the bot's own, or the wanted level is above it (rooms before v12).
    /// Their entries are left as they are; everything else is still applied.
    pub out_of_reach: Vec<OwnedUserId>,
    /// Muted users the bot cannot lower: among `out_of_reach`, or creators with unlimited power.
    pub unmutable: Vec<OwnedUserId>,
    /// The level each desired or muted user has once `content` is applied (users out of reach and
    /// creators left out).
    pub levels: BTreeMap<OwnedUserId, i64>,
}

/// createRoom's `power_level_content_override`: the desired levels (0, the default, left out),
/// the bot at [`BOT_LEVEL`] unless it is a creator with unlimited power (then it must not be
/// listed), and the [`PINNED_LEVELS`].
pub fn initial_override(
    desired: &BTreeMap<OwnedUserId, i64>,
    bot: &UserId,
    bot_is_creator: bool,
) -> Value {
    let mut users: Map<String, Value> = desired
        .iter()
        .filter(|(user, level)| **level != 0 && ***user != *bot)
        .map(|(user, level)| (user.to_string(), json!(level)))
        .collect();
    if !bot_is_creator {
        users.insert(bot.to_string(), json!(BOT_LEVEL));
    }
    let mut content = Map::new();
    content.insert("users".to_owned(), Value::Object(users));
    for (key, level) in PINNED_LEVELS {
        content.insert(key.to_owned(), json!(level));
    }
    Value::Object(content)
}

/// What the platform wants of a room's power levels: the declared members' levels, the muted
/// users, and the users whose entries the daemon owns.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// Each declared member's role level.
    pub desired: &'a BTreeMap<OwnedUserId, i64>,
    /// Users muted here (members or not): below the level that sends messages.
    pub muted: &'a BTreeSet<OwnedUserId>,
    /// Users whose entries the daemon wrote: an owned user no longer desired nor muted loses it.
    pub owned: &'a BTreeSet<OwnedUserId>,
}

/// The room's power levels with the platform's wishes applied (DESIGN §7, §7.3).
///
/// Each desired user gets its level (no entry when it equals `users_default`, which keeps the
/// event small in rooms of thousands); a muted user gets the lower of that and one below the
/// level `m.room.message` needs ([`muted_level`]); users in `owned` that are neither desired nor
/// muted lose their entry; entries of users never owned, and every other field, stay as they
/// are. `creators` are the users with unlimited power (see `room_version::privileged_creators`):
/// they are never listed, and cannot be muted. The bot is listed at [`BOT_LEVEL`] unless it is
/// one of them.
pub fn reconcile(
    current: &Value,
    wanted: Wanted<'_>,
    bot: &UserId,
    creators: &BTreeSet<OwnedUserId>,
) -> Reconciled {
    let Wanted {
        desired,
        muted,
        owned,
    } = wanted;
    let mut content = current.as_object().cloned().unwrap_or_default();
    let mut users = content
        .get("users")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let users_default = content.get("users_default").and_then(level).unwrap_or(0);
    let bot_is_creator = creators.contains(bot);
    // `None`: unlimited.
    let bot_level = (!bot_is_creator).then(|| {
        users
            .get(bot.as_str())
            .and_then(level)
            .unwrap_or(users_default)
    });

    let mut targets: BTreeMap<&UserId, Option<i64>> = owned
        .iter()
        .filter(|user| !desired.contains_key(*user))
        .map(|user| (&**user, None))
        .collect();
    let mut levels: BTreeMap<OwnedUserId, i64> = desired.clone();
    let below_sending = muted_level(&content);
    for user in muted {
        let level = levels.get(user).copied().unwrap_or(users_default);
        levels.insert(user.clone(), level.min(below_sending));
    }
    let planned = levels.clone();
    for (user, wanted) in &planned {
        targets.insert(user, (*wanted != users_default).then_some(*wanted));
    }
    let mut unmutable = Vec::new();
    for creator in creators {
        targets.remove(&**creator);
        levels.remove(creator);
        if muted.contains(creator) {
            unmutable.push(creator.clone());
        }
    }
    targets.insert(bot, (!bot_is_creator).then_some(BOT_LEVEL));

    let mut out_of_reach = Vec::new();
    let mut users_changed = false;
    for (user, target) in targets {
        let old = users.get(user.as_str());
        match (old, target) {
            (None, None) => continue,
            (Some(value), Some(wanted)) if level(value) == Some(wanted) => continue,
            _ => {}
        }
        if let Some(own) = bot_level {
            let old_blocks = user != bot && old.is_some_and(|v| level(v).unwrap_or(0) >= own);
            if old_blocks || target.is_some_and(|wanted| wanted > own) {
                if muted.contains(user) {
                    unmutable.push(user.to_owned());
                }
                levels.remove(user);
                out_of_reach.push(user.to_owned());
                continue;
            }
        }
        match target {
            Some(wanted) => users.insert(user.to_string(), json!(wanted)),
            None => users.remove(user.as_str()),
        };
        users_changed = true;
    }
    if users_changed {
        content.insert("users".to_owned(), Value::Object(users));
    }
    for (key, pinned) in PINNED_LEVELS {
        if !content.contains_key(key) && bot_level.is_none_or(|own| pinned <= own) {
            content.insert(key.to_owned(), json!(pinned));
        }
    }

    let content = Value::Object(content);
    Reconciled {
        content: (content != *current).then_some(content),
        out_of_reach,
        unmutable,
        levels,
    }
}

/// The levels a room carries (DESIGN §7.3 "Across the tenant"): each declared member's role
/// level and each tenant staff member's staff level, the higher where a user is both.
pub fn with_staff(
    members: &BTreeMap<OwnedUserId, i64>,
    staff: &BTreeMap<OwnedUserId, i64>,
) -> BTreeMap<OwnedUserId, i64> {
    let mut levels = members.clone();
    for (user, level) in staff {
        let entry = levels.entry(user.clone()).or_insert(*level);
        *entry = (*entry).max(*level);
    }
    levels
}

/// The level of a muted user: one below what sending `m.room.message` needs in a room with
/// these power levels (`events["m.room.message"]`, else `events_default`, else 0).
pub fn muted_level(content: &serde_json::Map<String, Value>) -> i64 {
    let send = content
        .get("events")
        .and_then(|events| events.get("m.room.message"))
        .and_then(level)
        .or_else(|| content.get("events_default").and_then(level))
        .unwrap_or(0);
    send - 1
}

/// `user`'s own entry in a power-levels `content`, if it has one.
pub fn user_level(content: &Value, user: &UserId) -> Option<i64> {
    content
        .get("users")
        .and_then(|users| users.get(user.as_str()))
        .and_then(level)
}

/// A power level as rooms store it: an integer, or a string of one in rooms before v10.
fn level(value: &Value) -> Option<i64> {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

#[cfg(test)]
#[path = "power_levels_tests.rs"]
mod tests;
