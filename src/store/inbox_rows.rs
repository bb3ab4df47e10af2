//! Writing a transaction's rows into the inbox, each backend its own fastest way: on PostgreSQL the
//! whole transaction as one prepared statement of unnested arrays, on SQLite cached multi-row
//! statements.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;

use super::inbox::{IncomingTransaction, NewEvent, NewQuarantine};
use super::schema::quarantine;

/// Rows per quarantine INSERT on PostgreSQL: 5 columns × 1,000 stays far below its limit of
/// 65,535 parameters per statement.
const ROWS_PER_INSERT: usize = 1_000;

/// The largest multi-row INSERT of events on SQLite: 11 parameters × 128 rows, far below its limit
/// of 32,766. Smaller chunks are powers of two, so a connection caches at most 8 such statements.
const SQLITE_MAX_ROWS: usize = 128;

/// Inserting many quarantined entries, each backend its own way.
pub(super) trait InsertRows {
    fn insert_quarantined(&mut self, entries: &[NewQuarantine]) -> QueryResult<()>;
}

impl InsertRows for PgConnection {
    fn insert_quarantined(&mut self, entries: &[NewQuarantine]) -> QueryResult<()> {
        for chunk in entries.chunks(ROWS_PER_INSERT) {
            diesel::insert_into(quarantine::table)
                .values(chunk)
                .execute(self)?;
        }
        Ok(())
    }
}

impl InsertRows for SqliteConnection {
    fn insert_quarantined(&mut self, entries: &[NewQuarantine]) -> QueryResult<()> {
        for entry in entries {
            diesel::insert_into(quarantine::table)
                .values(entry)
                .execute(self)?;
        }
        Ok(())
    }
}

/// SQLite: inserts `events`, which the caller found new (`store/seen_events.rs`; the table has no
/// unique index to conflict on), in order, as multi-row `INSERT` statements in chunks of powers of
/// two, so that each size is prepared once per connection and then reused from diesel's statement
/// cache. Returns how many were stored.
pub(super) fn insert_events_to_sqlite(
    conn: &mut SqliteConnection,
    txn: &IncomingTransaction,
    mut events: &[&NewEvent],
) -> QueryResult<usize> {
    let mut new = 0;
    while !events.is_empty() {
        let rows = if events.len() >= SQLITE_MAX_ROWS {
            SQLITE_MAX_ROWS
        } else {
            1 << events.len().ilog2()
        };
        let (chunk, rest) = events.split_at(rows);
        new += InsertEventsValues {
            txn,
            processed_at: chunk
                .iter()
                .map(|event| event.settled.map(|_| txn.received_at))
                .collect(),
            events: chunk,
        }
        .execute(conn)?;
        events = rest;
    }
    Ok(new)
}

/// `INSERT … VALUES (…), …` for one chunk of events. Its SQL depends only on the row count, so
/// diesel caches the prepared statement by its text.
struct InsertEventsValues<'a> {
    txn: &'a IncomingTransaction,
    /// Per event: its receive time when it is settled, else NULL (pending).
    processed_at: Vec<Option<i64>>,
    events: &'a [&'a NewEvent],
}

impl QueryFragment<Sqlite> for InsertEventsValues<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO inbox_events (event_id, room_id, event_type, sender, state_key, \
             event_json, homeserver, txn_id, received_at, processed_at, outcome) VALUES ",
        );
        for (i, (event, processed_at)) in self.events.iter().zip(&self.processed_at).enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<Text, _>(&event.event_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&event.room_id)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&event.event_type)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&event.sender)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&event.state_key)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&event.event_json)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&self.txn.homeserver)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&self.txn.txn_id)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&self.txn.received_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(processed_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&event.settled)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl QueryId for InsertEventsValues<'_> {
    type QueryId = ();
    /// Not static: cached by its SQL text, one statement per row count.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> RunQueryDsl<Conn> for InsertEventsValues<'_> {}

/// PostgreSQL: a whole transaction in one statement, so one round trip (it was five: BEGIN, the
/// previous txnId, the transaction, its events, COMMIT) and, on its own, atomic. The previous
/// numbered txnId is read from the statement's snapshot; the events and quarantined entries are
/// inserted only when the transaction was (a duplicate inserts nothing); the columns are bound as
/// arrays and unnested in their order, so the statement's text is the same whatever the size and
/// diesel prepares it once per connection (`sql_query` text would be planned at every call). The
/// unique index on event ids skips events stored before. Pending events go first (see
/// `Store::record_transaction`).
struct RecordOnPostgres<'a> {
    txn: &'a IncomingTransaction,
    txn_number: Option<i64>,
    event_count: i32,
    event_ids: Vec<&'a str>,
    room_ids: Vec<&'a str>,
    event_types: Vec<&'a str>,
    senders: Vec<&'a str>,
    state_keys: Vec<Option<&'a str>>,
    event_jsons: Vec<&'a str>,
    outcomes: Vec<Option<&'static str>>,
    quarantined_ids: Vec<Option<&'a str>>,
    reasons: Vec<&'a str>,
    bodies: Vec<&'a str>,
}

