//! The body of `POST /_matrix/client/v3/createRoom` for a declared room.
//!
//! <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3createroom>

use std::collections::BTreeMap;

use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};

use super::declared::DeclaredRoom;
use super::{
    alias::alias_localpart, power_levels::initial_override,
    room_version::creators_have_unlimited_power, settings,
};

/// The createRoom body, as JSON; the settings are [`settings`]'s, as every later `ensure_room`
/// converges them.
///
/// `room_version` is always sent, so the bot's listing in the power levels (required before v12,
/// refused from v12) matches the version the room gets; resolve the homeserver's default
/// (`GET /capabilities`, `m.room_versions.default`) when none is configured.
///
/// The room is created out of every directory (`visibility: private`): its listings are the
/// directory step's, which lists a public room in its tenant's own directory and, only for a
/// tenant that opted in, in the server-wide one (DESIGN §7.5), and which sees a refusal there
/// (`createRoom` would swallow it). There is no `invite` list: members are invited one by one
/// afterwards, so a failed invite cannot fail the creation, and an empty topic is left out.
pub fn create_room_body(
    declared: &DeclaredRoom,
    bot: &UserId,
    room_version: &str,
    levels: &BTreeMap<OwnedUserId, i64>,
) -> Value {
    let initial_state: Vec<Value> = settings::initial_state(declared)
        .into_iter()
        .map(|(event_type, content)| json!({"type": event_type, "state_key": "", "content": content}))
        .collect();
    let mut body = json!({
        "name": declared.name,
        "room_alias_name": alias_localpart(declared.kind, &declared.slug, &declared.tenant),
        "preset": settings::preset(declared.visibility),
        "visibility": "private",
        "room_version": room_version,
        "initial_state": initial_state,
        "power_level_content_override":
            initial_override(levels, bot, creators_have_unlimited_power(room_version)),
    });
    if let Some(topic) = declared.topic.as_deref().filter(|topic| !topic.is_empty()) {
        body["topic"] = json!(topic);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::{RoomKind, Visibility};

    const BOT: &str = "@openmeet-bot-citenantb:server.test";

    fn declared(visibility: Visibility, topic: Option<&str>) -> DeclaredRoom {
        DeclaredRoom {
            kind: RoomKind::Event,
            slug: "summer-party".to_owned(),
            tenant: "ciTenantB".to_owned(),
            name: "Summer Party Chat".to_owned(),
            topic: topic.map(str::to_owned),
            visibility,
            open_to: None,
        }
    }

    fn bot() -> OwnedUserId {
        UserId::parse(BOT).unwrap()
    }

    fn host() -> BTreeMap<OwnedUserId, i64> {
        [(UserId::parse("@host:server.test").unwrap(), 100)].into()
    }

    #[test]
    fn public_room_body_in_a_v12_room() {
        let room = declared(Visibility::Public, Some("Chat room for Summer Party"));
        assert_eq!(
            create_room_body(&room, &bot(), "12", &host()),
            json!({
                "name": "Summer Party Chat",
                "topic": "Chat room for Summer Party",
                "room_alias_name": "event-summer-party-ciTenantB",
                "preset": "public_chat",
                "visibility": "private",
                "room_version": "12",
                "initial_state": [
                    {"type": "m.room.history_visibility", "state_key": "",
                     "content": {"history_visibility": "shared"}},
                    {"type": "m.room.guest_access", "state_key": "",
                     "content": {"guest_access": "forbidden"}},
                    {"type": "m.room.join_rules", "state_key": "",
                     "content": {"join_rule": "public"}},
                ],
                "power_level_content_override": {
                    "users": {"@host:server.test": 100},
                    "redact": 50, "kick": 50, "ban": 50, "state_default": 50, "invite": 50
                },
            })
        );
    }

    #[test]
    fn private_room_is_invite_only_and_stays_out_of_the_directory() {
        let body = create_room_body(&declared(Visibility::Private, None), &bot(), "12", &host());
        assert_eq!(body["preset"], "private_chat");
        assert_eq!(body["visibility"], "private");
        assert_eq!(body["initial_state"][2]["content"]["join_rule"], "invite");
    }

    #[test]
    fn an_unlisted_room_is_public_to_join_and_created_out_of_every_directory() {
        let body = create_room_body(&declared(Visibility::Unlisted, None), &bot(), "12", &host());
        assert_eq!(body["preset"], "public_chat");
        assert_eq!(body["visibility"], "private");
        assert_eq!(body["initial_state"][2]["content"]["join_rule"], "public");
    }

    #[test]
    fn a_private_room_open_to_a_group_is_created_restricted() {
        let room = DeclaredRoom {
            open_to: Some(ruma::RoomId::parse("!group:server.test").unwrap()),
            ..declared(Visibility::Private, None)
        };
        let body = create_room_body(&room, &bot(), "12", &host());
        assert_eq!(
            body["initial_state"][2]["content"],
            json!({"join_rule": "restricted",
                   "allow": [{"type": "m.room_membership", "room_id": "!group:server.test"}]})
        );
    }

    #[test]
    fn v11_room_lists_the_bot_at_100() {
        let body = create_room_body(&declared(Visibility::Public, None), &bot(), "11", &host());
        assert_eq!(
            body["power_level_content_override"]["users"],
            json!({BOT: 100, "@host:server.test": 100})
        );
        assert_eq!(body["room_version"], "11");
    }

    #[test]
    fn missing_or_empty_topic_is_left_out() {
        for topic in [None, Some("")] {
            let body =
                create_room_body(&declared(Visibility::Public, topic), &bot(), "12", &host());
            assert!(body.get("topic").is_none());
        }
    }

    #[test]
    fn members_are_not_invited_by_create_room() {
        let body = create_room_body(&declared(Visibility::Public, None), &bot(), "12", &host());
        assert!(body.get("invite").is_none());
        assert!(
            !body["initial_state"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| event["type"] == "m.room.encryption")
        );
    }
}
