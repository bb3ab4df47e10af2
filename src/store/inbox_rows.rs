//! Inserting a transaction's rows into the inbox, each backend its own fastest way: one prepared
//! statement of unnested arrays on PostgreSQL, cached multi-row statements on SQLite.

use diesel::backend::Backend as DieselBackend;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Array, BigInt, Nullable, Text};

use super::inbox::{NewEvent, NewQuarantine};
use super::schema::quarantine;

/// Rows per quarantine INSERT on PostgreSQL: 5 columns × 1,000 stays far below its limit of
/// 65,535 parameters per statement.
const ROWS_PER_INSERT: usize = 1_000;

/// The largest multi-row INSERT of events on SQLite: 6 parameters × 128 rows, far below its limit
/// of 32,766. Smaller chunks are powers of two, so a connection caches at most 8 such statements.
const SQLITE_MAX_ROWS: usize = 128;

/// Inserting many rows, each backend its own way.
pub(super) trait InsertRows {
    /// Inserts `events` in order — on PostgreSQL skipping those stored before (the unique index
    /// decides; on SQLite the caller did) — and returns how many were stored.
    fn insert_events(
        &mut self,
        txn_id: &str,
        received_at: i64,
        events: &[&NewEvent],
    ) -> QueryResult<usize>;
    fn insert_quarantined(&mut self, entries: &[NewQuarantine]) -> QueryResult<()>;
}

/// PostgreSQL: one statement per transaction whatever its size — the columns bound as arrays and
/// unnested in order — so it is prepared once per connection (a multi-row VALUES list differs
/// with every row count and was parsed and planned afresh for each transaction).
impl InsertRows for PgConnection {
    fn insert_events(
        &mut self,
        txn_id: &str,
        received_at: i64,
        events: &[&NewEvent],
    ) -> QueryResult<usize> {
        if events.is_empty() {
            return Ok(0);
        }
        InsertEventsUnnest {
            txn_id,
            received_at,
            event_ids: events.iter().map(|e| e.event_id.as_str()).collect(),
            room_ids: events.iter().map(|e| e.room_id.as_str()).collect(),
            event_types: events.iter().map(|e| e.event_type.as_str()).collect(),
            senders: events.iter().map(|e| e.sender.as_str()).collect(),
            state_keys: events.iter().map(|e| e.state_key.as_deref()).collect(),
            event_jsons: events.iter().map(|e| e.event_json.as_str()).collect(),
        }
        .execute(self)
    }

    fn insert_quarantined(&mut self, entries: &[NewQuarantine]) -> QueryResult<()> {
        for chunk in entries.chunks(ROWS_PER_INSERT) {
            diesel::insert_into(quarantine::table)
                .values(chunk)
                .execute(self)?;
        }
        Ok(())
    }
}

/// SQLite: multi-row `INSERT` statements of events the caller found new (`store/seen_events.rs`;
/// the table has no unique index to conflict on), in chunks of powers of two so that each size is
/// prepared once per connection and then reused from diesel's statement cache.
impl InsertRows for SqliteConnection {
    fn insert_events(
        &mut self,
        txn_id: &str,
        received_at: i64,
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
                txn_id,
                received_at,
                events: chunk,
            }
            .execute(self)?;
            events = rest;
        }
        Ok(new)
    }

    fn insert_quarantined(&mut self, entries: &[NewQuarantine]) -> QueryResult<()> {
        for entry in entries {
            diesel::insert_into(quarantine::table)
                .values(entry)
                .execute(self)?;
        }
        Ok(())
    }
}

const INSERT_EVENTS: &str = "INSERT INTO inbox_events \
    (event_id, room_id, event_type, sender, state_key, event_json, txn_id, received_at) ";

/// `INSERT … VALUES (…), …` for one chunk of events. Its SQL depends only on the row count, so
/// diesel caches the prepared statement by its text.
struct InsertEventsValues<'a> {
    txn_id: &'a str,
    received_at: i64,
    events: &'a [&'a NewEvent],
}

impl<DB> QueryFragment<DB> for InsertEventsValues<'_>
where
    DB: DieselBackend,
    str: ToSql<Text, DB>,
    String: ToSql<Text, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(INSERT_EVENTS);
        out.push_sql("VALUES ");
        for (i, event) in self.events.iter().enumerate() {
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
            out.push_bind_param::<Text, _>(self.txn_id)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&self.received_at)?;
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

/// PostgreSQL's insert of a whole transaction's events: arrays unnested in their order.
struct InsertEventsUnnest<'a> {
    txn_id: &'a str,
    received_at: i64,
    event_ids: Vec<&'a str>,
    room_ids: Vec<&'a str>,
    event_types: Vec<&'a str>,
    senders: Vec<&'a str>,
    state_keys: Vec<Option<&'a str>>,
    event_jsons: Vec<&'a str>,
}

impl QueryFragment<Pg> for InsertEventsUnnest<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(INSERT_EVENTS);
        out.push_sql(
            "SELECT e.event_id, e.room_id, e.event_type, e.sender, e.state_key, e.event_json, ",
        );
        out.push_bind_param::<Text, _>(self.txn_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.received_at)?;
        out.push_sql(" FROM unnest(");
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
        out.push_sql(
            ") WITH ORDINALITY AS e(event_id, room_id, event_type, sender, state_key, event_json, n) \
             ORDER BY e.n ON CONFLICT (event_id) DO NOTHING",
        );
        Ok(())
    }
}

impl QueryId for InsertEventsUnnest<'_> {
    type QueryId = ();
    /// Not static: cached by its SQL text, which never changes.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Conn> RunQueryDsl<Conn> for InsertEventsUnnest<'_> {}
