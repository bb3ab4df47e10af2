#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The Synapse-facing API of the real daemon over HTTP, each test on SQLite and on PostgreSQL.
//! (Against a real Synapse: `tests/e2e.rs`.)

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::daemon::{Daemon, DaemonConfig};
use support::events::{member, message, transaction};
use support::{Backend, eventually, postgres};

/// A daemon on a fresh database of `backend`.
async fn daemon(name: &str, backend: Backend) -> Daemon {
    Daemon::start(config(name, backend)).await
}

fn config(name: &str, backend: Backend) -> DaemonConfig {
    DaemonConfig::new(name, backend.database_url(name))
}

on_both_backends!(
    duplicate_transaction_is_stored_and_processed_once_even_after_restart,
    retried_events_under_a_new_txn_id_are_processed_once,
    lower_txn_id_after_a_reset_is_still_processed,
    unreadable_bodies_and_events_are_acknowledged_and_quarantined,
    oversized_body_is_refused_and_the_daemon_keeps_serving,
    database_outage_answers_503_and_the_transaction_is_accepted_once_afterwards,
    wrong_or_missing_token_is_refused_and_never_logged,
    unknown_paths_and_methods_are_unrecognized,
    user_and_alias_queries_outside_our_namespace_are_not_found,
);

const ROOM: &str = "!room:test.openmeet.invalid";
const ALICE: &str = "@alice:test.openmeet.invalid";

/// Asserts an error answer's status and `errcode`.
fn assert_error((status, answer): (StatusCode, Value), expected: StatusCode, errcode: &str) {
    assert_eq!(
        (status, answer["errcode"].as_str()),
        (expected, Some(errcode)),
        "{answer}"
    );
}

