//! The outbox (DESIGN §7.4): events for the platform, appended in the transaction of the change
//! that causes them and numbered per tenant in commit order (the `outbox_heads` row of the tenant
//! is locked by the append until the transaction ends, so a later number never commits first).
//! The feed reads it with [`list_after`]; the webhook worker delivers it.

use diesel::prelude::*;
use serde_json::{Value, json};

use super::schema::{outbox_events, outbox_heads};
use super::{DbConnection, StoreError};
use crate::{on_backend, write_transaction};

/// What happened; stored and sent as its dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    RoomReady,
    RoomFailed,
    RoomLost,
    RoomReplaced,
    RoomDeleted,
    JobDead,
    MessageSent,
    ModerationApplied,
    MemberJoined,
    MemberLeft,
}

impl EventType {
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
        }
    }
}

/// The room an event is about: its kind and slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRef {
    pub kind: String,
    pub slug: String,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = outbox_events)]
pub struct OutboxEvent {
    pub tenant: String,
    pub seq: i64,
    pub event_type: String,
    pub at_ms: i64,
    pub room_kind: Option<String>,
    pub room_slug: Option<String>,
    pub data: String,
}

impl OutboxEvent {
    /// The event as the feed and webhooks carry it: `{"id", "type", "at", "tenant", "room", "data"}`.
    pub fn to_json(&self) -> Value {
        let room = match (&self.room_kind, &self.room_slug) {
            (Some(kind), Some(slug)) => json!({"kind": kind, "slug": slug}),
            _ => Value::Null,
        };
        json!({
            "id": self.seq,
            "type": self.event_type,
            "at": crate::clock::rfc3339(self.at_ms),
            "tenant": self.tenant,
            "room": room,
            "data": serde_json::from_str::<Value>(&self.data).unwrap_or(Value::Null),
        })
    }
}

/// Appends an event for `tenant` in the caller's transaction (or its own); returns its seq.
pub fn append(
    conn: &mut DbConnection,
    tenant: &str,
    event_type: EventType,
    room: Option<&RoomRef>,
    data: &Value,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let seq = write_transaction!(conn, c => {
        let seq: i64 = diesel::insert_into(outbox_heads::table)
            .values((outbox_heads::tenant.eq(tenant), outbox_heads::last_seq.eq(1_i64)))
            .on_conflict(outbox_heads::tenant)
            .do_update()
            .set(outbox_heads::last_seq.eq(outbox_heads::last_seq + 1))
            .returning(outbox_heads::last_seq)
            .get_result(c)?;
        diesel::insert_into(outbox_events::table)
            .values((
                outbox_events::tenant.eq(tenant),
                outbox_events::seq.eq(seq),
                outbox_events::event_type.eq(event_type.as_str()),
                outbox_events::at_ms.eq(now_ms),
                outbox_events::room_kind.eq(room.map(|r| r.kind.as_str())),
                outbox_events::room_slug.eq(room.map(|r| r.slug.as_str())),
                outbox_events::data.eq(data.to_string()),
            ))
            .execute(c)?;
        Ok::<_, diesel::result::Error>(seq)
    })?;
    Ok(seq)
}

/// The tenant's events after `after_seq`, oldest first, at most `limit`.
pub fn list_after(
    conn: &mut DbConnection,
    tenant: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<OutboxEvent>, StoreError> {
    let events = on_backend!(conn, c => outbox_events::table
        .filter(outbox_events::tenant.eq(tenant))
        .filter(outbox_events::seq.gt(after_seq))
        .order(outbox_events::seq)
        .limit(limit)
        .select(OutboxEvent::as_select())
        .load(c))?;
    Ok(events)
}

/// The seq of the tenant's newest event; 0 before the first.
pub fn head(conn: &mut DbConnection, tenant: &str) -> Result<i64, StoreError> {
    let head = on_backend!(conn, c => outbox_heads::table
        .filter(outbox_heads::tenant.eq(tenant))
        .select(outbox_heads::last_seq)
        .first::<i64>(c)
        .optional())?;
    Ok(head.unwrap_or(0))
}
