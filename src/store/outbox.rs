//! The outbox (DESIGN §7.4): every change the platform may care about appends an event here in
//! the same database transaction as the change itself, so an event is never told without its
//! change nor a change committed without its event. The events feed
//! (`GET /v1/tenants/{t}/events`) and webhook delivery read the outbox; neither writes it.
//!
//! Each event gets `seq`, its id in the API: 1, 2, 3… per tenant. [`append`] raises the
//! tenant's row in `outbox_heads` (`INSERT … ON CONFLICT DO UPDATE SET last_seq = last_seq + 1
//! RETURNING last_seq`) inside the caller's transaction. On PostgreSQL that row stays locked until
//! the transaction commits or rolls back, so a second append for the tenant waits for the first
//! transaction to end: per tenant, `seq` order is commit order, and a reader that has seen event
//! `n` will never later find a newly committed event below `n`. A reader that remembers the last
//! id it saw therefore never misses one. (A plain serial id would not do: sequences are handed out
//! at insert time, not at commit, so a reader could see 6 committed while 5 was still open, move
//! its cursor past 5, and never see it.) A rolled-back transaction gives its number back, so ids
//! have no gaps either. SQLite has one writer at a time (`BEGIN IMMEDIATE`), which orders the same
//! way. The cost is that appends for one tenant serialise on its head row — for the length of the
//! change's transaction, which is short, and never across tenants.
//!
//! The head row is never pruned, so `seq` keeps counting when old events are deleted
//! (`store/retention.rs` prunes events by age with the jobs' window).

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::outbox_data::{EventData, EventType};
use super::rooms::{Room, within_write};
use super::schema::{outbox_events, outbox_heads};
use super::{DbConnection, StoreError};
use crate::clock::rfc3339;
use crate::on_backend;
use crate::rooms::RoomRef;

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = outbox_events)]
pub struct OutboxEvent {
    /// The row's own id (the delivery's bookkeeping may use it; the API shows `seq`).
    pub id: i64,
    pub tenant: String,
    pub seq: i64,
    #[diesel(deserialize_as = String)]
    pub event_type: EventType,
    pub at_ms: i64,
    pub room_kind: Option<String>,
    pub room_slug: Option<String>,
    /// A JSON object.
    pub data: String,
}

/// One event as the feed and webhooks publish it:
/// `{"id", "type", "at", "tenant", "room": {"kind", "slug"} | null, "data": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublishedEvent {
    /// `seq`: monotonic per tenant, the feed's cursor.
    pub id: i64,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// RFC 3339 in UTC with milliseconds.
    pub at: String,
    pub tenant: String,
    /// The room the event is about; `null` for a tenant-wide one.
    pub room: Option<RoomRef>,
    /// What the type says it carries.
    #[schema(schema_with = super::outbox_data::schema)]
    pub data: Value,
}

impl OutboxEvent {
    pub fn published(&self) -> PublishedEvent {
        let room = RoomRef::from_columns(self.room_kind.as_deref(), self.room_slug.as_deref());
        PublishedEvent {
            id: self.seq,
            event_type: self.event_type,
            at: rfc3339(self.at_ms),
            tenant: self.tenant.clone(),
            room,
            // Written by `append` from a `Value`, so it reads back.
            data: serde_json::from_str(&self.data).unwrap_or(Value::Null),
        }
    }
}

/// Appends an event for `tenant`, about `room` (`(kind, slug)`) if any, inside the caller's
/// transaction (or its own); returns its `seq`. Its type is what `data` is.
pub fn append(
    conn: &mut DbConnection,
    tenant: &str,
    room: Option<(&str, &str)>,
    data: &EventData,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let (kind, slug) = (room.map(|r| r.0), room.map(|r| r.1));
    let event_type = data.event_type();
    let data = data.to_json();
    within_write(conn, |conn| {
        let seq = on_backend!(conn, c => {
            let seq: i64 = diesel::insert_into(outbox_heads::table)
                .values((outbox_heads::tenant.eq(tenant), outbox_heads::last_seq.eq(1)))
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
                    outbox_events::room_kind.eq(kind),
                    outbox_events::room_slug.eq(slug),
                    outbox_events::data.eq(&data),
                ))
                .execute(c)?;
            Ok::<_, diesel::result::Error>(seq)
        })?;
        Ok(seq)
    })
}

/// Appends an event about declared `room`, under its tenant and current slug.
pub fn append_for_room(
    conn: &mut DbConnection,
    room: &Room,
    data: &EventData,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let place = Some((room.kind.as_str(), room.slug.as_str()));
    append(conn, &room.tenant_id, place, data, now_ms)
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

/// The tenant's newest `seq` (0 before its first event), pruned events included.
pub fn head(conn: &mut DbConnection, tenant: &str) -> Result<i64, StoreError> {
    let head = on_backend!(conn, c => outbox_heads::table
        .find(tenant)
        .select(outbox_heads::last_seq)
        .first(c)
        .optional())?;
    Ok(head.unwrap_or(0))
}
