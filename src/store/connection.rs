//! One connection type for both backends, picked by the URL's scheme (never by trial: diesel's
//! derived multi-backend `establish` falls back to SQLite and creates a file named after the URL).

use std::time::Duration;

use diesel::r2d2::{self, R2D2Connection};
use diesel::{Connection, ConnectionError, PgConnection, RunQueryDsl, SqliteConnection};

use crate::config::DatabaseUrl;

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
/// Automatic WAL checkpoints are off: `Store::checkpoint` runs them off the request path.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA wal_autocheckpoint = 0;
PRAGMA foreign_keys = ON;";

pub struct Manager {
    url: DatabaseUrl,
    /// How long SQLite waits for another writer's lock: the same bound as for getting a connection.
    busy_timeout: Duration,
}

impl Manager {
    pub fn new(url: DatabaseUrl, busy_timeout: Duration) -> Self {
        Self { url, busy_timeout }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                PgConnection::establish(url.expose()).map(DbConnection::Postgres)
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

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        on_backend!(conn, c => diesel::sql_query("SELECT 1").execute(c))
            .map(drop)
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        on_backend!(conn, c => c.is_broken())
    }
}
