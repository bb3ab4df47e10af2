//! `m.direct` account data (a map of user id → their direct-message room ids): the bot's own, with
//! one room listed under one user.

use ruma::{RoomId, UserId};
use serde_json::{Value, json};

/// `current` with `room_id` listed under `user` (appended to the rooms already listed), or `None`
/// when it already is. Every other user's entry stays as it is; a malformed entry for `user` is
/// replaced.
pub fn with_room(current: &Value, user: &UserId, room_id: &RoomId) -> Option<Value> {
    let mut content = current.as_object().cloned().unwrap_or_default();
    let mut rooms: Vec<Value> = content
        .get(user.as_str())
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if rooms
        .iter()
        .any(|room| room.as_str() == Some(room_id.as_str()))
    {
        return None;
    }
    rooms.push(json!(room_id));
    content.insert(user.to_string(), Value::Array(rooms));
    Some(Value::Object(content))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (ruma::OwnedUserId, ruma::OwnedRoomId) {
        (
            UserId::parse("@ann:hs.test").unwrap(),
            RoomId::parse("!dm:hs.test").unwrap(),
        )
    }

    #[test]
    fn a_room_is_added_once_beside_the_other_entries() {
        let (user, room) = ids();
        let current = json!({"@bob:hs.test": ["!b:hs.test"], "@ann:hs.test": ["!old:hs.test"]});
        let added = with_room(&current, &user, &room).unwrap();
        assert_eq!(
            added,
            json!({"@bob:hs.test": ["!b:hs.test"], "@ann:hs.test": ["!old:hs.test", "!dm:hs.test"]})
        );
        assert_eq!(with_room(&added, &user, &room), None);
    }

    #[test]
    fn no_account_data_yet_gives_a_map_of_one() {
        let (user, room) = ids();
        assert_eq!(
            with_room(&json!({}), &user, &room),
            Some(json!({"@ann:hs.test": ["!dm:hs.test"]}))
        );
    }
}
