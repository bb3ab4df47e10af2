//! The inbox: transactions are written here before Synapse gets its 200, and the processor works
//! through the stored events in arrival order.
//!
//! Guarantees: a transaction is stored whole or not at all; a transaction seen before (same txnId
//! and same events) is a duplicate and stores nothing; an event seen before under any txnId is not
//! stored again; pending events are handed out in `id` order, one batch at a time across all
//! processes sharing the database.

use std::collections::HashSet;
use std::sync::PoisonError;

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::inbox_rows::{self, InsertRows};
pub use super::incoming::{IncomingTransaction, NewEvent, NewQuarantine};
use super::schema::{as_transactions, inbox_events};
use super::seen_events::{self, SeenEvents};
use super::{Backend, DbConnection, Store, StoreError};
use crate::on_backend;

/// Key of the PostgreSQL advisory lock held by the one process working the inbox at a time.
const PROCESSOR_LOCK: i64 = 0x006f_6d61_7369_6e62; // "omasinb"

/// What storing a transaction did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The same transaction was stored before; nothing was written.
    pub duplicate: bool,
    /// Events not seen before under any txnId.
    pub new_events: usize,
    /// Set when the txnId is far below (under half) the previous one: Synapse's counter restarted
    /// (its database was reset). Holds the txnId seen before.
    pub reset_from: Option<i64>,
    /// The positions in the transaction's events of those stored before under another txnId (or
    /// twice in this one), which were not stored again; usually none.
    pub seen_before: Vec<usize>,
}

impl Store {
    /// Stores `txn` (see the module's guarantees) as a write someone waits for, and hands it back
    /// with what storing it did.
    ///
    /// A transaction's pending events are stored first, then its settled ones, each in arrival
    /// order: the processor rewrites every row it marks, and pending rows side by side share their
    /// pages (one member event in five, spread among messages, dirtied a page per event — a WAL
    /// frame each on SQLite — where side by side they dirty a few per transaction). Nothing reads
    /// settled rows in order with pending ones.
    pub async fn record_transaction(
        &self,
        txn: IncomingTransaction,
    ) -> Result<(IncomingTransaction, Recorded), StoreError> {
        let seen = self.seen_events.clone();
        self.write(move |conn| {
            let recorded = match (seen, &mut *conn) {
                (Some(seen), DbConnection::Sqlite(c)) => {
                    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    let seen = match &mut *seen {
                        Some(seen) => seen,
                        empty => empty.insert(SeenEvents::load(c)?),
                    };
                    record_new_to_sqlite(c, &txn, seen)?
                }
                (_, DbConnection::Postgres(c)) => record_on_postgres(c, &txn)?,
                (None, DbConnection::Sqlite(_)) => {
                    unreachable!("a SQLite store keeps its event-id dedupe in memory")
                }
            };
            Ok((txn, recorded))
        })
        .await
    }

    /// SQLite: loads the event-id dedupe from the table now, before the first transaction waits
    /// for it (a restart with millions of events stored reads them for seconds). Returns the ids
    /// held and the bytes they take; `None` on PostgreSQL or when it was loaded before. If this
    /// fails, the first transaction loads it.
    pub async fn load_seen_events(&self) -> Result<Option<(usize, usize)>, StoreError> {
        let Some(seen) = self.seen_events.clone() else {
            return Ok(None);
        };
        self.run(move |conn| {
            let DbConnection::Sqlite(c) = conn else {
                return Ok(None);
            };
            let loaded = SeenEvents::load(c)?;
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.is_some() {
                return Ok(None);
            }
            let size = (loaded.len(), loaded.heap_bytes());
            *seen = Some(loaded);
            Ok(Some(size))
        })
        .await
    }

    /// SQLite: lets the event-id dedupe forget what the retention pruner deleted (call it after a
    /// pruning pass). Nothing to do on PostgreSQL, where the table is the dedupe.
    pub async fn forget_pruned_events(&self) -> Result<(), StoreError> {
        let Some(seen) = self.seen_events.clone() else {
            return Ok(());
        };
        self.write_in_background(move |conn| {
            let first_row_id: Option<i64> = on_backend!(conn, c => inbox_events::table
                .select(diesel::dsl::min(inbox_events::id))
                .get_result(c))?;
            if let Some(seen) = seen.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
                seen.forget_below(first_row_id);
            }
            Ok(())
        })
        .await
    }
}

