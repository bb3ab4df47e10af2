//! Which room settings a declaration wants (DESIGN §7.1), for `createRoom` and for every later
//! `ensure_room` alike, and which of them a room's current state lacks.
//!
//! The daemon owns the name, the join rule, `history_visibility`, `guest_access`, and the topic
//! only while the platform declares one: a PUT without `topic` leaves the room's topic as it is
//! (whoever set it), and `"topic": ""` removes it. Each event is compared on the field it is
//! about, so a client's extra content (e.g. `m.topic`'s rich forms) causes no rewrite when the
//! text is the same. Spec: <https://spec.matrix.org/v1.19/client-server-api/#room-events>

use serde_json::{Value, json};

use super::declared::DeclaredRoom;
use super::validate::Visibility;

pub const NAME: &str = "m.room.name";
pub const TOPIC: &str = "m.room.topic";
pub const JOIN_RULES: &str = "m.room.join_rules";
pub const HISTORY_VISIBILITY: &str = "m.room.history_visibility";
pub const GUEST_ACCESS: &str = "m.room.guest_access";
pub const CANONICAL_ALIAS: &str = "m.room.canonical_alias";

/// The state event types (state key `""`) whose content the daemon owns in a managed room.
pub const OWNED: [&str; 6] = [
    NAME,
    TOPIC,
    JOIN_RULES,
    HISTORY_VISIBILITY,
    GUEST_ACCESS,
    CANONICAL_ALIAS,
];

/// `createRoom`'s preset for a visibility.
pub fn preset(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Public | Visibility::Unlisted => "public_chat",
        Visibility::Private => "private_chat",
    }
}

/// The `m.room.join_rules` content a declaration wants: `public` for public and unlisted rooms;
/// for a private room `restricted` to the members of the group room it is open to (once that
/// room exists), else `invite`.
/// Spec: <https://spec.matrix.org/v1.19/client-server-api/#mroomjoin_rules>
pub fn join_rules(declared: &DeclaredRoom) -> Value {
    match (declared.visibility, &declared.open_to) {
        (Visibility::Public | Visibility::Unlisted, _) => json!({"join_rule": "public"}),
        (Visibility::Private, Some(group)) => json!({
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": group}],
        }),
        (Visibility::Private, None) => json!({"join_rule": "invite"}),
    }
}

/// The settings `createRoom` writes as `initial_state` (name and topic go as its own fields).
pub fn initial_state(declared: &DeclaredRoom) -> Vec<(&'static str, Value)> {
    vec![
        (HISTORY_VISIBILITY, json!({"history_visibility": "shared"})),
        (GUEST_ACCESS, json!({"guest_access": "forbidden"})),
        (JOIN_RULES, join_rules(declared)),
    ]
}

/// Every state event the declaration wants, with the content to write when the room differs.
pub fn wanted(declared: &DeclaredRoom) -> Vec<(&'static str, Value)> {
    let mut wanted = vec![(NAME, json!({"name": declared.name}))];
    if let Some(topic) = &declared.topic {
        // As Synapse's createRoom writes it: the plain `topic` and its `m.topic` form.
        wanted.push((
            TOPIC,
            json!({"topic": topic, "m.topic": {"m.text": [{"body": topic}]}}),
        ));
    }
    wanted.extend(initial_state(declared));
    wanted
}

/// The field of an owned event the comparison is about.
fn field(event_type: &str) -> &'static str {
    match event_type {
        NAME => "name",
        TOPIC => "topic",
        JOIN_RULES => "join_rule",
        HISTORY_VISIBILITY => "history_visibility",
        GUEST_ACCESS => "guest_access",
        _ => "",
    }
}

/// Of [`wanted`], what `current` (a state event's content by type) does not already show. A
/// missing event or field reads as empty, so a declared empty topic needs no event; a restricted
/// join rule also compares the rooms its `allow` names.
pub fn differing<'a>(
    declared: &DeclaredRoom,
    current: impl Fn(&str) -> Option<&'a Value>,
) -> Vec<(&'static str, Value)> {
    let empty = Value::Null;
    wanted(declared)
        .into_iter()
        .filter(|(event_type, content)| {
            let field = field(event_type);
            let have = current(event_type).unwrap_or(&empty);
            let same = have[field].as_str().unwrap_or("") == content[field].as_str().unwrap_or("");
            let same_allow = *event_type != JOIN_RULES
                || content["join_rule"] != "restricted"
                || allowed_rooms(have) == allowed_rooms(content);
            !(same && same_allow)
        })
        .collect()
}

/// The rooms whose members a restricted join rule lets in, in order.
fn allowed_rooms(content: &Value) -> Vec<&str> {
    let mut rooms: Vec<&str> = content["allow"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|condition| condition["type"] == "m.room_membership")
        .filter_map(|condition| condition["room_id"].as_str())
        .collect();
    rooms.sort_unstable();
    rooms
}

