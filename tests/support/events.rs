//! Room events shaped as Synapse pushes them to appservices (client format).

use serde_json::{Value, json};

pub fn message(event_id: &str, room_id: &str, sender: &str, body: &str) -> Value {
    json!({
        "type": "m.room.message",
        "event_id": event_id,
        "room_id": room_id,
        "sender": sender,
        "origin_server_ts": 1_764_000_000_000u64,
        "content": {"msgtype": "m.text", "body": body},
        "unsigned": {"age": 12},
    })
}

pub fn member(
    event_id: &str,
    room_id: &str,
    sender: &str,
    target: &str,
    membership: &str,
) -> Value {
    json!({
        "type": "m.room.member",
        "event_id": event_id,
        "room_id": room_id,
        "sender": sender,
        "state_key": target,
        "origin_server_ts": 1_764_000_000_000u64,
        "content": {"membership": membership, "displayname": "Someone"},
        "unsigned": {"age": 12},
    })
}

/// A transaction body carrying `events`.
pub fn transaction(events: &[Value]) -> String {
    json!({"events": events}).to_string()
}