/// SQLite: stores only the events the table does not hold (nor the transaction twice), then adds
/// them to `seen` once committed. `seen` names the rows that may hold an id (`seen_events.rs`);
/// those are read to be sure.
fn record_new_to_sqlite(
    conn: &mut SqliteConnection,
    txn: &IncomingTransaction,
    seen: &mut SeenEvents,
) -> Result<Recorded, StoreError> {
    let mut fingerprints = Vec::with_capacity(txn.events.len());
    let mut in_this_one: HashSet<&str> = HashSet::with_capacity(txn.events.len());
    let mut events = Vec::with_capacity(txn.events.len());
    let mut seen_before = Vec::new();
    for (position, event) in txn.events.iter().enumerate() {
        let fingerprint = seen_events::fingerprint(&event.event_id);
        if in_this_one.insert(&event.event_id) && !stored_before(conn, seen, fingerprint, event)? {
            fingerprints.push((event.settled.is_some(), fingerprint));
            events.push(event);
        } else {
            seen_before.push(position);
        }
    }
    // See `Store::record_transaction`; a stable sort, so the fingerprints stay in step.
    events.sort_by_key(|event| event.settled.is_some());
    fingerprints.sort_by_key(|(settled, _)| *settled);
    let txn_number = txn.txn_id.parse::<i64>().ok();
    let recorded = super::sqlite_write(conn, |c| {
        // The last numbered transaction, not the highest ever: after a reset the count starts
        // again from there, so only the first transaction after it is the reset.
        let previous = c.last_numbered_txn(&txn.homeserver)?;
        let inserted = diesel::insert_into(as_transactions::table)
            .values((
                as_transactions::homeserver.eq(&txn.homeserver),
                as_transactions::txn_id.eq(&txn.txn_id),
                as_transactions::fingerprint.eq(&txn.fingerprint),
                as_transactions::txn_number.eq(txn_number),
                as_transactions::event_count.eq((txn.events.len() + txn.quarantined.len()) as i32),
                as_transactions::received_at.eq(txn.received_at),
            ))
            .on_conflict_do_nothing()
            .execute(c)?;
        if inserted == 0 {
            return Ok(Recorded {
                duplicate: true,
                ..Recorded::default()
            });
        }
        let new_events = inbox_rows::insert_events_to_sqlite(c, txn, &events)?;
        c.insert_quarantined(&txn.quarantined)?;
        QueryResult::Ok(Recorded {
            duplicate: false,
            new_events,
            reset_from: reset_from(txn_number, previous),
            seen_before,
        })
    })?;
    if !recorded.duplicate && !events.is_empty() {
        // One writer, and AUTOINCREMENT: the rows just inserted are the last ones, numbered in
        // the order they were inserted.
        let last_row_id: i64 = inbox_events::table
            .select(diesel::dsl::max(inbox_events::id))
            .get_result::<Option<i64>>(conn)?
            .unwrap_or_default();
        let first_row_id = last_row_id - fingerprints.len() as i64 + 1;
        for (row, (_, fingerprint)) in (first_row_id..).zip(fingerprints) {
            seen.remember(row, fingerprint);
        }
    }
    Ok(recorded)
}

