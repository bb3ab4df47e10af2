//! What each outbox event carries in `data` (DESIGN §7.4), one struct per event type: writers
//! build them, so an event cannot carry another type's fields, and the OpenAPI document describes
//! `data` from them.

use serde::Serialize;
use utoipa::ToSchema;

use super::outbox::EventType;

/// `room.ready`: the room matches its declaration, from pending, failed or lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoomReady {
    /// The Matrix room.
    pub room_id: Option<String>,
}

/// `room.failed`: a job of the room ended failed or dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoomFailed {
    pub job: i64,
    /// Why, as the job's `last_error` says it.
    pub error: String,
}

/// `room.lost`: the tenant bot lost the room (kicked, banned, left); a repair is queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoomLost {
    pub room_id: Option<String>,
    pub reason: Option<String>,
}

/// `room.replaced`: the room has a new Matrix room (a repair made it, or an upgrade was followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoomReplaced {
    pub previous_room_id: String,
    pub room_id: String,
}

/// `room.deleted`: the room's teardown finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoomDeleted {
    /// The Matrix room taken down; `null` when it never existed in Matrix.
    pub room_id: Option<String>,
    pub job: i64,
}

/// `job.dead`: a job ran out of attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct JobDead {
    pub job: i64,
    pub kind: String,
    pub error: String,
}

/// `message.sent`: a bot message was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MessageSent {
    pub job: i64,
    pub event_id: String,
}

/// `moderation.applied`: the job carrying out a moderation call succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModerationApplied {
    pub job: i64,
    /// `ban`, `unban`, `mute` or `unmute`.
    pub action: String,
    pub user_id: String,
}

/// `member.joined` and `member.left`: a declared member joined the Matrix room, or, having joined,
/// left, was kicked or was banned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MemberChange {
    pub user_id: String,
    pub room_id: String,
    /// `join`, `leave` or `ban`.
    pub membership: String,
}

/// An event's `data`, whose variant is its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EventData {
    RoomReady(RoomReady),
    RoomFailed(RoomFailed),
    RoomLost(RoomLost),
    RoomReplaced(RoomReplaced),
    RoomDeleted(RoomDeleted),
    JobDead(JobDead),
    MessageSent(MessageSent),
    ModerationApplied(ModerationApplied),
    MemberJoined(MemberChange),
    MemberLeft(MemberChange),
}

impl EventData {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::RoomReady(_) => EventType::RoomReady,
            Self::RoomFailed(_) => EventType::RoomFailed,
            Self::RoomLost(_) => EventType::RoomLost,
            Self::RoomReplaced(_) => EventType::RoomReplaced,
            Self::RoomDeleted(_) => EventType::RoomDeleted,
            Self::JobDead(_) => EventType::JobDead,
            Self::MessageSent(_) => EventType::MessageSent,
            Self::ModerationApplied(_) => EventType::ModerationApplied,
            Self::MemberJoined(_) => EventType::MemberJoined,
            Self::MemberLeft(_) => EventType::MemberLeft,
        }
    }

    /// The JSON object stored and published as `data`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("event data is plain data")
    }
}

/// The OpenAPI schema of `data`: any one of the payloads, the event's `type` saying which (an
/// `anyOf`, since a payload may fit more than one: `member.joined` and `member.left` share one).
pub fn schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::Ref;
    let payloads = [
        "RoomReady",
        "RoomFailed",
        "RoomLost",
        "RoomReplaced",
        "RoomDeleted",
        "JobDead",
        "MessageSent",
        "ModerationApplied",
        "MemberChange",
    ];
    let any = payloads
        .into_iter()
        .fold(utoipa::openapi::schema::AnyOfBuilder::new(), |any, name| {
            any.item(Ref::from_schema_name(name))
        })
        .description(Some(
            "What the event's type carries: room.ready RoomReady, room.failed RoomFailed, room.lost RoomLost, room.replaced RoomReplaced, room.deleted RoomDeleted, job.dead JobDead, message.sent MessageSent, moderation.applied ModerationApplied, member.joined and member.left MemberChange.",
        ))
        .build();
    utoipa::openapi::schema::Schema::AnyOf(any)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn data_is_the_payload_alone_and_its_variant_names_the_type() {
        let data = EventData::RoomReplaced(RoomReplaced {
            previous_room_id: "!old:s".into(),
            room_id: "!new:s".into(),
        });
        assert_eq!(data.event_type(), EventType::RoomReplaced);
        let published: serde_json::Value = serde_json::from_str(&data.to_json()).unwrap();
        assert_eq!(
            published,
            json!({"previous_room_id": "!old:s", "room_id": "!new:s"})
        );
        let deleted = EventData::RoomDeleted(RoomDeleted {
            room_id: None,
            job: 7,
        });
        let published: serde_json::Value = serde_json::from_str(&deleted.to_json()).unwrap();
        assert_eq!(published, json!({"room_id": null, "job": 7}));
    }
}
