#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! A room's changes fold into the declaration job that waits for it (`src/store/job_folding.rs`),
//! on real SQLite and real PostgreSQL.

mod support;

use std::collections::HashMap;

use openmeet_appservice::jobs::DECLARATION_KINDS;
use openmeet_appservice::store::jobs::{self, ClaimLimits, Job, NewJob};
use openmeet_appservice::store::{DbConnection, Store, StoreError, job_folding};
use serde_json::json;
use support::Backend;
use support::test_store::{self, TestStore};

const ENSURE: &str = "ensure_room";

on_both_backends!(
    a_change_folds_into_the_rooms_queued_ensure_room_and_never_into_one_that_runs,
    a_job_queued_for_a_change_is_not_claimed_until_the_change_commits,
);

fn store(name: &str, backend: Backend) -> TestStore {
    test_store::fresh(name, backend)
}

fn room(store: &Store, slug: &str) -> i64 {
    test_store::declare_room(store, "tenantA", slug)
}

fn enqueue(store: &Store, room_key: i64, kind: &str) -> Job {
    let job = NewJob {
        tenant_id: "tenantA".into(),
        room_key: Some(room_key),
        kind: kind.into(),
        payload: json!({}),
    };
    jobs::enqueue(&mut store.connection().unwrap(), &job, 0).unwrap()
}

fn waiting(conn: &mut DbConnection, room_key: i64) -> Option<i64> {
    job_folding::waiting_for_room(conn, room_key, DECLARATION_KINDS, ENSURE)
        .unwrap()
        .map(|job| job.id)
}

fn claim(store: &Store) -> Vec<i64> {
    let limits = ClaimLimits {
        paused: &Default::default(),
        total: 10,
        per_tenant: 10,
        running: &HashMap::new(),
    };
    jobs::claim(
        &mut store.connection().unwrap(),
        "worker",
        0,
        60_000,
        &limits,
    )
    .unwrap()
    .into_iter()
    .map(|job| job.id)
    .collect()
}

async fn a_change_folds_into_the_rooms_queued_ensure_room_and_never_into_one_that_runs(
    backend: Backend,
) {
    let store = store("fold_queued", backend);
    let (key, other) = (room(&store, "party"), room(&store, "other"));
    let conn = &mut store.connection().unwrap();
    assert_eq!(waiting(conn, key), None, "no job yet");
    let first = enqueue(&store, key, ENSURE);
    enqueue(&store, other, ENSURE);
    assert_eq!(waiting(conn, key), Some(first.id));
    // A message sent in the room carries no declaration: the change still folds.
    enqueue(&store, key, "send_message");
    assert_eq!(waiting(conn, key), Some(first.id));
    // Running, it has read the declaration already: a change needs a job of its own.
    assert!(claim(&store).contains(&first.id));
    assert_eq!(waiting(conn, key), None);
    let second = enqueue(&store, key, ENSURE);
    assert_eq!(waiting(conn, key), Some(second.id));
    // A teardown queued after it: a change must not land in the job before the teardown.
    enqueue(&store, key, "teardown_room");
    assert_eq!(waiting(conn, key), None);
}

async fn a_job_queued_for_a_change_is_not_claimed_until_the_change_commits(backend: Backend) {
    let store = store("fold_locked", backend);
    let key = room(&store, "party");
    let job = enqueue(&store, key, ENSURE);
    let folded = store
        .connection()
        .unwrap()
        .write(|conn| -> Result<_, StoreError> {
            let folded = waiting(conn, key);
            // SQLite's one writer keeps every claim out; PostgreSQL's claim skips the locked row.
            if matches!(conn, DbConnection::Postgres(_)) {
                assert_eq!(
                    claim(&store),
                    Vec::<i64>::new(),
                    "claimed before the change"
                );
            }
            Ok(folded)
        })
        .unwrap();
    assert_eq!(folded, Some(job.id));
    assert_eq!(claim(&store), vec![job.id]);
}