/// Whether the table holds `event` already: one of the rows `seen` names under its fingerprint
/// has its id (usually there are none to read).
fn stored_before(
    conn: &mut SqliteConnection,
    seen: &SeenEvents,
    fingerprint: seen_events::Fingerprint,
    event: &NewEvent,
) -> QueryResult<bool> {
    for row in seen.candidates(fingerprint) {
        let stored: Option<String> = inbox_events::table
            .find(row)
            .select(inbox_events::event_id)
            .first(conn)
            .optional()?;
        if stored.as_deref() == Some(event.event_id.as_str()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// PostgreSQL: stores `txn` in one statement (see `inbox_rows::RECORD_ON_POSTGRES`), its unique
/// index on event ids skipping those stored before. Only when some were does a second query ask
/// which.
fn record_on_postgres(
    conn: &mut PgConnection,
    txn: &IncomingTransaction,
) -> Result<Recorded, StoreError> {
    let txn_number = txn.txn_id.parse::<i64>().ok();
    let row = inbox_rows::record_on_postgres(conn, txn, txn_number)?;
    if !row.recorded {
        return Ok(Recorded {
            duplicate: true,
            ..Recorded::default()
        });
    }
    let new_events = usize::try_from(row.new_events).unwrap_or_default();
    let mut seen_before = Vec::new();
    if new_events < txn.events.len() {
        let mut stored: HashSet<String> = inbox_events::table
            .filter(inbox_events::homeserver.eq(&txn.homeserver))
            .filter(inbox_events::txn_id.eq(&txn.txn_id))
            .filter(inbox_events::received_at.eq(txn.received_at))
            .select(inbox_events::event_id)
            .load_iter::<String, DefaultLoadingMode>(conn)?
            .collect::<QueryResult<_>>()?;
        seen_before = (txn.events.iter().enumerate())
            .filter(|(_, event)| !stored.remove(&event.event_id))
            .map(|(position, _)| position)
            .collect();
    }
    Ok(Recorded {
        duplicate: false,
        new_events,
        reset_from: reset_from(txn_number, row.previous),
        seen_before,
    })
}

/// The txnId seen before when `txn_number` is a reset of Synapse's counter: it counts up from 1
/// after its database is reset, while a txnId merely below the previous one (e.g. concurrent
/// pushes committing out of order) is not a reset.
fn reset_from(txn_number: Option<i64>, previous: Option<i64>) -> Option<i64> {
    match (txn_number, previous) {
        (Some(number), Some(previous)) if number.saturating_mul(2) < previous => Some(previous),
        _ => None,
    }
}

/// A stored event waiting for the processor.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inbox_events)]
pub struct PendingEvent {
    pub id: i64,
    /// The homeserver that delivered it.
    pub homeserver: String,
    pub txn_id: String,
    pub event_id: String,
    pub room_id: String,
    pub event_type: String,
    pub sender: String,
    pub state_key: Option<String>,
    pub event_json: String,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// What the processor made of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled<T> {
    /// Stored as the event's outcome.
    pub outcome: String,
    /// Set when the event cannot be understood: it is also quarantined, with this reason.
    pub quarantine: Option<String>,
    /// What the processor made of the event, for the batch's follow-up (never stored).
    pub meaning: T,
}

impl Store {
    /// Hands up to `limit` pending events, oldest first, to `handle`, marks each processed with
    /// what it returns (quarantining where it says so), and runs `follow_up` on the batch in the
    /// same transaction (the jobs the events call for are queued with their marks, or neither
    /// is). A crash leaves the batch pending. Returns the events with their outcomes; empty when
    /// there is nothing to do or another process holds the inbox.
    ///
    /// PostgreSQL: one transaction under an advisory lock, so replicas sharing the inbox take
    /// turns and every room stays in order. SQLite (one process, this processor the only reader
    /// of pending events): the events are read and handled first and the marks written after, so
    /// a waiting acknowledgement never waits for the handling.
    pub async fn process_inbox<T, H, F>(
        &self,
        limit: i64,
        now_ms: i64,
        mut handle: H,
        follow_up: F,
    ) -> Result<Vec<(PendingEvent, Handled<T>)>, StoreError>
    where
        T: Send + 'static,
        H: FnMut(&PendingEvent) -> Handled<T> + Send + 'static,
        F: FnOnce(&mut DbConnection, &[(PendingEvent, Handled<T>)]) -> Result<(), StoreError>
            + Send
            + 'static,
    {
        if self.backend() == Backend::Postgres {
            return self
                .write_in_background(move |conn| {
                    conn.write(|conn| {
                        if let DbConnection::Postgres(c) = &mut *conn {
                            let lock: Locked =
                                diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                                    .bind::<BigInt, _>(PROCESSOR_LOCK)
                                    .get_result(c)?;
                            if !lock.locked {
                                return Ok(Vec::new());
                            }
                        }
                        let pending = on_backend!(&mut *conn, c => c.load_pending(limit))?;
                        let processed = handle_all(pending, &mut handle);
                        on_backend!(&mut *conn, c => c.mark_processed(&processed, now_ms))?;
                        follow_up(conn, &processed)?;
                        Ok(processed)
                    })
                })
                .await;
        }
        let pending = self
            .run(move |conn| Ok(on_backend!(conn, c => c.load_pending(limit))?))
            .await?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let processed = tokio::task::spawn_blocking(move || handle_all(pending, &mut handle))
            .await
            .map_err(|_| StoreError::Cancelled)?;
        self.write_in_background(move |conn| {
            conn.write(|conn| {
                on_backend!(&mut *conn, c => c.mark_processed(&processed, now_ms))?;
                follow_up(conn, &processed)?;
                Ok(processed)
            })
        })
        .await
    }
}

fn handle_all<T>(
    pending: Vec<PendingEvent>,
    handle: &mut impl FnMut(&PendingEvent) -> Handled<T>,
) -> Vec<(PendingEvent, Handled<T>)> {
    pending
        .into_iter()
        .map(|event| {
            let handled = handle(&event);
            (event, handled)
        })
        .collect()
}

/// Reads of the first rows of an ordered query, each backend its own way. SQLite plans a bound
/// `LIMIT ?` with its value, so binding it again expires the statement and every use prepared it
/// anew (`sqlite3Reprepare` was 5 % of the acknowledgement's CPU); SQLite steps lazily, so there
/// the query runs without LIMIT and stops after the rows it needs. PostgreSQL would send every
/// row: it keeps LIMIT.
trait FirstRows {
    /// The txnId number of `homeserver`'s last numbered transaction (the newest, not the highest).
    fn last_numbered_txn(&mut self, homeserver: &str) -> QueryResult<Option<i64>>;
    /// Up to `limit` pending events, oldest first.
    fn load_pending(&mut self, limit: i64) -> QueryResult<Vec<PendingEvent>>;
}

/// A homeserver's numbered transactions, newest first (a macro: the query's type differs per
/// backend).
macro_rules! last_numbered_txns {
    ($homeserver:expr) => {
        as_transactions::table
            .filter(as_transactions::homeserver.eq($homeserver))
            .filter(as_transactions::txn_number.is_not_null())
            .order(as_transactions::id.desc())
            .select(as_transactions::txn_number)
    };
}

/// The pending events, oldest first.
macro_rules! pending {
    () => {
        inbox_events::table
            .filter(inbox_events::processed_at.is_null())
            .order(inbox_events::id)
            .select(PendingEvent::as_select())
    };
}

impl FirstRows for PgConnection {
    fn last_numbered_txn(&mut self, homeserver: &str) -> QueryResult<Option<i64>> {
        Ok(last_numbered_txns!(homeserver)
            .first::<Option<i64>>(self)
            .optional()?
            .flatten())
    }

    fn load_pending(&mut self, limit: i64) -> QueryResult<Vec<PendingEvent>> {
        pending!().limit(limit).load(self)
    }
}

impl FirstRows for SqliteConnection {
    fn last_numbered_txn(&mut self, homeserver: &str) -> QueryResult<Option<i64>> {
        let mut rows =
            last_numbered_txns!(homeserver).load_iter::<Option<i64>, DefaultLoadingMode>(self)?;
        Ok(rows.next().transpose()?.flatten())
    }

    fn load_pending(&mut self, limit: i64) -> QueryResult<Vec<PendingEvent>> {
        pending!()
            .load_iter::<PendingEvent, DefaultLoadingMode>(self)?
            .take(usize::try_from(limit).unwrap_or(0))
            .collect()
    }
}

/// The processor's queries, the same for both backends.
trait InboxQueries: InsertRows + FirstRows {
    /// Marks the events processed and quarantines those handled as unreadable.
    fn mark_processed<T>(
        &mut self,
        processed: &[(PendingEvent, Handled<T>)],
        now_ms: i64,
    ) -> QueryResult<()>;
}

macro_rules! inbox_queries {
    ($($connection:ty),*) => {$(
        impl InboxQueries for $connection {
            fn mark_processed<T>(&mut self, processed: &[(PendingEvent, Handled<T>)], now_ms: i64) -> QueryResult<()> {
                let quarantined: Vec<NewQuarantine> = processed
                    .iter()
                    .filter_map(|(event, handled)| {
                        Some(NewQuarantine {
                            homeserver: event.homeserver.clone(),
                            txn_id: event.txn_id.clone(),
                            event_id: Some(event.event_id.clone()),
                            reason: handled.quarantine.clone()?,
                            body: event.event_json.clone(),
                            received_at: now_ms,
                        })
                    })
                    .collect();
                self.insert_quarantined(&quarantined)?;
                // One UPDATE per distinct outcome (there are few), not one per event.
                let mut by_outcome: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
                for (event, handled) in processed {
                    by_outcome.entry(handled.outcome.as_str()).or_default().push(event.id);
                }
                for (outcome, ids) in by_outcome {
                    diesel::update(inbox_events::table.filter(inbox_events::id.eq_any(ids)))
                        .set((inbox_events::processed_at.eq(now_ms), inbox_events::outcome.eq(outcome)))
                        .execute(self)?;
                }
                Ok(())
            }
        }
    )*};
}

inbox_queries!(PgConnection, SqliteConnection);
