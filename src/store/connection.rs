//! One connection type for both backends, picked by the URL's scheme (never by trial: diesel's
//! derived multi-backend `establish` falls back to SQLite and creates a file named after the URL).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::r2d2::{self, R2D2Connection};
use diesel::{Connection, ConnectionError, PgConnection, RunQueryDsl, SqliteConnection};

use crate::config::{DatabaseUrl, database_url};

pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs `$body` with `$c` bound to the backend's own connection type; the body is compiled once
/// per backend, which is how one query serves both.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::DbConnection::Postgres($c) => $body,
            $crate::store::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Runs `$body` in a write transaction: `BEGIN` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite (so the
/// write lock is taken up front and concurrent writers wait on `busy_timeout` instead of failing);
/// inside another transaction ([`DbConnection::write`]) it is a savepoint.
#[macro_export]
macro_rules! write_transaction {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::DbConnection::Postgres($c) => $c.transaction(|$c| $body),
            $crate::store::DbConnection::Sqlite($c) => $crate::store::sqlite_write($c, |$c| $body),
        }
    };
}

/// SQLite's write transaction: `BEGIN IMMEDIATE` when outermost, a savepoint when nested.
pub fn sqlite_write<T, E>(
    conn: &mut SqliteConnection,
    work: impl FnOnce(&mut SqliteConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let outermost = AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_none();
    if outermost {
        conn.immediate_transaction(work)
    } else {
        conn.transaction(work)
    }
}

impl DbConnection {
    /// A round trip that touches no table: whether the connection answers.
    pub fn select_1(&mut self) -> diesel::QueryResult<()> {
        on_backend!(self, c => diesel::sql_query("SELECT 1").execute(c)).map(drop)
    }

    /// Runs `work` in a write transaction that store functions (which open their own) nest into
    /// as savepoints, so several of them commit or roll back together. The outermost one is
    /// `BEGIN` on PostgreSQL and `BEGIN IMMEDIATE` on SQLite.
    pub fn write<T, E>(&mut self, work: impl FnOnce(&mut Self) -> Result<T, E>) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        match self {
            Self::Postgres(c) => AnsiTransactionManager::begin_transaction(c)?,
            Self::Sqlite(c) => {
                let outermost = AnsiTransactionManager::transaction_manager_status_mut(c)
                    .transaction_depth()?
                    .is_none();
                if outermost {
                    AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
                } else {
                    AnsiTransactionManager::begin_transaction(c)?;
                }
            }
        }
        match work(self) {
            Ok(value) => {
                on_backend!(self, c => AnsiTransactionManager::commit_transaction(c))?;
                Ok(value)
            }
            Err(error) => {
                let _ = on_backend!(self, c => AnsiTransactionManager::rollback_transaction(c));
                Err(error)
            }
        }
    }
}

/// SQLite settings per connection, after `busy_timeout` (set first, so these wait for a lock too).
/// Automatic WAL checkpoints are off: `Store::checkpoint` runs them off the request path (see
/// `checkpoint.rs`, also for the log's size limit: 64 MiB).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA wal_autocheckpoint = 0;
PRAGMA journal_size_limit = 67108864;
PRAGMA foreign_keys = ON;";

/// One connection to the database at `url`, outside any pool (the commands that work on two
/// databases, and `serve`'s presence lock).
pub fn connect(url: &DatabaseUrl, busy_timeout: Duration) -> Result<DbConnection, ConnectionError> {
    Manager::new(url.clone(), busy_timeout, Failures::default()).open()
}

pub struct Manager {
    url: DatabaseUrl,
    /// How long SQLite waits for another writer's lock: the same bound as for getting a connection.
    busy_timeout: Duration,
    failures: Failures,
}

impl Manager {
    pub fn new(url: DatabaseUrl, busy_timeout: Duration, failures: Failures) -> Self {
        Self {
            url,
            busy_timeout,
            failures,
        }
    }
}

/// How many connection failures the pool has seen: a connection found broken after use, or one
/// that could not be opened. Idle connections are not tested before use (a round trip on every
/// request); but when the database went away (a restart, a failover, a network cut), every
/// connection opened before then is likely dead, and each would fail the one request that next
/// took it — for Synapse, a 503 and a longer backoff for every tenant, long after the database is
/// back. So a connection that last answered before the latest failure is tested once
/// (`Store::connection`) and dropped if it is dead.
#[derive(Clone, Default)]
pub struct Failures(Arc<AtomicU64>);

impl Failures {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn note(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Kept with each pooled connection: [`Failures::count`] when it last answered.
#[derive(Clone, Copy)]
pub struct AnsweredAfter(pub u64);

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        self.open().inspect_err(|_| self.failures.note())
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        conn.select_1()
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        let broken = on_backend!(conn, c => c.is_broken());
        if broken {
            self.failures.note();
        }
        broken
    }
}

impl Manager {
    fn open(&self) -> Result<DbConnection, ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let env = |name: &str| std::env::var(name).ok();
                let used = database_url::for_libpq(url.expose(), env);
                PgConnection::establish(&used)
                    .map(DbConnection::Postgres)
                    .map_err(|error| match error {
                        ConnectionError::BadConnection(message) => ConnectionError::BadConnection(
                            match database_url::refusal_hint(url.expose(), &used, &message) {
                                Some(hint) => format!("{} ({hint})", message.trim_end()),
                                None => message,
                            },
                        ),
                        other => other,
                    })
            }
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|error| {
                        ConnectionError::BadConnection(format!(
                            "cannot create the directory {} for the SQLite file: {error}",
                            parent.display()
                        ))
                    })?;
                }
                let path = path.to_str().ok_or_else(|| {
                    ConnectionError::InvalidConnectionUrl(
                        "the SQLite path is not valid UTF-8".into(),
                    )
                })?;
                let mut conn = SqliteConnection::establish(path)?;
                let pragmas = format!(
                    "PRAGMA busy_timeout = {};\n{SQLITE_PRAGMAS}",
                    self.busy_timeout.as_millis()
                );
                diesel::connection::SimpleConnection::batch_execute(&mut conn, &pragmas)
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}
