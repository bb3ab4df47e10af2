//! What the inbox holds, for operators (`inbox` commands, `status`) and the depth gauges: the
//! pending count, the newest stored events with their outcomes, the quarantine.

use diesel::prelude::*;

use super::schema::{inbox_events, quarantine};
use super::{DbConnection, StoreError};
use crate::on_backend;

/// How many events wait for the processor, and the receive time of the oldest (unix ms).
pub fn pending_summary(conn: &mut DbConnection) -> Result<(i64, Option<i64>), StoreError> {
    let summary = on_backend!(conn, c => inbox_events::table
        .filter(inbox_events::processed_at.is_null())
        .select((diesel::dsl::count_star(), diesel::dsl::min(inbox_events::received_at)))
        .first(c))?;
    Ok(summary)
}

/// One stored event with what the processor made of it, for tests and operators.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = inbox_events)]
pub struct StoredEvent {
    pub id: i64,
    /// The homeserver that delivered it first.
    pub homeserver: String,
    pub event_id: String,
    pub room_id: String,
    pub event_type: String,
    pub txn_id: String,
    pub processed_at: Option<i64>,
    pub outcome: Option<String>,
}

/// The most recent `limit` stored events, newest first.
pub fn recent_events(conn: &mut DbConnection, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
    let events = on_backend!(conn, c => inbox_events::table
        .order(inbox_events::id.desc())
        .limit(limit)
        .select(StoredEvent::as_select())
        .load(c))?;
    Ok(events)
}

/// A quarantined body or event.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = quarantine)]
pub struct QuarantinedEntry {
    pub id: i64,
    pub homeserver: String,
    pub txn_id: String,
    pub event_id: Option<String>,
    pub reason: String,
    pub body: String,
    pub received_at: i64,
}

/// The most recent `limit` quarantined entries, newest first.
pub fn recent_quarantine(
    conn: &mut DbConnection,
    limit: i64,
) -> Result<Vec<QuarantinedEntry>, StoreError> {
    let entries = on_backend!(conn, c => quarantine::table
        .order(quarantine::id.desc())
        .limit(limit)
        .select(QuarantinedEntry::as_select())
        .load(c))?;
    Ok(entries)
}