/// Event ids in the inbox, with how often each appears.
fn stored_ids(daemon: &Daemon) -> Vec<String> {
    let mut ids: Vec<String> = daemon
        .inbox_events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Waits until every stored event is processed and returns how many the processor handled.
async fn wait_processed(daemon: &Daemon, expected: f64) {
    eventually("the inbox processor", Duration::from_secs(10), || async {
        let processed = daemon
            .metric("openmeet_as_events_processed_total", "")
            .await;
        let all_done = daemon
            .inbox_events()
            .iter()
            .all(|e| !e["processed_at"].is_null());
        (all_done && processed >= expected).then_some(())
    })
    .await;
    assert_eq!(
        daemon
            .metric("openmeet_as_events_processed_total", "")
            .await,
        expected,
        "processed count"
    );
}

async fn duplicate_transaction_is_stored_and_processed_once_even_after_restart(backend: Backend) {
    let mut daemon = daemon("duplicate", backend).await;
    let body = transaction(&[
        message("$m1", ROOM, ALICE, "hello"),
        member("$j1", ROOM, ALICE, "@bob:test.openmeet.invalid", "join"),
        message("$m2", ROOM, ALICE, "again"),
    ]);
    for _ in 0..2 {
        let (status, answer) = daemon.push("7", body.clone()).await;
        assert_eq!((status, answer), (StatusCode::OK, json!({})));
    }
    assert_eq!(
        daemon
            .metric("openmeet_as_transactions_duplicate_total", "")
            .await,
        1.0
    );
    assert_eq!(
        daemon.metric("openmeet_as_events_received_total", "").await,
        3.0
    );
    wait_processed(&daemon, 3.0).await;
    let processed_at: Vec<Value> = daemon
        .inbox_events()
        .iter()
        .map(|e| e["processed_at"].clone())
        .collect();

    daemon.stop();
    daemon.restart().await;
    let (status, _) = daemon.push("7", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        daemon
            .metric("openmeet_as_transactions_duplicate_total", "")
            .await,
        1.0
    );
    assert_eq!(
        daemon.metric("openmeet_as_events_received_total", "").await,
        0.0
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        daemon
            .metric("openmeet_as_events_processed_total", "")
            .await,
        0.0
    );
    assert_eq!(stored_ids(&daemon), ["$j1", "$m1", "$m2"]);
    let after: Vec<Value> = daemon
        .inbox_events()
        .iter()
        .map(|e| e["processed_at"].clone())
        .collect();
    assert_eq!(
        processed_at, after,
        "events were processed again after the restart"
    );
}

async fn retried_events_under_a_new_txn_id_are_processed_once(backend: Backend) {
    let daemon = daemon("retried", backend).await;
    let (a, b, c) = (
        message("$a", ROOM, ALICE, "a"),
        message("$b", ROOM, ALICE, "b"),
        message("$c", ROOM, ALICE, "c"),
    );
    daemon
        .push_ok("1", transaction(&[a.clone(), b.clone()]))
        .await;
    daemon.push_ok("2", transaction(&[b, a, c])).await;
    assert_eq!(
        daemon
            .metric("openmeet_as_transactions_duplicate_total", "")
            .await,
        0.0
    );
    assert_eq!(
        daemon.metric("openmeet_as_events_received_total", "").await,
        3.0
    );
    wait_processed(&daemon, 3.0).await;
    assert_eq!(stored_ids(&daemon), ["$a", "$b", "$c"]);

    // After a restart the dedupe still knows every stored event (on SQLite it is a set in memory,
    // loaded from the table), and an event twice in one transaction is stored once.
    let mut daemon = daemon;
    daemon.stop();
    daemon.restart().await;
    let d = message("$d", ROOM, ALICE, "d");
    let c = message("$c", ROOM, ALICE, "c");
    daemon.push_ok("3", transaction(&[c, d.clone(), d])).await;
    assert_eq!(
        daemon.metric("openmeet_as_events_received_total", "").await,
        1.0,
        "only $d is new after the restart"
    );
    assert_eq!(stored_ids(&daemon), ["$a", "$b", "$c", "$d"]);
}

async fn lower_txn_id_after_a_reset_is_still_processed(backend: Backend) {
    let daemon = daemon("reset", backend).await;
    daemon
        .push_ok(
            "500",
            transaction(&[message("$old", ROOM, ALICE, "before")]),
        )
        .await;
    // Synapse's database was reset: its counter starts again, and even reuses a txnId we know.
    daemon
        .push_ok("1", transaction(&[message("$new1", ROOM, ALICE, "after")]))
        .await;
    // The counter goes on from 1: one reset, not one per transaction below the old highest.
    for txn in ["2", "3"] {
        daemon.push_ok(txn, transaction(&[])).await;
    }
    daemon
        .push_ok(
            "500",
            transaction(&[message("$new2", ROOM, ALICE, "later")]),
        )
        .await;
    assert_eq!(
        daemon
            .metric("openmeet_as_transaction_id_resets_total", "")
            .await,
        1.0
    );
    assert_eq!(
        daemon
            .metric("openmeet_as_transactions_duplicate_total", "")
            .await,
        0.0
    );
    wait_processed(&daemon, 3.0).await;
    assert_eq!(stored_ids(&daemon), ["$new1", "$new2", "$old"]);
    assert!(
        daemon.logs().contains("transaction counter restarted"),
        "the reset is not logged"
    );
}

async fn unreadable_bodies_and_events_are_acknowledged_and_quarantined(backend: Backend) {
    let daemon = daemon("quarantine", backend).await;
    for (txn, body) in [
        ("1", r#"{"events": "nope"}"#.to_owned()),
        ("2", "[]".to_owned()),
    ] {
        let (status, answer) = daemon.push(txn, body).await;
        assert_eq!((status, answer), (StatusCode::OK, json!({})), "txn {txn}");
    }
    let mut no_room = message("$noroom", ROOM, ALICE, "x");
    no_room.as_object_mut().unwrap().remove("room_id");
    let script_key = member("$script", ROOM, ALICE, "javascript:alert(1)", "join");
    let good = message("$good", ROOM, ALICE, "fine");
    // A valid envelope around content ruma cannot read, in an event the processor acts on:
    // acknowledged, stored, then quarantined by the processor. A chat message is never parsed
    // beyond its envelope, so one without a msgtype is just a message.
    let bad_content = json!({
        "type": "m.room.power_levels",
        "event_id": "$badcontent",
        "room_id": ROOM,
        "sender": ALICE,
        "state_key": "",
        "origin_server_ts": 1,
        "content": {"users": 5},
    });
    let mut no_msgtype = message("$nomsgtype", ROOM, ALICE, "x");
    no_msgtype["content"]
        .as_object_mut()
        .unwrap()
        .remove("msgtype");
    let (status, answer) = daemon
        .push(
            "3",
            transaction(&[no_room, good, script_key, bad_content, no_msgtype]),
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})));
    assert_eq!(
        daemon
            .metric("openmeet_as_transactions_quarantined_total", "")
            .await,
        2.0
    );
    wait_processed(&daemon, 3.0).await;
    assert_eq!(
        daemon
            .metric("openmeet_as_events_quarantined_total", "")
            .await,
        3.0
    );
    assert_eq!(stored_ids(&daemon), ["$badcontent", "$good", "$nomsgtype"]);
    // By event id: the one that waited for the processor was stored before the settled ones.
    let mut outcomes: Vec<(String, Value)> = daemon
        .inbox_events()
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_owned(),
                e["outcome"].clone(),
            )
        })
        .collect();
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        outcomes,
        [
            ("$badcontent".to_owned(), json!("quarantined")),
            ("$good".to_owned(), json!("message")),
            ("$nomsgtype".to_owned(), json!("message")),
        ]
    );

    let quarantined = daemon.quarantine();
    let ids: Vec<Option<&str>> = quarantined
        .iter()
        .rev()
        .map(|q| q["event_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            None,
            None,
            Some("$noroom"),
            Some("$script"),
            Some("$badcontent")
        ]
    );
    assert_eq!(quarantined.last().unwrap()["body"], r#"{"events": "nope"}"#);
    assert!(
        quarantined
            .iter()
            .all(|q| !q["reason"].as_str().unwrap().is_empty())
    );
    // A retry of the quarantining transaction is a duplicate, not a second quarantine entry.
    daemon.push_ok("1", r#"{"events": "nope"}"#).await;
    assert_eq!(daemon.quarantine().len(), 5);
}

async fn oversized_body_is_refused_and_the_daemon_keeps_serving(backend: Backend) {
    let daemon = daemon("oversized", backend).await;
    let padding = "x".repeat(33 * 1024 * 1024);
    let body = format!(r#"{{"events": [], "padding": "{padding}"}}"#);
    let (status, answer) = daemon.push("1", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["errcode"], "M_TOO_LARGE");
    // Large but within Synapse's limit: 16 events of 64 KiB each.
    let big = "y".repeat(64 * 1024);
    let events: Vec<Value> = (0..16)
        .map(|i| message(&format!("$big{i:02}"), ROOM, ALICE, &big))
        .collect();
    daemon.push_ok("2", transaction(&events)).await;
    daemon
        .push_ok(
            "3",
            transaction(&[message("$after", ROOM, ALICE, "still here")]),
        )
        .await;
    let stored = stored_ids(&daemon);
    assert_eq!(stored.len(), 17);
    assert!(stored.contains(&"$after".to_owned()));
}

async fn database_outage_answers_503_and_the_transaction_is_accepted_once_afterwards(
    backend: Backend,
) {
    let body = transaction(&[message("$during", ROOM, ALICE, "during the outage")]);
    match backend {
        Backend::Postgres => {
            let real = postgres::fresh_database("outage");
            let mut proxy = support::proxy::Proxy::start(support::proxy::address_of(&real)).await;
            let daemon = Daemon::start(DaemonConfig::new(
                "outage",
                Some(support::proxy::through_proxy(&real, proxy.port)),
            ))
            .await;
            daemon
                .push_ok("1", transaction(&[message("$before", ROOM, ALICE, "x")]))
                .await;
            proxy.cut();
            let (status, answer) = daemon.push("2", body.clone()).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
            assert_eq!(answer["errcode"], "M_UNKNOWN");
            proxy.restore().await;
            outage_is_over(&daemon, &body).await;
        }
        Backend::Sqlite => {
            let daemon = daemon("outage", backend).await;
            daemon
                .push_ok("1", transaction(&[message("$before", ROOM, ALICE, "x")]))
                .await;
            // Another process holds SQLite's write lock past the daemon's busy timeout.
            let path = daemon
                .config
                .database_url
                .trim_start_matches("sqlite://")
                .to_owned();
            let (locked_tx, locked_rx) = std::sync::mpsc::channel();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let holder = std::thread::spawn(move || {
                use diesel::connection::SimpleConnection;
                // Waits for the daemon's inbox processor if it holds the lock right now.
                let mut conn = support::sqlite_beside(&path);
                conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
                locked_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                conn.batch_execute("ROLLBACK").unwrap();
            });
            locked_rx.recv().unwrap();
            let (status, answer) = daemon.push("2", body.clone()).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
            release_tx.send(()).unwrap();
            holder.join().unwrap();
            outage_is_over(&daemon, &body).await;
        }
    }
}

/// After the database returns, Synapse's retry of the refused transaction is stored once.
async fn outage_is_over(daemon: &Daemon, body: &str) {
    let (status, _) = eventually(
        "the database to return",
        Duration::from_secs(15),
        || async {
            let answer = daemon.push("2", body.to_owned()).await;
            (answer.0 == StatusCode::OK).then_some(answer)
        },
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    daemon.push_ok("2", body.to_owned()).await;
    assert_eq!(
        daemon
            .metric("openmeet_as_transactions_duplicate_total", "")
            .await,
        1.0
    );
    wait_processed(daemon, 2.0).await;
    assert_eq!(stored_ids(daemon), ["$before", "$during"]);
}

async fn wrong_or_missing_token_is_refused_and_never_logged(backend: Backend) {
    let daemon = daemon("auth", backend).await;
    let path = "/_matrix/app/v1/transactions/1";
    let body = Some(transaction(&[message("$x", ROOM, ALICE, "x")]));
    assert_error(
        daemon
            .appservice(Method::PUT, path, None, body.clone())
            .await,
        StatusCode::UNAUTHORIZED,
        "M_UNAUTHORIZED",
    );

    let wrong = "wrong-token-that-must-not-be-logged-0123456789";
    assert_error(
        daemon
            .appservice(Method::PUT, path, Some(wrong), body.clone())
            .await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );

    // The token in the query string alone is not enough.
    let hs_token = daemon.config.tokens.hs_token.clone();
    let query = format!("{path}?access_token={hs_token}");
    assert_error(
        daemon.appservice(Method::PUT, &query, None, body).await,
        StatusCode::UNAUTHORIZED,
        "M_UNAUTHORIZED",
    );
    assert!(
        daemon.inbox_events().is_empty(),
        "a refused transaction was stored"
    );

    let logs = daemon.logs();
    assert!(
        logs.contains("wrong hs_token"),
        "the refusal is not logged at all:\n{logs}"
    );
    for secret in [
        wrong,
        &hs_token,
        &daemon.config.tokens.as_token,
        &daemon.config.tenant_token("tenantA"),
    ] {
        assert!(!logs.contains(secret), "a token appears in the logs");
    }
}

async fn unknown_paths_and_methods_are_unrecognized(backend: Backend) {
    let daemon = daemon("paths", backend).await;
    let token = daemon.config.tokens.hs_token.clone();
    assert_error(
        daemon
            .appservice(
                Method::GET,
                "/_matrix/app/v1/nothing-here",
                Some(&token),
                None,
            )
            .await,
        StatusCode::NOT_FOUND,
        "M_UNRECOGNIZED",
    );
    assert_error(
        daemon
            .appservice(
                Method::GET,
                "/_matrix/app/v1/transactions/1",
                Some(&token),
                None,
            )
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        "M_UNRECOGNIZED",
    );
    let (status, answer) = daemon
        .appservice(
            Method::POST,
            "/_matrix/app/v1/ping",
            Some(&token),
            Some("{}".into()),
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({})));
    let (status, answer) = daemon
        .appservice(
            Method::GET,
            "/_matrix/app/v1/thirdparty/location",
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!([])));
    assert_error(
        daemon
            .appservice(
                Method::GET,
                "/_matrix/app/v1/thirdparty/protocol/irc",
                Some(&token),
                None,
            )
            .await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
}

async fn user_and_alias_queries_outside_our_namespace_are_not_found(backend: Backend) {
    let daemon = daemon("queries", backend).await;
    let token = daemon.config.tokens.hs_token.clone();
    for user in [
        "@alice:test.openmeet.invalid",
        "@openmeet-bot-tenanta:evil.org",
        "@openmeet-bot-unknown:test.openmeet.invalid",
    ] {
        let path = format!(
            "/_matrix/app/v1/users/{}",
            support::matrix_client::encode(user)
        );
        assert_error(
            daemon
                .appservice(Method::GET, &path, Some(&token), None)
                .await,
            StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
        );
    }
    let alias = support::matrix_client::encode("#event-party-tenantA:test.openmeet.invalid");
    assert_error(
        daemon
            .appservice(
                Method::GET,
                &format!("/_matrix/app/v1/rooms/{alias}"),
                Some(&token),
                None,
            )
            .await,
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
    );
    assert_eq!(
        daemon
            .metric("openmeet_as_user_queries_total", "not_ours")
            .await,
        3.0
    );
}
