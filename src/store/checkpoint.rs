//! SQLite only: moving the write-ahead log into the database file, and starting it again.
//!
//! Automatic checkpoints are off (they would run inside whichever request commits, and fsync
//! there); [`run`] checkpoints every [`INTERVAL`] instead, in a task of its own. The inbox
//! processor used to checkpoint between its batches, and waited for it: on one busy core the
//! checkpoint's thread got next to no CPU, and the processor stood still for 13 s while
//! acknowledgements went on.
//!
//! A checkpoint copies every page written since the last one, about as much work as the writes
//! themselves, and would take a core from the acknowledgements Synapse waits for (on two cores it
//! doubled the slowest ones). So it runs on a thread of its own at the lowest CPU priority (nice
//! 19), which ends with it: a thread of the blocking pool could not be given its priority back
//! without privileges. Not when the log has outgrown 64 MiB, though: then the checkpoint is
//! falling behind the writes, and takes its share of the CPU at the normal priority until it has
//! caught up.
//!
//! That alone never started the log again under steady traffic. The next writer starts the log
//! from its beginning only when the checkpoint left no frame behind, and with transactions
//! arriving back to back one always committed while it ran: the log grew by every page ever
//! written (5.4 GB after one benchmark), and each write into new file space cost a zeroed block in
//! the kernel (18 % of the daemon's CPU). So a last pass follows in a background writer turn, with
//! no write beside it: it copies only what was written since the pass before, and no write can
//! come between it and the next writer, which then starts the log again. What the writer's turn
//! copies is kept small by repeating the passes off the turn (up to [`PASSES`]) until one finds
//! few new frames: a single pass left a second's writes for the turn, and acknowledgements waited
//! 200 ms for it once a second (p99 213 ms at 16 in flight on one core). The log file itself is
//! cut back to 64 MiB (`journal_size_limit`, set on every connection) when it is started again
//! after a burst.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use tokio::sync::watch;

use super::{Backend, DbConnection, Store, StoreError};
use crate::config::DatabaseUrl;
use crate::on_backend;

/// How often the log is checkpointed.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// A log larger than this is falling behind (and is what `journal_size_limit` cuts back to).
const BEHIND: u64 = 64 * 1024 * 1024;

/// Checkpoints every [`INTERVAL`] until `shutdown` turns true. Nothing on PostgreSQL.
pub async fn run(store: Store, mut shutdown: watch::Receiver<bool>) {
    if store.backend() != Backend::Sqlite {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if let Err(error) = store.checkpoint().await {
            tracing::warn!(%error, "could not checkpoint the SQLite write-ahead log");
        }
    }
}

const PASSIVE: &str = "PRAGMA wal_checkpoint(PASSIVE)";
/// Passes off the writer's turn at most.
const PASSES: usize = 8;
/// New frames since the pass before (4 KiB each) few enough to leave to the writer's turn.
const CLOSE_ENOUGH: i64 = 512;

/// One passive checkpoint; returns the frames the log held when it started.
fn passive(conn: &mut diesel::SqliteConnection) -> Result<i64, StoreError> {
    #[derive(diesel::QueryableByName)]
    struct Checkpointed {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        log: i32,
    }
    let row: Checkpointed = diesel::RunQueryDsl::get_result(diesel::sql_query(PASSIVE), conn)?;
    Ok(i64::from(row.log))
}

impl Store {
    /// Checkpoints the log (see the module's comment). Nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend() != Backend::Sqlite {
            return Ok(());
        }
        let store = self.clone();
        let behind = self.wal_bytes().is_some_and(|bytes| bytes > BEHIND);
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // Lowering one's own priority needs no privilege; if it fails, it runs as is.
                if !behind {
                    let _ =
                        rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
                }
                let checkpoint = store.connection().and_then(|mut conn| {
                    let DbConnection::Sqlite(c) = &mut *conn else {
                        return Ok(());
                    };
                    // Again while the writes made during a pass were many: each pass copies what
                    // came during the one before, so what is left for the writer's turn is small.
                    let mut log = passive(c)?;
                    for _ in 1..PASSES {
                        let before = log;
                        log = passive(c)?;
                        if log.saturating_sub(before) <= CLOSE_ENOUGH {
                            break;
                        }
                    }
                    Ok(())
                });
                let _ = done.send(checkpoint);
            })
            .map_err(|error| StoreError::Unavailable(format!("cannot start a thread: {error}")))?;
        result.await.map_err(|_| StoreError::Cancelled)??;
        // What was written meanwhile, with no writer beside it.
        self.write_in_background(|conn| {
            on_backend!(conn, c => c.batch_execute(PASSIVE))?;
            Ok(())
        })
        .await
    }

    /// The size of the SQLite log file, when there is one.
    fn wal_bytes(&self) -> Option<u64> {
        let DatabaseUrl::Sqlite(path) = &self.url else {
            return None;
        };
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).ok().map(|meta| meta.len())
    }
}
