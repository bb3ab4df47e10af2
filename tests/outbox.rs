#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The outbox (`src/store/outbox.rs`, DESIGN §7.4) on real SQLite and real PostgreSQL: ids count
//! per tenant without gaps, `list_after` pages by them, a change and its event commit or roll back
//! together, a room's changes tell only real transitions — and, on PostgreSQL, a second append for
//! a tenant waits for the first transaction to end, so a reader never sees a later id before an
//! earlier one.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use diesel::RunQueryDsl;
use openmeet_appservice::on_backend;
use openmeet_appservice::rooms::{RoomKind, Visibility};
use openmeet_appservice::store::outbox::{self, EventType, OutboxEvent, PublishedEvent};
use openmeet_appservice::store::outbox_data::{EventData, JobDead, RoomLost, RoomReady};
use openmeet_appservice::store::room_changes;
use openmeet_appservice::store::rooms::{self, Declaration, RoomStatus};
use openmeet_appservice::store::{DbConnection, StoreError};
use serde_json::{Value, json};
use support::Backend;
use support::test_store::{self, TestStore};

on_both_backends!(
    ids_count_per_tenant_and_list_after_pages_by_them,
    an_event_rolls_back_with_its_change_and_leaves_no_gap,
    a_room_tells_only_its_real_transitions,
    rooms_are_found_by_room_id_in_one_lookup_as_one_by_one,
);

/// `find_live_by_room_ids` (the inbox batch's one lookup for `member.joined`/`left`) answers
/// what `find_live_by_room_id` answers for each id: the newest row with the id, if not deleted.
async fn rooms_are_found_by_room_id_in_one_lookup_as_one_by_one(backend: Backend) {
    let store = test_store::fresh("outbox_room_ids", backend);
    let conn = &mut *store.connection().unwrap();
    fn declare(conn: &mut DbConnection, slug: &str, room_id: &str) -> rooms::Room {
        let declaration = Declaration {
            tenant_id: "t".into(),
            homeserver: "default".into(),
            kind: RoomKind::Group,
            slug: slug.into(),
            name: "Chat".into(),
            topic: None,
            visibility: Visibility::Private,
        };
        let (room, _) = rooms::declare(conn, &declaration, 0).unwrap();
        assert!(
            room_changes::set_created(conn, room.id, room.generation, room_id, "12", 1).unwrap()
        );
        rooms::get(conn, room.id).unwrap().unwrap()
    }
    let live = declare(conn, "live", "!live:x");
    let gone = declare(conn, "gone", "!gone:x");
    // A deleted room whose Matrix room a newer declaration took over, and the reverse.
    let old = declare(conn, "old", "!taken:x");
    let newer = declare(conn, "newer", "!taken:x");
    let kept = declare(conn, "kept", "!dropped:x");
    let dropped = declare(conn, "dropped", "!dropped:x");
    for room in [&gone, &old, &dropped] {
        rooms::mark_deleted(conn, room, 2).unwrap();
    }
    let ids = ["!live:x", "!gone:x", "!taken:x", "!dropped:x", "!unknown:x"];
    let found = rooms::find_live_by_room_ids(conn, &ids).unwrap();
    for id in ids {
        let one = rooms::find_live_by_room_id(conn, id).unwrap().map(|r| r.id);
        assert_eq!(found.get(id).map(|r| r.id), one, "{id}");
    }
    let mut found: Vec<(&str, i64)> = found.iter().map(|(id, r)| (id.as_str(), r.id)).collect();
    found.sort_unstable();
    assert_eq!(found, [("!live:x", live.id), ("!taken:x", newer.id)]);
    assert!(kept.id < dropped.id);
    assert!(rooms::find_live_by_room_ids(conn, &[]).unwrap().is_empty());
}

