#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! A transaction's acknowledgement does not wait for the inbox processor (issue 24): with a large
//! backlog pending, the processor is held in the middle of a batch — a hook blocks it while it
//! handles an event, on a thread of its own — and Synapse's next transaction is stored and answered
//! meanwhile; released, the processor finishes its batch. Both backends.
//!
//! What can be held this way is the processor's work on a batch: on PostgreSQL its whole
//! transaction (under the inbox's advisory lock), on SQLite its reading and handling, which take
//! no write turn (`Store::process_inbox`). SQLite's marks are written in a turn of their own, which
//! an acknowledgement does wait for, by SQLite's design; `store/writer.rs` times those turns.

mod support;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use openmeet_appservice::app::App;
use openmeet_appservice::clock::SystemClock;
use openmeet_appservice::config::Config;
use openmeet_appservice::config::sample::{SampleTokens, render};
use openmeet_appservice::harness;
use openmeet_appservice::store::inbox::{IncomingTransaction, NewEvent};
use serde_json::Value;
use support::{Backend, events, inbox_rows};

on_both_backends!(an_acknowledgement_does_not_wait_for_a_held_processor);

/// Events pending before the processor starts.
const BACKLOG: usize = 20_000;
/// The event of the first batch the hook holds the processor at.
const HELD_AT: usize = 250;
const ROOM: &str = "!backlog:openmeet.test";

fn app(url: &str, tokens: &SampleTokens) -> Arc<App> {
    let vars = [("OPENMEET_AS__DATABASE__URL".to_owned(), url.to_owned())];
    let yaml = render(Some(tokens));
    let config = Config::from_yaml(std::path::Path::new("backlog.yaml"), &yaml, vars).unwrap();
    let app = App::new(config, Arc::new(SystemClock)).unwrap();
    app.store.migrate().unwrap();
    app
}

/// A member event in a room nobody declared: the processor handles it (it is not settled at the
/// acknowledgement).
fn member(n: usize) -> Value {
    let user = format!("@user{n}:openmeet.test");
    events::member(
        &format!("$backlog{n}:openmeet.test"),
        ROOM,
        &user,
        &user,
        "join",
    )
}

async fn an_acknowledgement_does_not_wait_for_a_held_processor(backend: Backend) {
    let dir = support::python::scratch_dir("inbox-backlog");
    let url = backend
        .database_url("inbox_backlog")
        .unwrap_or_else(|| format!("sqlite://{}/backlog.db", dir.display()));
    let tokens = SampleTokens::random();
    let app = app(&url, &tokens);

    // The backlog, stored as the acknowledgements would have stored it.
    for (txn, chunk) in (0..BACKLOG).collect::<Vec<_>>().chunks(100).enumerate() {
        let events = chunk
            .iter()
            .map(|&n| {
                let event = member(n);
                NewEvent {
                    event_id: event["event_id"].as_str().unwrap().to_owned(),
                    room_id: ROOM.to_owned(),
                    event_type: "m.room.member".to_owned(),
                    sender: event["sender"].as_str().unwrap().to_owned(),
                    state_key: event["state_key"].as_str().map(str::to_owned),
                    event_json: event.to_string(),
                    settled: None,
                }
            })
            .collect();
        let txn = IncomingTransaction {
            homeserver: "default".into(),
            txn_id: format!("backlog-{txn}"),
            fingerprint: format!("backlog-{txn}"),
            received_at: 1,
            unreadable: false,
            events,
            quarantined: Vec::new(),
        };
        app.store.record_transaction(txn).await.unwrap();
    }
    let pending = |url: &str| {
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || inbox_rows::pending(&url))
    };
    assert_eq!(pending(&url).await.unwrap(), BACKLOG as i64);

    // Synapse's side: the appservice listener on a port of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(axum::serve(listener, harness::appservice_router(app.clone())).into_future());

    // The processor, held at one event of its first batch until the test lets it go.
    let (held_tx, held) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let mut handled = 0;
    let processor = tokio::spawn({
        let app = app.clone();
        async move {
            harness::process_batch_with(&app, move |_| {
                handled += 1;
                if handled == HELD_AT {
                    held_tx.send(()).unwrap();
                    released.recv().unwrap();
                }
            })
            .await
        }
    });
    tokio::task::spawn_blocking(move || held.recv().unwrap())
        .await
        .unwrap();

    // While it is held: a transaction is acknowledged, and its events are stored.
    let body = events::transaction(&[member(BACKLOG), member(BACKLOG + 1)]);
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        support::matrix_client::http_client()
            .put(format!(
                "http://127.0.0.1:{port}/_matrix/app/v1/transactions/after-backlog"
            ))
            .bearer_auth(&tokens.hs_token)
            .body(body)
            .send(),
    )
    .await
    .expect("the acknowledgement waited for the held processor")
    .unwrap();
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    assert!(!processor.is_finished(), "the processor is still held");
    assert_eq!(
        pending(&url).await.unwrap(),
        BACKLOG as i64 + 2,
        "the new events are stored, and nothing of the held batch is marked yet"
    );

    // Let go, it finishes its batch.
    release.send(()).unwrap();
    let worked = processor.await.unwrap().unwrap();
    assert!(worked >= HELD_AT, "it handled {worked} events");
    assert_eq!(pending(&url).await.unwrap(), (BACKLOG + 2 - worked) as i64);
}
