//! Whether a daemon is using a database: `serve` holds a shared lock for its life, and a command
//! that must have the database to itself (`migrate-db` on its source) asks for the lock
//! exclusively. On SQLite the lock is the operating system's on a file beside the database (let go
//! by the kernel however the process ends); on PostgreSQL a session-level advisory lock, shared by
//! every replica, on a connection of its own (let go when that session ends).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use diesel::{QueryableByName, RunQueryDsl, sql_types::Bool};

use super::{DbConnection, StoreError};
use crate::config::DatabaseUrl;

/// Key of the advisory lock `serve` holds shared on PostgreSQL.
const SERVE_LOCK: i64 = 0x006f_6d61_7373_7276; // "omassrv"

/// The lock `serve` holds while it runs: held by holding the value, let go by dropping it.
pub enum Presence {
    File(#[allow(dead_code, reason = "held, never read")] File),
    Postgres(#[allow(dead_code, reason = "held, never read")] DbConnection),
}

/// The file beside an SQLite database that `serve` locks.
fn lock_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".serve-lock");
    PathBuf::from(name)
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    let file = lock_file(path);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&file)
        .map_err(|error| {
            StoreError::Unavailable(format!("cannot open {}: {error}", file.display()))
        })
}

fn connect(url: &DatabaseUrl) -> Result<DbConnection, StoreError> {
    super::connection::connect(url, std::time::Duration::from_secs(5))
        .map_err(|error| StoreError::Unavailable(error.to_string()))
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes `serve`'s shared lock on the database at `url`, held until the returned value is dropped.
pub fn hold(url: &DatabaseUrl) -> Result<Presence, StoreError> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let file = open_lock_file(path)?;
            file.lock_shared().map_err(|error| {
                StoreError::Unavailable(format!(
                    "cannot lock {}: {error}",
                    lock_file(path).display()
                ))
            })?;
            Ok(Presence::File(file))
        }
        DatabaseUrl::Postgres(_) => {
            let mut conn = connect(url)?;
            if let DbConnection::Postgres(c) = &mut conn {
                diesel::sql_query(format!("SELECT pg_advisory_lock_shared({SERVE_LOCK})"))
                    .execute(c)?;
            }
            Ok(Presence::Postgres(conn))
        }
    }
}

/// Whether a daemon (`serve`) holds the database at `url`; asked by taking the lock exclusively
/// for a moment.
pub fn is_held(url: &DatabaseUrl) -> Result<bool, StoreError> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let file = open_lock_file(path)?;
            match file.try_lock() {
                Ok(()) => Ok(false),
                Err(TryLockError::WouldBlock) => Ok(true),
                Err(TryLockError::Error(error)) => Err(StoreError::Unavailable(format!(
                    "cannot lock {}: {error}",
                    lock_file(path).display()
                ))),
            }
        }
        DatabaseUrl::Postgres(_) => {
            let DbConnection::Postgres(mut c) = connect(url)? else {
                unreachable!("a postgres URL opens a PostgreSQL connection")
            };
            let free = diesel::sql_query(format!(
                "SELECT pg_try_advisory_lock({SERVE_LOCK}) AS locked"
            ))
            .get_result::<Locked>(&mut c)?
            .locked;
            // The session ends here, and the lock with it.
            Ok(!free)
        }
    }
}
