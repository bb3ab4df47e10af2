//! Clients that give up while their transaction waits to be written (a burst of concurrent
//! 100-event transactions whose connections close after a few milliseconds): the inbox still
//! drains, jobs still run, SIGTERM still ends the process.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use super::{SEED, Txn, config, daemon_with_fake_homeserver, drained, stored_counts};
use crate::support::Backend;
use crate::support::fuzz::Rng;
use crate::support::raw_http::send_then_give_up;

crate::on_both_backends!(abandoned_requests_leave_no_writer_stuck);

/// Holds the database's write lock from another connection until released: the daemon's next
/// write waits on it (SQLite: `BEGIN EXCLUSIVE`; PostgreSQL: the transactions table locked).
struct WriteLockHolder {
    release: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WriteLockHolder {
    fn take(database_url: &str) -> Self {
        let url = database_url.to_owned();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            if let Some(path) = url.strip_prefix("sqlite://") {
                let mut conn = crate::support::sqlite_beside(path);
                conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
                held_tx.send(()).unwrap();
                let _ = release_rx.recv();
                conn.batch_execute("ROLLBACK").unwrap();
            } else {
                let mut conn = diesel::PgConnection::establish(&url).unwrap();
                conn.batch_execute("BEGIN; LOCK TABLE as_transactions IN ACCESS EXCLUSIVE MODE")
                    .unwrap();
                held_tx.send(()).unwrap();
                let _ = release_rx.recv();
                conn.batch_execute("ROLLBACK").unwrap();
            }
        });
        held_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the write lock is taken");
        Self { release, thread }
    }

    fn release(self) {
        let _ = self.release.send(());
        self.thread.join().unwrap();
    }
}