impl QueryFragment<Pg> for RecordOnPostgres<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let txn = self.txn;
        out.push_sql(
            "WITH previous AS (SELECT txn_number FROM as_transactions WHERE homeserver = ",
        );
        out.push_bind_param::<Text, _>(&txn.homeserver)?;
        out.push_sql(
            " AND txn_number IS NOT NULL ORDER BY id DESC LIMIT 1), \
             txn AS (INSERT INTO as_transactions \
             (homeserver, txn_id, fingerprint, txn_number, event_count, received_at) VALUES (",
        );
        out.push_bind_param::<Text, _>(&txn.homeserver)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&txn.txn_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&txn.fingerprint)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.txn_number)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&self.event_count)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&txn.received_at)?;
        out.push_sql(
            ") ON CONFLICT DO NOTHING RETURNING id), \
             events AS (INSERT INTO inbox_events (event_id, room_id, event_type, sender, \
             state_key, event_json, homeserver, txn_id, received_at, processed_at, outcome) \
             SELECT e.event_id, e.room_id, e.event_type, e.sender, e.state_key, e.event_json, ",
        );
        out.push_bind_param::<Text, _>(&txn.homeserver)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&txn.txn_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&txn.received_at)?;
        out.push_sql(", CASE WHEN e.outcome IS NULL THEN NULL ELSE ");
        out.push_bind_param::<BigInt, _>(&txn.received_at)?;
        out.push_sql(" END, e.outcome FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.event_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.room_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.event_types)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.senders)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.state_keys)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.event_jsons)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.outcomes)?;
        out.push_sql(
            ") WITH ORDINALITY \
             AS e(event_id, room_id, event_type, sender, state_key, event_json, outcome, n) \
             WHERE EXISTS (SELECT 1 FROM txn) ORDER BY e.outcome IS NOT NULL, e.n \
             ON CONFLICT (event_id) DO NOTHING RETURNING 1), \
             quarantined AS (INSERT INTO quarantine \
             (homeserver, txn_id, event_id, reason, body, received_at) SELECT ",
        );
        out.push_bind_param::<Text, _>(&txn.homeserver)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&txn.txn_id)?;
        out.push_sql(", q.event_id, q.reason, q.body, ");
        out.push_bind_param::<BigInt, _>(&txn.received_at)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.quarantined_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.reasons)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.bodies)?;
        out.push_sql(
            ") WITH ORDINALITY AS q(event_id, reason, body, n) \
             WHERE EXISTS (SELECT 1 FROM txn) ORDER BY q.n RETURNING 1) \
             SELECT (SELECT txn_number FROM previous), EXISTS (SELECT 1 FROM txn), \
             (SELECT count(*) FROM events)",
        );
        Ok(())
    }
}

impl QueryId for RecordOnPostgres<'_> {
    type QueryId = ();
    /// Not static: cached by its SQL text, which never changes.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for RecordOnPostgres<'_> {
    /// The previous numbered txnId, whether the transaction was stored, how many events were.
    type SqlType = (Nullable<BigInt>, Bool, BigInt);
}

impl<Conn> RunQueryDsl<Conn> for RecordOnPostgres<'_> {}

/// What [`record_on_postgres`] did.
pub(super) struct RecordedOnPostgres {
    /// The txnId number of the last numbered transaction before this one.
    pub previous: Option<i64>,
    /// False: the transaction was stored before, and nothing was written.
    pub recorded: bool,
    pub new_events: i64,
}

/// Stores `txn` (whose quarantined entries carry its homeserver, txnId and receive time) with one
/// [`RecordOnPostgres`] statement.
pub(super) fn record_on_postgres(
    conn: &mut PgConnection,
    txn: &IncomingTransaction,
    txn_number: Option<i64>,
) -> QueryResult<RecordedOnPostgres> {
    let events = &txn.events;
    let column = |field: fn(&NewEvent) -> &str| events.iter().map(field).collect::<Vec<_>>();
    let quarantined = &txn.quarantined;
    let (previous, recorded, new_events) = RecordOnPostgres {
        txn,
        txn_number,
        event_count: (events.len() + quarantined.len()) as i32,
        event_ids: column(|e| &e.event_id),
        room_ids: column(|e| &e.room_id),
        event_types: column(|e| &e.event_type),
        senders: column(|e| &e.sender),
        state_keys: events.iter().map(|e| e.state_key.as_deref()).collect(),
        event_jsons: column(|e| &e.event_json),
        outcomes: events.iter().map(|e| e.settled).collect(),
        quarantined_ids: quarantined.iter().map(|q| q.event_id.as_deref()).collect(),
        reasons: quarantined.iter().map(|q| q.reason.as_str()).collect(),
        bodies: quarantined.iter().map(|q| q.body.as_str()).collect(),
    }
    .get_result(conn)?;
    Ok(RecordedOnPostgres {
        previous,
        recorded,
        new_events,
    })
}