/// A payload of `event_type`, for the types these tests append by hand.
fn data(event_type: EventType) -> EventData {
    match event_type {
        EventType::RoomReady => EventData::RoomReady(RoomReady {
            room_id: Some("!room:x".into()),
        }),
        EventType::RoomLost => EventData::RoomLost(RoomLost {
            room_id: None,
            reason: None,
        }),
        EventType::JobDead => EventData::JobDead(JobDead {
            job: 1,
            kind: "ensure_room".into(),
            error: "no".into(),
        }),
        other => panic!("no sample payload of {other}"),
    }
}

fn append(store: &TestStore, tenant: &str, event_type: EventType) -> i64 {
    let conn = &mut *store.connection().unwrap();
    let room = Some(("event", "launch"));
    outbox::append(conn, tenant, room, &data(event_type), 1_000).unwrap()
}

fn seqs(events: &[OutboxEvent]) -> Vec<i64> {
    events.iter().map(|event| event.seq).collect()
}

/// `(type, data)` of the tenant's events after `after`.
fn told(store: &TestStore, tenant: &str, after: i64) -> Vec<(EventType, Value)> {
    outbox::list_after(&mut store.connection().unwrap(), tenant, after, 100)
        .unwrap()
        .iter()
        .map(|event| {
            let published = event.published();
            (published.event_type, published.data)
        })
        .collect()
}

async fn ids_count_per_tenant_and_list_after_pages_by_them(backend: Backend) {
    let store = test_store::fresh("outbox_ids", backend);
    assert_eq!(
        outbox::head(&mut store.connection().unwrap(), "a").unwrap(),
        0
    );
    let a: Vec<i64> = (0..3)
        .map(|_| append(&store, "a", EventType::RoomReady))
        .collect();
    let b: Vec<i64> = (0..2)
        .map(|_| append(&store, "b", EventType::JobDead))
        .collect();
    assert_eq!((a, b), (vec![1, 2, 3], vec![1, 2]));
    let conn = &mut *store.connection().unwrap();
    assert_eq!(outbox::head(conn, "a").unwrap(), 3);
    assert_eq!(
        seqs(&outbox::list_after(conn, "a", 0, 100).unwrap()),
        [1, 2, 3]
    );
    assert_eq!(
        seqs(&outbox::list_after(conn, "a", 1, 100).unwrap()),
        [2, 3]
    );
    assert_eq!(seqs(&outbox::list_after(conn, "a", 0, 2).unwrap()), [1, 2]);
    assert!(outbox::list_after(conn, "a", 3, 100).unwrap().is_empty());
    assert_eq!(
        seqs(&outbox::list_after(conn, "b", 0, 100).unwrap()),
        [1, 2]
    );
    assert!(
        outbox::list_after(conn, "A", 0, 100).unwrap().is_empty(),
        "tenant ids keep their case"
    );

    // The wire shape the feed and webhooks share.
    let event = &outbox::list_after(conn, "b", 1, 1).unwrap()[0];
    let wire = serde_json::to_value(event.published()).unwrap();
    assert_eq!(
        wire,
        json!({
            "id": 2,
            "type": "job.dead",
            "at": "1970-01-01T00:00:01.000Z",
            "tenant": "b",
            "room": {"kind": "event", "slug": "launch"},
            "data": {"job": 1, "kind": "ensure_room", "error": "no"},
        })
    );
    let back: PublishedEvent = serde_json::from_value(wire).unwrap();
    assert_eq!(back, event.published());
    let roomless = outbox::append(conn, "b", None, &data(EventType::JobDead), 0).unwrap();
    let listed = outbox::list_after(conn, "b", roomless - 1, 1).unwrap();
    assert_eq!(
        serde_json::to_value(listed[0].published()).unwrap()["room"],
        Value::Null
    );
}

/// Fails after appending, as a change whose later statement fails would.
fn append_then_fail(conn: &mut DbConnection) -> Result<(), StoreError> {
    conn.write(|c| {
        outbox::append(c, "a", None, &data(EventType::RoomLost), 0)?;
        on_backend!(c, c => diesel::sql_query("SELECT no_such_column FROM outbox_heads").execute(c))?;
        Ok(())
    })
}

