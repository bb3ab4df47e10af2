//! What a room version changes for us: whether room creators hold unlimited power (MSC4289, v12).

use std::collections::BTreeSet;

use ruma::{OwnedUserId, RoomVersionId, UserId};
use serde_json::Value;

/// Whether creators of a `version` room have unlimited power, so that they must not be listed in
/// `m.room.power_levels` `users` (Synapse answers 400) and need not be.
///
/// Known versions follow ruma's rules (true from "12"). Of Synapse 1.163's unstable versions
/// (`KNOWN_ROOM_VERSIONS`, `msc4289_creator_power_enabled`), only `org.matrix.hydra.11` is true.
/// An unknown numeric version above 12 is assumed to keep the v12 rule; other unknown ids are not.
pub fn creators_have_unlimited_power(version: &str) -> bool {
    let rules = RoomVersionId::try_from(version)
        .ok()
        .and_then(|id| id.rules());
    if let Some(rules) = rules {
        return rules.authorization.explicitly_privilege_room_creators;
    }
    match version {
        "org.matrix.hydra.11" => true,
        _ => version.parse::<u32>().is_ok_and(|number| number >= 12),
    }
}

/// The users with unlimited power in a room, from its `m.room.create` event's sender and content
/// (`additional_creators`); empty for versions where creators are ordinary users.
pub fn privileged_creators(
    version: &str,
    create_sender: &UserId,
    create_content: &Value,
) -> BTreeSet<OwnedUserId> {
    if !creators_have_unlimited_power(version) {
        return BTreeSet::new();
    }
    let additional = create_content
        .get("additional_creators")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|user_id| UserId::parse(user_id).ok());
    std::iter::once(create_sender.to_owned())
        .chain(additional)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn version_10_and_11_creators_are_ordinary_users() {
        assert!(!creators_have_unlimited_power("10"));
        assert!(!creators_have_unlimited_power("11"));
        assert!(!creators_have_unlimited_power("1"));
    }

    #[test]
    fn version_12_creators_have_unlimited_power() {
        assert!(creators_have_unlimited_power("12"));
    }

    #[test]
    fn synapse_unstable_versions_follow_their_msc4289_flag() {
        assert!(creators_have_unlimited_power("org.matrix.hydra.11"));
        assert!(!creators_have_unlimited_power("org.matrix.msc3757.10"));
        assert!(!creators_have_unlimited_power("org.matrix.msc3757.11"));
    }

    #[test]
    fn future_numeric_versions_keep_the_v12_rule() {
        assert!(creators_have_unlimited_power("13"));
        assert!(!creators_have_unlimited_power("com.example.custom"));
    }

    #[test]
    fn creators_of_a_v12_room_are_the_sender_and_additional_creators() {
        let sender = UserId::parse("@openmeet-bot-lsdf:server.test").unwrap();
        let content = json!({"additional_creators": ["@alice:server.test", "not a user", 7]});
        let creators = privileged_creators("12", &sender, &content);
        let expected: BTreeSet<OwnedUserId> =
            [sender.clone(), UserId::parse("@alice:server.test").unwrap()].into();
        assert_eq!(creators, expected);
    }

    #[test]
    fn a_v11_room_has_no_privileged_creators() {
        let sender = UserId::parse("@openmeet-bot-lsdf:server.test").unwrap();
        assert!(privileged_creators("11", &sender, &json!({})).is_empty());
    }
}
