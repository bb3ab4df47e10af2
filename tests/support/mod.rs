//! Shared by every integration and end-to-end test binary (`mod support;`).
#![allow(dead_code)]

pub mod daemon;
pub mod events;
pub mod fake_homeserver;
pub mod fuzz;
pub mod hold_proxy;
pub mod inbox_rows;
pub mod matrix_client;
pub mod path_proxy;
pub mod postgres;
pub mod proxy;
pub mod python;
pub mod raw_http;
pub mod relay;
pub mod round_robin;
pub mod second_homeserver;
pub mod synapse;
pub mod test_store;
pub mod tmpfs;
pub mod webhook_receiver;

/// The two databases the daemon runs on; tests that must hold on both run once per backend
/// ([`on_both_backends!`]).
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A fresh database URL for `name`: `None` is a SQLite file in the daemon's own directory.
    pub fn database_url(self, name: &str) -> Option<String> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some(postgres::fresh_database(name)),
        }
    }
}

/// Runs each named async test body (taking a [`Backend`]) once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await;
            }
        }
    )*};
}

use std::future::Future;
use std::time::{Duration, Instant};

/// The daemon's SQLite file opened beside it while it runs. The daemon writes at any moment, so
/// the connection waits up to 10 s for its lock; without that a test's own read or write fails
/// with "database is locked" whenever it lands inside one of the daemon's transactions.
pub fn sqlite_beside(path: &str) -> diesel::SqliteConnection {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut conn = diesel::SqliteConnection::establish(path)
        .unwrap_or_else(|e| panic!("open the SQLite database {path}: {e}"));
    conn.batch_execute("PRAGMA busy_timeout = 10000")
        .expect("set busy_timeout");
    conn
}

/// Polls `check` until it yields `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
