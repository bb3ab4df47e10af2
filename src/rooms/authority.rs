//! Who may do what in a room, read from its `m.room.create` and `m.room.power_levels` contents:
//! enough to tell whether the tenant bot holds its power, and whether another user (the
//! appservice's sender, when it created the room) can give it back.
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#mroompower_levels>

use ruma::{OwnedUserId, UserId};
use serde_json::Value;

use super::power_levels::BOT_LEVEL;
use super::room_version::privileged_creators;

/// A user's power in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// A creator of a v12+ room: above every level.
    Unlimited,
    Level(i64),
}

impl Power {
    fn at_least(self, level: i64) -> bool {
        match self {
            Self::Unlimited => true,
            Self::Level(own) => own >= level,
        }
    }
}

/// The parts of a room's state that decide power.
pub struct Authority<'a> {
    pub create_sender: OwnedUserId,
    pub create_content: &'a Value,
    /// `m.room.power_levels` content; `None` when the room has none (everyone at defaults, the
    /// creator at 100).
    pub power_levels: Option<&'a Value>,
}

fn int(value: Option<&Value>) -> Option<i64> {
    let value = value?;
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

impl Authority<'_> {
    /// The room version the create event names ("1" when it names none, as the spec says).
    pub fn room_version(&self) -> &str {
        self.create_content
            .get("room_version")
            .and_then(Value::as_str)
            .unwrap_or("1")
    }

    pub fn power(&self, user: &UserId) -> Power {
        let creators = privileged_creators(
            self.room_version(),
            &self.create_sender,
            self.create_content,
        );
        if creators.contains(user) {
            return Power::Unlimited;
        }
        let Some(levels) = self.power_levels else {
            // No power levels event: the creator has 100, everyone else 0.
            return Power::Level(if user == self.create_sender.as_ref() as &UserId {
                100
            } else {
                0
            });
        };
        let level = int(levels.get("users").and_then(|u| u.get(user.as_str())))
            .or_else(|| int(levels.get("users_default")))
            .unwrap_or(0);
        Power::Level(level)
    }

    /// The level an action needs: a top-level key (`invite`, `kick`, …) or a state event type.
    fn required(&self, key: &str, state_event: bool) -> i64 {
        let Some(levels) = self.power_levels else {
            return if state_event { 50 } else { 0 };
        };
        if state_event {
            int(levels.get("events").and_then(|e| e.get(key)))
                .or_else(|| int(levels.get("state_default")))
                .unwrap_or(50)
        } else {
            let default = if key == "invite" { 0 } else { 50 };
            int(levels.get(key)).unwrap_or(default)
        }
    }

    /// Whether the tenant bot holds what it needs to manage the room.
    pub fn bot_has_power(&self, bot: &UserId) -> bool {
        self.power(bot).at_least(BOT_LEVEL)
    }

    /// Whether `actor` may invite someone.
    pub fn may_invite(&self, actor: &UserId) -> bool {
        self.power(actor).at_least(self.required("invite", false))
    }

    /// Whether `actor` may raise `target` to the bot's level: it may send power levels, and
    /// nobody may give more than it has, nor change the level of someone at or above its own.
    pub fn may_empower(&self, actor: &UserId, target: &UserId) -> bool {
        let actor_power = self.power(actor);
        if actor_power == Power::Unlimited {
            return self.power(target) != Power::Unlimited;
        }
        let target_level = match self.power(target) {
            Power::Unlimited => return false,
            Power::Level(level) => level,
        };
        let Power::Level(own) = actor_power else {
            return false;
        };
        actor_power.at_least(self.required("m.room.power_levels", true))
            && own >= BOT_LEVEL
            && (target_level < own || actor == target)
    }
}

#[cfg(test)]
mod tests {
    use ruma::user_id;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_v12_creator_has_unlimited_power_and_may_empower_the_bot() {
        let create = json!({"room_version": "12"});
        let levels = json!({"users": {}, "events": {"m.room.power_levels": 100}});
        let room = Authority {
            create_sender: user_id!("@openmeet-bot:example.org").to_owned(),
            create_content: &create,
            power_levels: Some(&levels),
        };
        let sender = user_id!("@openmeet-bot:example.org");
        let bot = user_id!("@openmeet-bot-t:example.org");
        assert_eq!(room.power(sender), Power::Unlimited);
        assert!(!room.bot_has_power(bot));
        assert!(room.may_invite(sender));
        assert!(room.may_empower(sender, bot));
    }

    #[test]
    fn before_v12_the_levels_decide() {
        let create = json!({"room_version": "10"});
        let levels = json!({
            "users": {"@openmeet-bot:example.org": 100, "@mod:example.org": 50, "@openmeet-bot-t:example.org": "100"},
            "invite": 50,
            "state_default": 50,
            "events": {"m.room.power_levels": 100}
        });
        let room = Authority {
            create_sender: user_id!("@openmeet-bot:example.org").to_owned(),
            create_content: &create,
            power_levels: Some(&levels),
        };
        let sender = user_id!("@openmeet-bot:example.org");
        let moderator = user_id!("@mod:example.org");
        // A string level (allowed before v10) still counts.
        assert!(room.bot_has_power(user_id!("@openmeet-bot-t:example.org")));
        assert!(!room.bot_has_power(moderator));
        assert!(room.may_invite(moderator));
        assert!(!room.may_empower(moderator, user_id!("@someone:example.org")));
        assert!(room.may_empower(sender, user_id!("@someone:example.org")));
        // Peers at the same level cannot change each other.
        assert!(!room.may_empower(sender, user_id!("@openmeet-bot-t:example.org")));
    }

    #[test]
    fn without_power_levels_the_creator_has_100() {
        let create = json!({});
        let room = Authority {
            create_sender: user_id!("@openmeet-bot:example.org").to_owned(),
            create_content: &create,
            power_levels: None,
        };
        assert_eq!(room.room_version(), "1");
        assert!(room.bot_has_power(user_id!("@openmeet-bot:example.org")));
        assert!(room.may_invite(user_id!("@x:example.org")));
        assert!(!room.bot_has_power(user_id!("@x:example.org")));
        assert!(room.may_empower(
            user_id!("@openmeet-bot:example.org"),
            user_id!("@x:example.org")
        ));
    }
}
