//! kill -9 during serial transactions, then Synapse's retry of the unanswered one.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{SEED, Txn, config, drained, push_raw, stored_counts};
use crate::support::daemon::Daemon;
use crate::support::fuzz::Rng;
use crate::support::matrix_client::http_client;
use crate::support::{Backend, inbox_rows};

crate::on_both_backends!(kill_9_during_serial_transactions_loses_and_doubles_nothing);

/// Kill -9 while Synapse pushes one transaction after another; after each restart Synapse
/// re-sends the unanswered transaction (same txnId, same events). Every event is then stored
/// exactly once and processed.
async fn kill_9_during_serial_transactions_loses_and_doubles_nothing(backend: Backend) {
    const KILLS: usize = 6;
    const EVENTS: usize = 20;
    let mut daemon = Daemon::start(config("kill9", backend)).await;
    let url = daemon.config.database_url.clone();
    let port = daemon.config.appservice_port;
    let token = daemon.config.tokens.hs_token.clone();
    let client = http_client();
    let mut rng = Rng::new(SEED);
    let mut txns: Vec<Txn> = Vec::new();
    let (mut in_flight, mut stored_before_kill, mut acknowledged_events) = (0, 0, 0);
    let started = Instant::now();
    for kill in 0..KILLS {
        let pid = daemon.pid().unwrap();
        let delay = Duration::from_millis(40 + rng.below(260) as u64);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap();
        });
        let (unanswered, was_sent) = loop {
            let txn = Txn::new(&format!("k{}", txns.len()), EVENTS);
            txns.push(txn.clone());
            match push_raw(&client, port, &token, &txn).await {
                Ok((StatusCode::OK, _)) => acknowledged_events += EVENTS,
                Ok((status, text)) => panic!("txn {}: {status} {text}", txn.id),
                Err(never_connected) => break (txn, !never_connected),
            }
        };
        killer.join().unwrap();
        daemon.kill();
        daemon.restart().await;
        // Synapse's retry: the same txnId with the same events.
        daemon
            .push_ok(&unanswered.id, unanswered.body.clone())
            .await;
        acknowledged_events += EVENTS;
        let duplicate = daemon
            .metric("openmeet_as_transactions_duplicate_total", "")
            .await
            == 1.0;
        in_flight += usize::from(was_sent);
        stored_before_kill += usize::from(duplicate);
        eprintln!(
            "kill {} after {delay:?}: txn {} {}; its retry was {}",
            kill + 1,
            unanswered.id,
            if was_sent {
                "in flight"
            } else {
                "not yet sent"
            },
            if duplicate {
                "a duplicate (stored before the kill)"
            } else {
                "stored now"
            },
        );
    }
    let drain = drained(&daemon, Duration::from_secs(60)).await;
    let counts = stored_counts(&url);
    let by_txn = tokio::task::block_in_place(|| inbox_rows::transactions_by_id(&url));
    let expected: usize = txns.iter().map(|t| t.event_ids.len()).sum();
    for txn in &txns {
        assert_eq!(by_txn.get(&txn.id), Some(&1), "transaction {}", txn.id);
        for id in &txn.event_ids {
            assert_eq!(counts.get(id), Some(&1), "event {id} of txn {}", txn.id);
        }
    }
    assert_eq!(counts.len(), expected, "events nobody sent were stored");
    eprintln!(
        "kill -9 ({backend:?}): {KILLS} kills in {:.1} s, {} transactions, {acknowledged_events} \
         events acknowledged, {} stored (each once) and processed (drained in {:.2} s); \
         {in_flight} kills hit a request in flight, {stored_before_kill} of those had been \
         stored before the kill",
        started.elapsed().as_secs_f64(),
        txns.len(),
        counts.len(),
        drain.as_secs_f64(),
    );
    assert!(
        in_flight >= 1,
        "no kill hit a transaction in flight: the test proved little"
    );
    daemon.stop();
}