/// The `m.room.canonical_alias` content for the room's current alias and its earlier ones that
/// point to it (`alt_aliases` may only name aliases that exist: Synapse refuses the event
/// otherwise). `None` for `alias`: the current alias is not the room's to name.
pub fn canonical_alias(alias: Option<&str>, alternatives: &[String]) -> Value {
    let mut content = json!({});
    if let Some(alias) = alias {
        content["alias"] = json!(alias);
    }
    if !alternatives.is_empty() {
        content["alt_aliases"] = json!(alternatives);
    }
    content
}

/// Whether the room's `m.room.canonical_alias` already says what `desired` says (the order of
/// `alt_aliases` aside).
pub fn canonical_alias_matches(current: Option<&Value>, desired: &Value) -> bool {
    let alternatives = |content: &Value| {
        let mut list: Vec<String> = content["alt_aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|alias| alias.as_str().map(str::to_owned))
            .collect();
        list.sort();
        list
    };
    let current = current.cloned().unwrap_or_else(|| json!({}));
    current["alias"].as_str() == desired["alias"].as_str()
        && alternatives(&current) == alternatives(desired)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::rooms::RoomKind;

    fn declared(visibility: Visibility, topic: Option<&str>) -> DeclaredRoom {
        DeclaredRoom {
            kind: RoomKind::Event,
            slug: "summer-party".to_owned(),
            tenant: "tenantA".to_owned(),
            name: "Summer Party Chat".to_owned(),
            topic: topic.map(str::to_owned),
            visibility,
            open_to: None,
        }
    }

    /// The state a freshly created room of `room` has (what `createRoom` wrote).
    fn created(room: &DeclaredRoom) -> BTreeMap<&'static str, Value> {
        let mut state: BTreeMap<_, _> = initial_state(room).into_iter().collect();
        state.insert(NAME, json!({"name": room.name}));
        if let Some(topic) = room.topic.as_deref().filter(|t| !t.is_empty()) {
            state.insert(
                TOPIC,
                json!({"topic": topic, "m.topic": {"m.text": [{"body": topic}]}}),
            );
        }
        state
    }

    fn types(events: &[(&'static str, Value)]) -> Vec<&'static str> {
        events.iter().map(|(event_type, _)| *event_type).collect()
    }

    #[test]
    fn a_room_as_created_needs_nothing() {
        for room in [
            declared(Visibility::Public, Some("Chat room for Summer Party")),
            declared(Visibility::Private, None),
            declared(Visibility::Private, Some("")),
        ] {
            let state = created(&room);
            assert_eq!(differing(&room, |t| state.get(t)), vec![], "{room:?}");
        }
    }

    #[test]
    fn a_new_name_topic_and_visibility_are_written() {
        let before = declared(Visibility::Private, Some("Old topic"));
        let state = created(&before);
        let after = DeclaredRoom {
            name: "Renamed Chat".to_owned(),
            topic: Some("New topic".to_owned()),
            visibility: Visibility::Public,
            ..before
        };
        let writes = differing(&after, |t| state.get(t));
        assert_eq!(types(&writes), vec![NAME, TOPIC, JOIN_RULES]);
        assert_eq!(writes[0].1, json!({"name": "Renamed Chat"}));
        assert_eq!(writes[1].1["topic"], "New topic");
        assert_eq!(writes[1].1["m.topic"]["m.text"][0]["body"], "New topic");
        assert_eq!(writes[2].1, json!({"join_rule": "public"}));
    }

    #[test]
    fn a_topic_never_declared_is_left_alone() {
        let room = declared(Visibility::Private, None);
        let mut state = created(&room);
        state.insert(TOPIC, json!({"topic": "Set by a host"}));
        assert_eq!(differing(&room, |t| state.get(t)), vec![]);
    }

    #[test]
    fn a_declared_empty_topic_removes_the_topic() {
        let room = declared(Visibility::Private, Some(""));
        let mut state = created(&room);
        state.insert(TOPIC, json!({"topic": "Set by a host"}));
        let writes = differing(&room, |t| state.get(t));
        assert_eq!(types(&writes), vec![TOPIC]);
        assert_eq!(writes[0].1["topic"], "");
    }

    #[test]
    fn drift_in_every_owned_setting_is_found() {
        let room = declared(Visibility::Private, Some("Topic"));
        let mut state = created(&room);
        state.insert(NAME, json!({"name": "A host's name"}));
        state.insert(TOPIC, json!({"topic": "A host's topic"}));
        state.insert(JOIN_RULES, json!({"join_rule": "knock"}));
        state.insert(
            HISTORY_VISIBILITY,
            json!({"history_visibility": "world_readable"}),
        );
        state.remove(GUEST_ACCESS);
        assert_eq!(
            types(&differing(&room, |t| state.get(t))),
            vec![NAME, TOPIC, HISTORY_VISIBILITY, GUEST_ACCESS, JOIN_RULES]
        );
    }

    #[test]
    fn extra_content_with_the_same_text_is_no_drift() {
        let room = declared(Visibility::Public, Some("Topic"));
        let mut state = created(&room);
        state.insert(
            TOPIC,
            json!({"topic": "Topic", "m.topic": {"m.text": [{"body": "<b>Topic</b>", "mimetype": "text/html"}]}}),
        );
        assert_eq!(differing(&room, |t| state.get(t)), vec![]);
    }

    #[test]
    fn an_unlisted_room_is_public_to_join_from_a_public_preset() {
        let room = declared(Visibility::Unlisted, None);
        assert_eq!(preset(room.visibility), "public_chat");
        assert_eq!(join_rules(&room), json!({"join_rule": "public"}));
        let state = created(&room);
        assert_eq!(differing(&room, |t| state.get(t)), vec![]);
    }

    fn open_to(group: &str) -> DeclaredRoom {
        DeclaredRoom {
            open_to: Some(ruma::RoomId::parse(group).unwrap()),
            ..declared(Visibility::Private, None)
        }
    }

    #[test]
    fn a_private_room_open_to_a_group_is_restricted_to_its_members() {
        let room = open_to("!group:server.test");
        assert_eq!(preset(room.visibility), "private_chat");
        assert_eq!(
            join_rules(&room),
            json!({"join_rule": "restricted",
                   "allow": [{"type": "m.room_membership", "room_id": "!group:server.test"}]})
        );
        let state = created(&room);
        assert_eq!(differing(&room, |t| state.get(t)), vec![]);
    }

    #[test]
    fn a_replaced_group_room_or_a_lost_group_changes_the_join_rule() {
        let before = open_to("!old:server.test");
        let state = created(&before);
        let replaced = open_to("!new:server.test");
        let writes = differing(&replaced, |t| state.get(t));
        assert_eq!(types(&writes), vec![JOIN_RULES]);
        assert_eq!(writes[0].1["allow"][0]["room_id"], "!new:server.test");
        // The group room deleted: invite only.
        let closed = declared(Visibility::Private, None);
        let writes = differing(&closed, |t| state.get(t));
        assert_eq!(writes, vec![(JOIN_RULES, json!({"join_rule": "invite"}))]);
    }

    #[test]
    fn an_allow_list_a_client_changed_is_put_back_and_extra_fields_are_no_drift() {
        let room = open_to("!group:server.test");
        let mut state = created(&room);
        state.insert(
            JOIN_RULES,
            json!({"join_rule": "restricted", "allow": [
                {"type": "m.room_membership", "room_id": "!group:server.test"},
                {"type": "m.room_membership", "room_id": "!elsewhere:server.test"}]}),
        );
        assert_eq!(types(&differing(&room, |t| state.get(t))), vec![JOIN_RULES]);
        state.insert(
            JOIN_RULES,
            json!({"join_rule": "restricted", "note": "a client's", "allow": [
                {"type": "m.room_membership", "room_id": "!group:server.test", "via": ["server.test"]}]}),
        );
        assert_eq!(differing(&room, |t| state.get(t)), vec![]);
    }

    #[test]
    fn canonical_alias_names_only_what_is_given() {
        let old = ["#event-old-tenantA:server.test".to_owned()];
        let new = "#event-new-tenantA:server.test";
        assert_eq!(
            canonical_alias(Some(new), &old),
            json!({"alias": new, "alt_aliases": old})
        );
        // One slug: as createRoom wrote it.
        assert_eq!(canonical_alias(Some(new), &[]), json!({"alias": new}));
        assert_eq!(canonical_alias(None, &old), json!({"alt_aliases": old}));
    }

    #[test]
    fn canonical_alias_compares_alternatives_as_a_set() {
        let desired = canonical_alias(Some("#a:s"), &["#b:s".to_owned(), "#c:s".to_owned()]);
        let reordered = json!({"alias": "#a:s", "alt_aliases": ["#c:s", "#b:s"]});
        assert!(canonical_alias_matches(Some(&reordered), &desired));
        let missing_old = json!({"alias": "#a:s"});
        assert!(!canonical_alias_matches(Some(&missing_old), &desired));
        assert!(!canonical_alias_matches(None, &desired));
        // One alias and no alternatives: `alt_aliases: []` is the same thing.
        let single = canonical_alias(Some("#a:s"), &[]);
        let with_empty = json!({"alias": "#a:s", "alt_aliases": []});
        assert!(canonical_alias_matches(Some(&with_empty), &single));
        let host_changed = json!({"alias": "#other:s"});
        assert!(!canonical_alias_matches(Some(&host_changed), &single));
    }
}
