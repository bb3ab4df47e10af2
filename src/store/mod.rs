//! The only code that knows SQL: a pool over PostgreSQL or SQLite, chosen by the URL's scheme, and
//! one module per table group.
//!
//! Queries are synchronous (diesel) and run on tokio's blocking pool through [`Store::run`].

pub mod antispam;
pub(crate) mod checkpoint;
pub(crate) mod connection;
pub(crate) mod creation_lock;
pub(crate) mod direct_rooms;
pub mod inbox;
mod inbox_rows;
pub mod inbox_views;
mod incoming;
pub mod job_folding;
pub mod job_keys;
mod job_status;
pub mod jobs;
pub mod leader;
pub(crate) mod member_state;
pub mod members;
pub(crate) mod migrations;
pub(crate) mod moderation;
pub mod moderation_log;
pub mod outbox;
pub mod outbox_data;
pub(crate) mod port;
pub(crate) mod presence;
pub mod reports;
pub mod retention;
pub(crate) mod room_access;
pub mod room_changes;
pub mod rooms;
pub(crate) mod schema;
mod seen_events;
pub(crate) mod staff;
pub(crate) mod state;
pub mod status;
pub(crate) mod tenant_rooms;
pub mod webhook_deliveries;
pub mod writer;

use std::future::Future;
use std::panic::Location;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::r2d2::{self, Pool};

use self::connection::{AnsweredAfter, Failures, Manager};
pub use self::connection::{DbConnection, sqlite_write};
use self::seen_events::SeenEvents;
pub use self::seen_events::share_an_entry as seen_events_share_an_entry;
use self::writer::Writer;
use crate::config::{self, DatabaseUrl};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be had within `database.acquire_timeout_ms`: the database is down or
    /// unreachable.
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    #[error("a database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("the database task was cancelled")]
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    backend: Backend,
    /// SQLite's one writer, shared in this process (see `writer.rs`). `None` on PostgreSQL.
    writer: Option<Arc<Writer>>,
    /// SQLite's event-id dedupe (see `seen_events.rs`), loaded at start (or by the first
    /// transaction). `None` on PostgreSQL.
    seen_events: Option<Arc<Mutex<Option<SeenEvents>>>>,
    failures: Failures,
    /// For the connections of their own that locks held across a homeserver call need.
    url: DatabaseUrl,
}

impl Store {
    /// Builds the pool without connecting yet: the first use connects (and reports an outage).
    pub fn new(database: &config::Database) -> Self {
        let backend = match database.url {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        };
        let failures = Failures::default();
        let pool = Pool::builder()
            .max_size(database.max_connections)
            // No connections opened ahead on r2d2's threads: a one-shot CLI command would exit while
            // libpq is still connecting there, which crashes the process.
            .min_idle(Some(0))
            .connection_timeout(database.acquire_timeout)
            // A broken connection fails its query and is then dropped (`has_broken`); a `SELECT 1`
            // before every use would cost a round trip on every request. After a failure, older
            // connections are tested once (`Store::connection`).
            .test_on_check_out(false)
            .error_handler(Box::new(LogErrors))
            .build_unchecked(Manager::new(
                database.url.clone(),
                database.acquire_timeout,
                failures.clone(),
            ));
        let writer = (backend == Backend::Sqlite).then(|| Arc::new(Writer::default()));
        let seen_events = (backend == Backend::Sqlite).then(Arc::default);
        Self {
            pool,
            backend,
            writer,
            seen_events,
            failures,
            url: database.url.clone(),
        }
    }

