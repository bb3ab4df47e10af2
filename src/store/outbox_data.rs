//! What an outbox event tells (DESIGN §7.4): its type, and what each type carries in `data`, one
//! struct per type. Writers build them, so an event cannot carry another type's fields, and the
//! OpenAPI document describes `data` from them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an event tells (DESIGN §7.4); stored and published as its dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// The room matches its declaration (`data.room_id`), from pending, failed or lost.
    #[serde(rename = "room.ready")]
    RoomReady,
    /// A job of the room ended failed or dead (`data.job`, `data.error`).
    #[serde(rename = "room.failed")]
    RoomFailed,
    /// The tenant bot lost the room (`data.room_id`, `data.reason`); a repair is queued.
    #[serde(rename = "room.lost")]
    RoomLost,
    /// The room has a new Matrix room (`data.previous_room_id`, `data.room_id`): replaced by a
    /// repair, or an upgrade followed.
    #[serde(rename = "room.replaced")]
    RoomReplaced,
    /// The room's teardown finished (`data.room_id`, null when it never existed in Matrix).
    #[serde(rename = "room.deleted")]
    RoomDeleted,
    /// A job ran out of attempts (`data.job`, `data.kind`, `data.error`).
    #[serde(rename = "job.dead")]
    JobDead,
    /// A bot message was sent (`data.job`, `data.event_id`; a direct message, with no `room`:
    /// `data.user_id`, `data.room_id`).
    #[serde(rename = "message.sent")]
    MessageSent,
    /// The job carrying out a moderation call succeeded (`data.job`, `data.action`,
    /// `data.user_id`).
    #[serde(rename = "moderation.applied")]
    ModerationApplied,
    /// A declared member joined the Matrix room (`data.user_id`, `data.room_id`).
    #[serde(rename = "member.joined")]
    MemberJoined,
    /// A declared member who had joined left, was kicked or banned (`data.user_id`,
    /// `data.room_id`, `data.membership`).
    #[serde(rename = "member.left")]
    MemberLeft,
    /// A user's Matrix id changed (`data.from`, `data.to`, `data.rooms`, `data.carried`,
    /// `data.job`): the tenant's declarations now name the new id.
    #[serde(rename = "user.moved")]
    UserMoved,
    /// A member reported the room or one of its events (`data.report`, `data.event_id`,
    /// `data.reporter`, `data.reason`, `data.event`: the reported event's sender, type and content).
    #[serde(rename = "report.created")]
    ReportCreated,
    /// A rule refused a join, an invite or a message before it was sent (`data.user_id`,
    /// `data.rule`, `data.reason`, `data.callback`, `data.event_type`, `data.event_id`).
    #[serde(rename = "rule.refused")]
    RuleRefused,
}

impl EventType {
    pub const ALL: [Self; 13] = [
        Self::RoomReady,
        Self::RoomFailed,
        Self::RoomLost,
        Self::RoomReplaced,
        Self::RoomDeleted,
        Self::JobDead,
        Self::MessageSent,
        Self::ModerationApplied,
        Self::MemberJoined,
        Self::MemberLeft,
        Self::UserMoved,
        Self::ReportCreated,
        Self::RuleRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoomReady => "room.ready",
            Self::RoomFailed => "room.failed",
            Self::RoomLost => "room.lost",
            Self::RoomReplaced => "room.replaced",
            Self::RoomDeleted => "room.deleted",
            Self::JobDead => "job.dead",
            Self::MessageSent => "message.sent",
            Self::ModerationApplied => "moderation.applied",
            Self::MemberJoined => "member.joined",
            Self::MemberLeft => "member.left",
            Self::UserMoved => "user.moved",
            Self::ReportCreated => "report.created",
            Self::RuleRefused => "rule.refused",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for EventType {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
            .ok_or_else(|| format!("unknown outbox event type {text:?} in the database"))
    }
}

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
    /// A direct message (the event has no `room`): the user it went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A direct message: the direct-message room it was sent in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
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

/// `user.moved`: a user's Matrix id changed (DESIGN §14); every declaration of the tenant that
/// named `from` names `to` now, and the rooms converge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UserMoved {
    /// The old Matrix id, removed from its rooms.
    pub from: String,
    /// The new Matrix id, invited with the old one's role.
    pub to: String,
    /// The rooms where `to` took `from`'s place as a member.
    pub rooms: Vec<crate::rooms::RoomRef>,
    /// How many bans and mutes in force were carried over to `to` (they stay on `from`).
    pub carried: i64,
    /// The job that converges the rooms.
    pub job: i64,
}

/// `report.created`: a member reported a managed room or one of its events (DESIGN §7.3). The
/// report is also listed by `GET /v1/tenants/{t}/reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReportCreated {
    /// The report's id in `GET reports`.
    pub report: i64,
    pub room_id: String,
    /// The reported event; `null` when the room itself was reported.
    pub event_id: Option<String>,
    /// The Matrix user who reported.
    pub reporter: String,
    pub reason: Option<String>,
    /// The score the client sent with an event report, if any.
    pub score: Option<i64>,
    /// The reported event as the tenant bot read it; `null` for a room report.
    pub event: Option<ReportedEvent>,
}

/// The reported event, as the tenant bot read it when the report arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReportedEvent {
    pub sender: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's content (empty when it was redacted).
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

/// `rule.refused`: a rule before send refused something in a managed room (DESIGN §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RuleRefused {
    /// Whose join, invite or message was refused (for an invite: the inviter).
    pub user_id: String,
    /// `ban`, `invite_level`, `banned_invitee`, `blocked_word`, `blocked_link_domain` or
    /// `rate_limit`.
    pub rule: String,
    /// The sentence the user was shown.
    pub reason: String,
    /// The module's callback: `user_may_join_room`, `user_may_invite` or `check_event_for_spam`.
    pub callback: String,
    /// The refused event's type and id (`check_event_for_spam` only).
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    /// The invited user (`user_may_invite` only).
    pub invitee: Option<String>,
    /// The Matrix room.
    pub room_id: String,
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
    UserMoved(UserMoved),
    ReportCreated(ReportCreated),
    RuleRefused(RuleRefused),
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
            Self::UserMoved(_) => EventType::UserMoved,
            Self::ReportCreated(_) => EventType::ReportCreated,
            Self::RuleRefused(_) => EventType::RuleRefused,
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
        "UserMoved",
        "ReportCreated",
        "RuleRefused",
    ];
    let any = payloads
        .into_iter()
        .fold(utoipa::openapi::schema::AnyOfBuilder::new(), |any, name| {
            any.item(Ref::from_schema_name(name))
        })
        .description(Some(
            "What the event's type carries: room.ready RoomReady, room.failed RoomFailed, room.lost RoomLost, room.replaced RoomReplaced, room.deleted RoomDeleted, job.dead JobDead, message.sent MessageSent, moderation.applied ModerationApplied, member.joined and member.left MemberChange, user.moved UserMoved, report.created ReportCreated, rule.refused RuleRefused.",
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