async fn an_event_rolls_back_with_its_change_and_leaves_no_gap(backend: Backend) {
    let store = test_store::fresh("outbox_rollback", backend);
    assert_eq!(append(&store, "a", EventType::RoomReady), 1);
    append_then_fail(&mut store.connection().unwrap()).unwrap_err();
    let conn = &mut *store.connection().unwrap();
    assert_eq!(
        outbox::head(conn, "a").unwrap(),
        1,
        "the rolled-back id was given back"
    );
    assert_eq!(seqs(&outbox::list_after(conn, "a", 0, 100).unwrap()), [1]);
    assert_eq!(append(&store, "a", EventType::RoomReady), 2);
}

async fn a_room_tells_only_its_real_transitions(backend: Backend) {
    let store = test_store::fresh("outbox_rooms", backend);
    let conn = &mut *store.connection().unwrap();
    let declaration = Declaration {
        tenant_id: "t".into(),
        homeserver: "default".into(),
        kind: RoomKind::Event,
        slug: "launch".into(),
        name: "Launch Chat".into(),
        topic: None,
        visibility: Visibility::Private,
    };
    let (room, _) = rooms::declare(conn, &declaration, 0).unwrap();
    let (key, generation) = (room.id, room.generation);

    // Created (nothing to tell yet), then ready once, however often it is stored.
    for _ in 0..2 {
        assert!(room_changes::set_created(conn, key, generation, "!one:x", "12", 1).unwrap());
        assert!(
            room_changes::set_status_if_current(conn, key, generation, RoomStatus::Ready, None, 2)
                .unwrap()
        );
    }
    assert_eq!(
        told(&store, "t", 0),
        [(EventType::RoomReady, json!({"room_id": "!one:x"}))]
    );

    // Lost, replaced by a repair, ready again.
    let reason = "the bot was removed from the room by @host:x";
    room_changes::set_status(conn, key, RoomStatus::Lost, Some(reason), 3).unwrap();
    room_changes::set_status(conn, key, RoomStatus::Lost, Some(reason), 3).unwrap();
    rooms::clear_created(conn, key, 4).unwrap();
    rooms::clear_created(conn, key, 4).unwrap();
    assert!(room_changes::set_created(conn, key, generation, "!two:x", "12", 5).unwrap());
    assert!(
        room_changes::set_status_if_current(conn, key, generation, RoomStatus::Ready, None, 6)
            .unwrap()
    );
    // A followed upgrade: the stored id changes without a clear.
    assert!(room_changes::set_created(conn, key, generation, "!three:x", "12", 7).unwrap());
    assert_eq!(
        told(&store, "t", 1),
        [
            (
                EventType::RoomLost,
                json!({"room_id": "!one:x", "reason": reason})
            ),
            (
                EventType::RoomReplaced,
                json!({"previous_room_id": "!one:x", "room_id": "!two:x"})
            ),
            (EventType::RoomReady, json!({"room_id": "!two:x"})),
            (
                EventType::RoomReplaced,
                json!({"previous_room_id": "!two:x", "room_id": "!three:x"})
            ),
        ]
    );

    // Each failing job tells, with its id; the room's own permanent error does not tell twice.
    assert!(
        room_changes::set_status_if_current(
            conn,
            key,
            generation,
            RoomStatus::Failed,
            Some("no"),
            8
        )
        .unwrap()
    );
    room_changes::record_job_failure(conn, key, 41, "no", false, 8).unwrap();
    room_changes::record_job_failure(conn, key, 42, "still no", false, 9).unwrap();
    assert_eq!(
        told(&store, "t", 5),
        [
            (EventType::RoomFailed, json!({"job": 41, "error": "no"})),
            (
                EventType::RoomFailed,
                json!({"job": 42, "error": "still no"})
            ),
        ]
    );

    // Deleted: work of the old generation changes nothing and tells nothing; a teardown's
    // failure shows on the room but is no room.failed.
    let room = rooms::get(conn, key).unwrap().unwrap();
    rooms::mark_deleted(conn, &room, 10).unwrap();
    assert!(!room_changes::set_created(conn, key, generation, "!four:x", "12", 11).unwrap());
    assert!(
        !room_changes::set_status_if_current(conn, key, generation, RoomStatus::Ready, None, 11)
            .unwrap()
    );
    room_changes::record_job_failure(conn, key, 43, "teardown failed", true, 12).unwrap();
    room_changes::record_job_failure(conn, key, 44, "late", false, 12).unwrap();
    assert_eq!(outbox::head(conn, "t").unwrap(), 7);

    // Declared again, it is a new room: its first Matrix room replaces nothing.
    let (again, _) = rooms::declare(conn, &declaration, 13).unwrap();
    assert_eq!(
        (again.room_id.as_deref(), again.previous_room_id.as_deref()),
        (None, None)
    );
    assert!(room_changes::set_created(conn, key, again.generation, "!five:x", "12", 14).unwrap());
    assert!(
        room_changes::set_status_if_current(
            conn,
            key,
            again.generation,
            RoomStatus::Ready,
            None,
            15
        )
        .unwrap()
    );
    assert_eq!(
        told(&store, "t", 7),
        [(EventType::RoomReady, json!({"room_id": "!five:x"}))]
    );
}