/// Issue #9, item 1: clients that give up while their write waits for its turn (Synapse's 60 s
/// timeout, a proxy restart, `wrk` ending) must not stop background work for good.
async fn abandoned_requests_leave_no_writer_stuck(backend: Backend) {
    let (_fake, mut daemon) = daemon_with_fake_homeserver(config("abandoned", backend)).await;
    let port = daemon.config.appservice_port;
    let token = daemon.config.tokens.hs_token.clone();
    let url = daemon.config.database_url.clone();
    let mut sent: Vec<(Txn, Option<u16>)> = Vec::new();

    // Forced: another connection holds the database's write lock, so the first request is stuck
    // writing and the others queue behind it; once all of them are in, every client gives up.
    const QUEUED: usize = 12;
    let holder = tokio::task::block_in_place(|| WriteLockHolder::take(&url));
    let mut clients = JoinSet::new();
    let mut queued = Vec::new();
    for i in 0..QUEUED {
        let txn = Txn::new(&format!("queued{i}"), 100);
        let (path, token, body) = (txn.path(), token.clone(), txn.body.clone());
        clients.spawn(async move {
            let patience = Duration::from_secs(60);
            (
                i,
                send_then_give_up(port, "PUT", &path, &token, body.as_bytes(), patience).await,
            )
        });
        queued.push(txn);
    }
    daemon
        .wait_metric(
            "openmeet_as_transactions_received_total",
            "",
            QUEUED as f64,
            Duration::from_secs(20),
        )
        .await;
    clients.abort_all();
    let mut answered = vec![None; QUEUED];
    while let Some(result) = clients.join_next().await {
        if let Ok((i, status)) = result {
            answered[i] = status;
        }
    }
    tokio::task::block_in_place(|| holder.release());
    let queued_answers = answered.iter().filter(|a| a.is_some()).count();
    sent.extend(queued.into_iter().zip(answered));

    // A burst like `wrk -c16`: each client sends 100-event transactions and closes its connection
    // after 1–8 ms, whether it was answered or not.
    const CLIENTS: usize = 16;
    const BURST: Duration = Duration::from_millis(1500);
    let deadline = Instant::now() + BURST;
    let mut burst = JoinSet::new();
    for client in 0..CLIENTS {
        let token = token.clone();
        burst.spawn(async move {
            let mut rng = Rng::new(SEED ^ client as u64);
            let mut sent = Vec::new();
            for k in 0.. {
                if Instant::now() >= deadline {
                    break;
                }
                let txn = Txn::new(&format!("burst{client}x{k}"), 100);
                let patience = Duration::from_millis(1 + rng.below(8) as u64);
                let status = send_then_give_up(
                    port,
                    "PUT",
                    &txn.path(),
                    &token,
                    txn.body.as_bytes(),
                    patience,
                )
                .await;
                sent.push((txn, status));
            }
            sent
        });
    }
    let mut burst_sent = Vec::new();
    while let Some(result) = burst.join_next().await {
        burst_sent.extend(result.unwrap());
    }
    // Nothing holds the database now: whatever is answered in time is a 200. (The queued
    // requests above may have been answered 503 before they were dropped: their writes waited
    // for the held lock longer than `database.acquire_timeout_ms`.)
    let other: Vec<u16> = burst_sent
        .iter()
        .filter_map(|(_, s)| *s)
        .filter(|s| *s != 200)
        .collect();
    let burst_count = burst_sent.len();
    sent.extend(burst_sent);
    let acknowledged = sent.iter().filter(|(_, s)| *s == Some(200)).count();

    // The daemon still acknowledges, and its background work goes on: the inbox drains.
    let last = Txn::new("after-the-burst", 100);
    daemon.push_ok(&last.id, last.body.clone()).await;
    let drain = drained(&daemon, Duration::from_secs(30)).await;

    // Each abandoned write either completed or rolled back, never half; every acknowledged one
    // is stored; nothing twice.
    let counts = stored_counts(&url);
    let mut stored_txns = 0;
    for (txn, status) in sent.iter().chain([(last.clone(), Some(200))].iter()) {
        let stored = txn
            .event_ids
            .iter()
            .filter(|id| counts.contains_key(*id))
            .count();
        assert!(
            stored == 0 || stored == txn.event_ids.len(),
            "transaction {} was stored in part: {stored} of {} events",
            txn.id,
            txn.event_ids.len()
        );
        if *status == Some(200) {
            assert_eq!(stored, txn.event_ids.len(), "acknowledged {} lost", txn.id);
        }
        stored_txns += usize::from(stored > 0);
    }
    assert!(counts.values().all(|n| *n == 1), "an event stored twice");

    // A job runs.
    let job_started = Instant::now();
    let job = daemon
        .declare(
            "tenantA",
            "event",
            "after-abandoned",
            json!({"name": "After", "visibility": "private"}),
        )
        .await;
    assert_eq!(job["status"], "succeeded");
    let job_took = job_started.elapsed();

    // And SIGTERM ends the process (`stop` fails after 5 s).
    let stopping = Instant::now();
    daemon.stop();
    eprintln!(
        "abandoned requests ({backend:?}): {QUEUED} queued behind a held write lock then dropped \
         ({queued_answers} answered first: {:?}); burst of {CLIENTS} clients for {BURST:?}: \
         {burst_count} transactions of 100 events sent; in all {acknowledged} acknowledged, {} \
         given up, {} other answers in the burst {other:?}; {stored_txns} transactions stored \
         whole ({} events), none in part; inbox drained {:.2} s after the burst; a job \
         succeeded in {:.2} s; SIGTERM exit in {:.2} s",
        sent[..QUEUED]
            .iter()
            .filter_map(|(_, s)| *s)
            .collect::<Vec<_>>(),
        sent.iter().filter(|(_, s)| s.is_none()).count(),
        other.len(),
        counts.len(),
        drain.as_secs_f64(),
        job_took.as_secs_f64(),
        stopping.elapsed().as_secs_f64(),
    );
    assert!(other.is_empty(), "answers other than 200: {other:?}");
}
