#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! SQLite's write-ahead log stays bounded under a writer that never stops (issue 24).
//!
//! A checkpoint copies the log into the database file, and the next writer starts the log again
//! from its beginning, but only when the checkpoint left no frame behind. Synapse's transactions
//! arrive back to back: when the checkpoint ran beside the writes, one of them always landed
//! during it, so the log was never started again. It grew by every page ever written (5.4 GB after
//! one benchmark), and every write into new file space cost the kernel a zeroed block (18 % of the
//! daemon's CPU in `perf`).
//!
//! Here one task stores transactions back to back while the test runs the daemon's checkpoint
//! (`Store::checkpoint`, as its checkpoint task does every second) each time another few were
//! written: after each checkpoint the log must start again, which the log's header shows (its
//! first salt goes up by one each time the log is started again, whichever connection did it). How large the
//! file grew meanwhile depends on how fast the checkpoint ran, and is only printed.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use openmeet_appservice::store::inbox::{IncomingTransaction, NewEvent};
use support::Backend;

/// Transactions written between two checkpoints.
const BETWEEN: usize = 40;
const CHECKPOINTS: usize = 12;

fn transaction(n: usize) -> IncomingTransaction {
    let events = (0..100)
        .map(|i| NewEvent {
            event_id: format!("$wal{n}-{i}:openmeet.test"),
            room_id: "!wal:openmeet.test".into(),
            event_type: "m.room.message".into(),
            sender: "@someone:openmeet.test".into(),
            state_key: None,
            event_json: format!(r#"{{"body":"{}"}}"#, "x".repeat(500)),
            settled: None,
        })
        .collect();
    IncomingTransaction {
        homeserver: "default".into(),
        txn_id: n.to_string(),
        fingerprint: n.to_string(),
        received_at: 1,
        unreadable: false,
        events,
        quarantined: Vec::new(),
    }
}

fn wal_path(url: &str) -> String {
    format!("{}-wal", url.strip_prefix("sqlite://").unwrap())
}

fn wal_bytes(url: &str) -> u64 {
    std::fs::metadata(wal_path(url)).map_or(0, |meta| meta.len())
}

/// The log header's first salt (bytes 16 to 19, big-endian): one more each time the log starts
/// again from its beginning. (The checkpoint sequence number beside it is each connection's own
/// count.)
fn wal_restarts(url: &str) -> u32 {
    let header = std::fs::read(wal_path(url)).unwrap();
    u32::from_be_bytes(header[16..20].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_again_under_a_writer_that_never_stops() {
    let store = support::test_store::fresh("sqlite_wal", Backend::Sqlite);
    // What one round of transactions writes to the log, checkpointed with nothing beside it.
    for n in 0..BETWEEN {
        store.record_transaction(transaction(n)).await.unwrap();
    }
    let one_round = wal_bytes(&store.url);
    store.checkpoint().await.unwrap();
    store
        .record_transaction(transaction(BETWEEN))
        .await
        .unwrap();
    let restarts_before = wal_restarts(&store.url);

    let written = Arc::new(AtomicUsize::new(BETWEEN + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, written, stop) = (store.store.clone(), written.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                let n = written.load(Ordering::SeqCst);
                store.record_transaction(transaction(n)).await.unwrap();
                written.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let mut largest = 0;
    for round in 1..=CHECKPOINTS {
        let until = BETWEEN * (round + 1);
        while written.load(Ordering::SeqCst) < until {
            tokio::task::yield_now().await;
        }
        store.checkpoint().await.unwrap();
        largest = largest.max(wal_bytes(&store.url));
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let total = written.load(Ordering::SeqCst);
    let restarts = wal_restarts(&store.url).wrapping_sub(restarts_before);
    eprintln!(
        "{total} transactions, {CHECKPOINTS} checkpoints, the log started again {restarts} times; \
         one round's log {one_round} bytes, the file at most {largest}"
    );
    // The last checkpoint may not have been followed by a write before the writer stopped.
    assert!(
        restarts as usize >= CHECKPOINTS - 1,
        "the log started again {restarts} times after {CHECKPOINTS} checkpoints under a writer \
         that never stopped; it grew to {largest} bytes over {total} transactions"
    );
}