    /// Takes declared room `room_key`'s creation lock across replicas (`creation_lock.rs`),
    /// waiting up to `wait` for another replica making it now; `None` when it still is.
    pub async fn creation_lock(
        &self,
        room_key: i64,
        wait: Duration,
    ) -> Result<Option<creation_lock::CreationLock>, StoreError> {
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || creation_lock::take(&url, room_key, wait))
            .await
            .map_err(|_| StoreError::Cancelled)?
    }

    /// Takes direct-message room `direct_key`'s creation lock across replicas, like
    /// [`Store::creation_lock`].
    pub async fn direct_creation_lock(
        &self,
        direct_key: i64,
        wait: Duration,
    ) -> Result<Option<creation_lock::CreationLock>, StoreError> {
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || creation_lock::take_direct(&url, direct_key, wait))
            .await
            .map_err(|_| StoreError::Cancelled)?
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for synchronous work (CLI commands, and inside [`Store::run`]). One that last
    /// answered before the pool's latest connection failure is tested first, and dropped if dead
    /// (see [`Failures`]); a new one counts as answering now.
    pub fn connection(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        // A dead one is broken now and dropped as it goes back, and the pool holds at most its
        // size; one that fails the test without breaking (an error from a live server) would come
        // back next, so the attempts are counted too.
        for _ in 0..=self.pool.max_size() {
            let mut conn = self
                .pool
                .get()
                .map_err(|error| StoreError::Unavailable(error.to_string()))?;
            let failures = self.failures.count();
            let answered = r2d2::PooledConnection::extensions(&conn)
                .get::<AnsweredAfter>()
                .copied();
            let usable = match answered {
                Some(AnsweredAfter(seen)) if seen < failures => conn.select_1().is_ok(),
                _ => true,
            };
            if usable {
                r2d2::PooledConnection::extensions_mut(&mut conn).insert(AnsweredAfter(failures));
                return Ok(conn);
            }
        }
        Err(StoreError::Unavailable(
            "every pooled database connection failed its test".into(),
        ))
    }

    /// Runs `work` with a connection on the blocking pool.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&mut *store.connection()?))
            .await
            .map_err(|_| StoreError::Cancelled)?
    }

    /// Like [`Store::run`], for writes someone waits for (a transaction's acknowledgement). On
    /// SQLite the turn is counted under the caller's source location (`writer.rs`).
    #[track_caller]
    pub fn write<T, F>(&self, work: F) -> impl Future<Output = Result<T, StoreError>> + Send + '_
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let holder = Location::caller();
        async move {
            let turn = match &self.writer {
                Some(writer) => Some(writer.urgent(holder).await),
                None => None,
            };
            self.run_in_turn(turn, work).await
        }
    }

    /// Like [`Store::write`], for background writes: on SQLite they defer to urgent ones, for a
    /// while (`writer.rs`).
    #[track_caller]
    pub fn write_in_background<T, F>(
        &self,
        work: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + '_
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let holder = Location::caller();
        async move {
            let turn = match &self.writer {
                Some(writer) => Some(writer.background(holder).await),
                None => None,
            };
            self.run_in_turn(turn, work).await
        }
    }

    /// Counts the SQLite writer's turns in `metrics` (nothing on PostgreSQL).
    pub fn count_writer_turns(&self, metrics: writer::TurnMetrics) {
        if let Some(writer) = &self.writer {
            writer.count_in(metrics);
        }
    }

    /// Runs `work` holding `turn` until it is over: a caller that gives up (a client that
    /// disconnected) drops only its wait, while the write finishes (commits or rolls back) on the
    /// blocking pool before the next writer goes.
    async fn run_in_turn<T, F>(&self, turn: Option<writer::Turn>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |conn| {
            let result = work(conn);
            drop(turn);
            result
        })
        .await
    }

    /// Applies pending migrations; returns the names applied.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        migrations::run_pending(&mut *self.connection()?)
    }

    /// Reverts the `count` most recently applied migrations; returns their names, newest first.
    pub fn revert_migrations(&self, count: usize) -> Result<Vec<String>, StoreError> {
        migrations::revert_last(&mut *self.connection()?, count)
    }

    /// A round trip to the database, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|conn| Ok(conn.select_1()?)).await
    }
}

/// Routes the pool's connection errors to tracing (they never contain the URL's password).
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<diesel::ConnectionError> for LogErrors {
    fn handle_error(&self, error: diesel::ConnectionError) {
        tracing::warn!(%error, "database connection failed");
    }
}

/// Milliseconds since the Unix epoch, the time unit of every table.
pub fn unix_ms(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}
