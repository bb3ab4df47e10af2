#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Proves the end-to-end test harness works: a real Synapse from the cached
//! venv, a Matrix user talking to it, and a fresh PostgreSQL database (embedded,
//! or on `$TEST_POSTGRES_URL`).

#[path = "support/matrix_client.rs"]
mod matrix_client;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/python.rs"]
mod python;
#[path = "support/synapse.rs"]
mod synapse;

use std::time::Instant;

use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, sql_types::Integer};
use serde_json::json;

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = Integer)]
    one: i32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_starts_synapse_and_postgres() {
    // PostgreSQL starts in the background while Synapse starts here.
    let pg = std::thread::spawn(|| {
        let started = Instant::now();
        let url = postgres::fresh_database("harness_selftest");
        let mut conn = PgConnection::establish(&url).expect("connecting to the fresh database");
        let rows: Vec<One> = diesel::sql_query("SELECT 1 AS one")
            .load(&mut conn)
            .expect("SELECT 1");
        assert_eq!(rows.iter().map(|r| r.one).collect::<Vec<_>>(), [1]);
        drop(conn);
        postgres::drop_database(&url);
        eprintln!(
            "postgres: fresh database ready and checked in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    });

    let started = Instant::now();
    let hs = synapse::Synapse::start("harness.test", &[]);
    eprintln!(
        "synapse: cold start took {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let alice = matrix_client::register_user(&hs.url, "alice").await;
    assert_eq!(alice.user_id, hs.user_id("alice"));
    let room = alice
        .create_room(
            &hs.url,
            json!({ "preset": "private_chat", "name": "Selftest" }),
        )
        .await;
    let event_id = alice
        .send_message(&hs.url, &room, "hello from the harness")
        .await;

    let messages = alice.messages(&hs.url, &room, 10).await;
    let sent = messages
        .iter()
        .find(|ev| ev["event_id"] == event_id.as_str())
        .unwrap_or_else(|| {
            panic!(
                "message {event_id} not in /messages: {messages:?}\n{}",
                hs.log_tail(30)
            )
        });
    assert_eq!(sent["content"]["body"], "hello from the harness");

    let name = alice.state_event(&hs.url, &room, "m.room.name", "").await;
    assert_eq!(name.expect("m.room.name is set")["name"], "Selftest");
    assert_eq!(
        alice.state_event(&hs.url, &room, "m.room.topic", "").await,
        None
    );
    assert!(
        alice
            .room_state(&hs.url, &room)
            .await
            .iter()
            .any(|ev| ev["type"] == "m.room.create")
    );
    assert_eq!(
        alice.members(&hs.url, &room).await,
        [(alice.user_id.clone(), "join".to_owned())]
    );
    let (status, _) = alice.get_profile(&hs.url, &alice.user_id).await;
    assert!(status.is_success(), "GET profile answered {status}");

    pg.join()
        .expect("the PostgreSQL half of the self-test failed (see above)");
    drop(hs);
}