/// PostgreSQL: a second append for the tenant waits on the head row until the first transaction
/// commits, and a reader in between sees neither event — so ids become visible in order.
#[test]
fn on_postgres_a_later_id_never_commits_before_an_earlier_one() {
    let store = test_store::fresh("outbox_order", Backend::Postgres);
    let mut first = store.connection().unwrap();
    let mut second = store.connection().unwrap();
    let second_pid = backend_pid(&mut second);

    begin(&mut first);
    let one = outbox::append(&mut first, "a", None, &data(EventType::RoomReady), 0).unwrap();
    assert_eq!(one, 1);

    // The second append runs on its own thread and must wait on the first's row lock.
    let (done, finished) = mpsc::channel();
    let waiting = std::thread::spawn(move || {
        let mut second = second;
        let seq = second
            .write(|c| outbox::append(c, "a", None, &data(EventType::RoomReady), 0))
            .unwrap();
        done.send(seq).unwrap();
    });
    wait_until_blocked_on_a_lock(&store, second_pid);
    assert!(
        finished.try_recv().is_err(),
        "the second append did not wait"
    );
    let reader = &mut *store.connection().unwrap();
    assert!(
        outbox::list_after(reader, "a", 0, 100).unwrap().is_empty(),
        "a reader saw an uncommitted event"
    );

    // An append for another tenant does not wait.
    assert_eq!(
        outbox::append(reader, "b", None, &data(EventType::RoomReady), 0).unwrap(),
        1
    );

    commit(&mut first);
    assert_eq!(finished.recv_timeout(Duration::from_secs(30)).unwrap(), 2);
    waiting.join().unwrap();
    assert_eq!(
        seqs(&outbox::list_after(reader, "a", 0, 100).unwrap()),
        [1, 2]
    );
}

fn backend_pid(conn: &mut DbConnection) -> i32 {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let rows: Vec<Pid> =
        on_backend!(conn, c => diesel::sql_query("SELECT pg_backend_pid() AS pid").load(c))
            .unwrap();
    rows[0].pid
}

fn begin(conn: &mut DbConnection) {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    on_backend!(conn, c => AnsiTransactionManager::begin_transaction(c)).unwrap();
}

fn commit(conn: &mut DbConnection) {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    on_backend!(conn, c => AnsiTransactionManager::commit_transaction(c)).unwrap();
}

/// Polls PostgreSQL until backend `pid` waits on a lock (what the server says, not a guess).
fn wait_until_blocked_on_a_lock(store: &TestStore, pid: i32) {
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let conn = &mut *store.connection().unwrap();
    let sql = format!(
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pid = {pid} AND wait_event_type = 'Lock'"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<Waiting> = on_backend!(conn, c => diesel::sql_query(&sql).load(c)).unwrap();
        if rows[0].n == 1 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second append never waited on a lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
