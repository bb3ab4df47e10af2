//! Writing a transaction's rows into the inbox, each backend its own fastest way: on PostgreSQL the
//! whole transaction as one prepared statement of unnested arrays, on SQLite cached multi-row
//! statements.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;

use super::incoming::{IncomingTransaction, NewEvent, NewQuarantine};
use super::schema::quarantine;

/// Rows per quarantine INSERT on PostgreSQL: 5 columns × 1,000 stays far below its limit of
/// 65,535 parameters per statement.
const ROWS_PER_INSERT: usize = 1_000;

/// The largest multi-row INSERT of events on SQLite: 7 parameters × 128 rows, far below its limit
/// of 32,766. Smaller chunks are powers of two, so a connection caches at most 8 such statements
/// (`insert_events_to_sqlite` names each size below it).
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
/// unique index to conflict on), in order, as multi-row `INSERT` statements: as many of the largest
/// as fit, then one each of the smaller powers of two the rest needs. Each size is its own type
/// (`InsertEventsValues<ROWS>`), so diesel finds its prepared statement by type id, without writing
/// out and hashing the SQL at every use. Returns how many were stored.
pub(super) fn insert_events_to_sqlite(
    conn: &mut SqliteConnection,
    txn: &IncomingTransaction,
    mut events: &[&NewEvent],
) -> QueryResult<usize> {
    let mut new = insert_chunks::<SQLITE_MAX_ROWS>(conn, txn, &mut events)?;
    new += insert_chunks::<64>(conn, txn, &mut events)?;
    new += insert_chunks::<32>(conn, txn, &mut events)?;
    new += insert_chunks::<16>(conn, txn, &mut events)?;
    new += insert_chunks::<8>(conn, txn, &mut events)?;
    new += insert_chunks::<4>(conn, txn, &mut events)?;
    new += insert_chunks::<2>(conn, txn, &mut events)?;
    new += insert_chunks::<1>(conn, txn, &mut events)?;
    debug_assert!(events.is_empty());
    Ok(new)
}

/// Inserts chunks of exactly `ROWS` from the front of `events` while that many are left, and
/// leaves the rest there.
fn insert_chunks<const ROWS: usize>(
    conn: &mut SqliteConnection,
    txn: &IncomingTransaction,
    events: &mut &[&NewEvent],
) -> QueryResult<usize> {
    let mut new = 0;
    while let Some((chunk, rest)) = events.split_at_checked(ROWS) {
        new += InsertEventsValues::<ROWS> { txn, events: chunk }.execute(conn)?;
        *events = rest;
    }
    Ok(new)
}

/// `INSERT … VALUES (…), …` for one chunk of exactly `ROWS` events.
///
/// What every row shares — the homeserver, the txnId and the receive time — is bound once, as
/// SQLite's parameters 1 to 3, and the later rows name them (`?1`); a bare `?` takes the next
/// number after the highest one used, so diesel's binds keep their order. A row's `processed_at`
/// is its receive time when it is settled (has an outcome), else NULL, computed from its own
/// outcome parameter rather than bound again: 7 parameters a row instead of 11.
struct InsertEventsValues<'a, const ROWS: usize> {
    txn: &'a IncomingTransaction,
    events: &'a [&'a NewEvent],
}

/// Parameters per row after the first, which also binds the three shared ones.
const PARAMS_PER_ROW: usize = 7;

impl<const ROWS: usize> QueryFragment<Sqlite> for InsertEventsValues<'_, ROWS> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO inbox_events (homeserver, txn_id, received_at, event_id, room_id, \
             event_type, sender, state_key, event_json, outcome, processed_at) VALUES ",
        );
        for (i, event) in self.events.iter().enumerate() {
            if i == 0 {
                out.push_sql("(");
                out.push_bind_param::<Text, _>(&self.txn.homeserver)?;
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(&self.txn.txn_id)?;
                out.push_sql(", ");
                out.push_bind_param::<BigInt, _>(&self.txn.received_at)?;
                out.push_sql(", ");
            } else {
                out.push_sql(", (?1, ?2, ?3, ");
            }
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
            out.push_bind_param::<Nullable<Text>, _>(&event.settled)?;
            // The outcome just bound is parameter 3 + 7 × (i + 1). (Written without allocating:
            // diesel walks the statement again at every use to collect the binds.)
            let mut digits = [0; 20];
            out.push_sql(", CASE WHEN ?");
            out.push_sql(decimal(3 + PARAMS_PER_ROW * (i + 1), &mut digits));
            out.push_sql(" IS NULL THEN NULL ELSE ?3 END)");
        }
        Ok(())
    }
}

/// `n` in decimal, written into `digits`.
fn decimal(mut n: usize, digits: &mut [u8; 20]) -> &str {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&digits[start..]).unwrap_or_default()
}

/// The statement's identity for diesel's cache: one per row count.
struct InsertEventsRows<const ROWS: usize>;

impl<const ROWS: usize> QueryId for InsertEventsValues<'_, ROWS> {
    type QueryId = InsertEventsRows<ROWS>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const ROWS: usize, Conn> RunQueryDsl<Conn> for InsertEventsValues<'_, ROWS> {}

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

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_writes_every_digit() {
        for n in [0, 7, 10, 899, usize::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string());
        }
    }
}
