#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The job queue's guarantees (`src/store/jobs.rs`), on real SQLite and real PostgreSQL.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openmeet_appservice::rooms::{RoomKind, Visibility};
use openmeet_appservice::store::jobs::{self, ClaimLimits, Job, JobStatus, NewJob, Outcome};
use openmeet_appservice::store::rooms::{self, Declaration, Declared, RoomStatus};
use openmeet_appservice::store::{Store, job_keys, leader, members};
use serde_json::json;
use support::test_store::{self, TestStore};

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated store on a fresh database (`support::test_store`).
fn store(name: &str, backend: Backend) -> TestStore {
    let backend = match backend {
        Backend::Sqlite => support::Backend::Sqlite,
        Backend::Postgres => support::Backend::Postgres,
    };
    test_store::fresh(name, backend)
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(super::Backend::Sqlite);
            }
            #[test]
            fn postgres() {
                super::$name(super::Backend::Postgres);
            }
        }
    )*};
}

on_both_backends!(
    jobs_of_one_room_run_one_at_a_time_in_order,
    a_job_waiting_for_its_retry_still_holds_its_room,
    a_lapsed_lease_is_taken_again_and_the_old_worker_cannot_finish,
    one_tenant_cannot_take_more_than_its_bound,
    a_paused_job_spends_no_attempt_and_keeps_its_txn_prefix,
    a_worker_reclaims_its_own_jobs_at_start,
    a_stopping_worker_hands_back_its_jobs_without_counting_the_attempt,
    a_role_has_one_holder_until_its_lease_lapses_or_it_gives_it_up,
    operators_can_retry_and_cancel,
    concurrent_workers_run_every_job_once_and_keep_rooms_in_order,
    a_tenant_at_its_bound_does_not_hold_up_another_tenants_first_job,
    a_tenant_with_a_backlog_shares_free_slots_with_a_newcomer,
    a_paused_tenants_jobs_stay_queued_and_leave_every_slot_to_the_others,
    an_idempotency_key_queues_one_job_even_when_callers_race,
    only_the_lease_holder_saves_progress_and_the_next_claim_reads_it,
    scheduled_jobs_count_as_due_once_their_time_has_come,
    a_declaration_and_its_members_are_stored_once_and_read_back_by_slug,
);

fn room(store: &Store, tenant: &str, slug: &str) -> i64 {
    test_store::declare_room(store, tenant, slug)
}

fn enqueue(store: &Store, tenant: &str, room_key: i64, step: u32) -> Job {
    let job = NewJob {
        tenant_id: tenant.into(),
        room_key: Some(room_key),
        kind: "test".into(),
        payload: json!({"step": step}),
    };
    jobs::enqueue(&mut store.connection().unwrap(), &job, 0).unwrap()
}

fn claim(store: &Store, owner: &str, now: i64, total: usize) -> Vec<i64> {
    let limits = ClaimLimits {
        paused: &Default::default(),
        total,
        per_tenant: usize::MAX,
        running: &HashMap::new(),
    };
    jobs::claim(
        &mut store.connection().unwrap(),
        owner,
        now,
        now + 60_000,
        &limits,
    )
    .unwrap()
    .into_iter()
    .map(|job| job.id)
    .collect()
}

fn finish(store: &Store, id: i64, owner: &str, outcome: Outcome, now: i64) -> bool {
    jobs::finish(&mut store.connection().unwrap(), id, owner, &outcome, now).unwrap()
}

fn succeeded() -> Outcome {
    Outcome::Succeeded { result: json!({}) }
}

fn get(store: &Store, id: i64) -> Job {
    jobs::get(&mut store.connection().unwrap(), id)
        .unwrap()
        .unwrap()
}

fn jobs_of_one_room_run_one_at_a_time_in_order(backend: Backend) {
    let store = store("queue_order", backend);
    let (a, b) = (room(&store, "t", "a"), room(&store, "t", "b"));
    let a1 = enqueue(&store, "t", a, 1).id;
    let a2 = enqueue(&store, "t", a, 2).id;
    let b1 = enqueue(&store, "t", b, 1).id;
    assert_eq!(claim(&store, "w", 1, 10), [a1, b1]);
    assert_eq!(
        claim(&store, "w", 2, 10),
        Vec::<i64>::new(),
        "a2 ran before a1 finished"
    );
    assert!(finish(&store, a1, "w", succeeded(), 3));
    assert_eq!(claim(&store, "w", 4, 10), [a2]);
    assert_eq!(get(&store, a1).status, JobStatus::Succeeded);
}

fn a_job_waiting_for_its_retry_still_holds_its_room(backend: Backend) {
    let store = store("queue_retry", backend);
    let a = room(&store, "t", "a");
    let a1 = enqueue(&store, "t", a, 1).id;
    enqueue(&store, "t", a, 2);
    assert_eq!(claim(&store, "w", 1, 10), [a1]);
    assert!(finish(
        &store,
        a1,
        "w",
        Outcome::Retry {
            run_after: 1_000,
            error: "busy".into()
        },
        2
    ));
    assert_eq!(claim(&store, "w", 500, 10), Vec::<i64>::new());
    assert_eq!(claim(&store, "w", 1_000, 10), [a1]);
    let job = get(&store, a1);
    assert_eq!((job.attempts, job.last_error.as_deref()), (2, Some("busy")));
}

fn a_lapsed_lease_is_taken_again_and_the_old_worker_cannot_finish(backend: Backend) {
    let store = store("queue_lease", backend);
    let a1 = enqueue(&store, "t", room(&store, "t", "a"), 1).id;
    let limits = ClaimLimits {
        paused: &Default::default(),
        total: 1,
        per_tenant: 1,
        running: &HashMap::new(),
    };
    let claimed =
        jobs::claim(&mut store.connection().unwrap(), "crashed", 0, 100, &limits).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claim(&store, "other", 50, 1),
        Vec::<i64>::new(),
        "taken while its lease held"
    );
    assert_eq!(claim(&store, "other", 101, 1), [a1]);
    assert!(
        !finish(&store, a1, "crashed", succeeded(), 102),
        "a worker without the lease finished the job"
    );
    assert!(finish(&store, a1, "other", succeeded(), 103));
    assert_eq!(get(&store, a1).attempts, 2);
}

fn one_tenant_cannot_take_more_than_its_bound(backend: Backend) {
    let store = store("queue_bound", backend);
    for i in 0..5 {
        enqueue(&store, "busy", room(&store, "busy", &format!("r{i}")), 1);
    }
    let quiet = enqueue(&store, "quiet", room(&store, "quiet", "r"), 1).id;
    // "busy" already runs 8 of its 10.
    let running = HashMap::from([("busy".to_owned(), 8)]);
    let limits = ClaimLimits {
        paused: &Default::default(),
        total: 10,
        per_tenant: 10,
        running: &running,
    };
    let claimed = jobs::claim(&mut store.connection().unwrap(), "w", 1, 60_000, &limits).unwrap();
    let busy = claimed.iter().filter(|job| job.tenant_id == "busy").count();
    assert_eq!(busy, 2);
    assert!(
        claimed.iter().any(|job| job.id == quiet),
        "the quiet tenant starved"
    );
}

fn a_paused_job_spends_no_attempt_and_keeps_its_txn_prefix(backend: Backend) {
    let store = store("queue_pause", backend);
    let job = enqueue(&store, "t", room(&store, "t", "a"), 1);
    assert_eq!(claim(&store, "w", 1, 1), [job.id]);
    assert!(finish(
        &store,
        job.id,
        "w",
        Outcome::Pause {
            run_after: 10,
            error: "token".into()
        },
        2
    ));
    let paused = get(&store, job.id);
    assert_eq!((paused.status, paused.attempts), (JobStatus::Queued, 0));
    assert_eq!(claim(&store, "w", 10, 1), [job.id]);
    assert_eq!(get(&store, job.id).txn_prefix, job.txn_prefix);
}

fn a_worker_reclaims_its_own_jobs_at_start(backend: Backend) {
    let store = store("queue_reclaim", backend);
    let mine = enqueue(&store, "t", room(&store, "t", "a"), 1).id;
    assert_eq!(claim(&store, "me", 1, 1), [mine]);
    assert_eq!(
        jobs::reclaim_own(&mut store.connection().unwrap(), "someone-else", 2).unwrap(),
        0
    );
    assert_eq!(
        jobs::reclaim_own(&mut store.connection().unwrap(), "me", 2).unwrap(),
        1
    );
    assert_eq!(claim(&store, "me", 3, 1), [mine]);
}

fn a_stopping_worker_hands_back_its_jobs_without_counting_the_attempt(backend: Backend) {
    let store = store("queue_hand_back", backend);
    let mine = enqueue(&store, "t", room(&store, "t", "a"), 1).id;
    let theirs = enqueue(&store, "t", room(&store, "t", "b"), 1).id;
    assert_eq!(claim(&store, "me", 1, 1), [mine]);
    assert_eq!(claim(&store, "other", 1, 1), [theirs]);
    assert_eq!(get(&store, mine).attempts, 1);
    assert_eq!(
        jobs::hand_back(&mut store.connection().unwrap(), "me", 2).unwrap(),
        1
    );
    let handed = get(&store, mine);
    assert_eq!(
        (handed.status, handed.attempts, handed.lease_owner),
        (JobStatus::Queued, 0, None)
    );
    assert_eq!(get(&store, theirs).status, JobStatus::Running);
    // Another worker takes it at once, not after the lease.
    assert_eq!(claim(&store, "next", 2, 1), [mine]);
    assert_eq!(get(&store, mine).attempts, 1);
}

fn a_role_has_one_holder_until_its_lease_lapses_or_it_gives_it_up(backend: Backend) {
    let store = store("leader_leases", backend);
    let mut conn = store.connection().unwrap();
    let hold = |conn: &mut _, holder: &str, now: i64| {
        leader::hold(conn, "pruner", holder, now, now + 15_000).unwrap()
    };
    assert!(hold(&mut conn, "a", 1_000), "a free role is taken");
    assert!(!hold(&mut conn, "b", 2_000), "a role in force is not taken");
    assert!(hold(&mut conn, "a", 6_000), "its holder renews it");
    assert!(!hold(&mut conn, "b", 20_000), "renewed until 21 000");
    assert!(hold(&mut conn, "b", 21_001), "a lapsed role is taken");
    assert!(!hold(&mut conn, "a", 21_002), "and its old holder lost it");
    assert!(leader::hold(&mut conn, "queue_gauges", "a", 21_002, 36_002).unwrap());
    assert_eq!(leader::give_up(&mut conn, "b").unwrap(), 1);
    assert!(
        hold(&mut conn, "a", 21_003),
        "a role given up is taken at once"
    );
    let leases = leader::all(&mut conn).unwrap();
    assert_eq!(
        leases
            .iter()
            .map(|lease| (lease.name.as_str(), lease.holder.as_str()))
            .collect::<Vec<_>>(),
        [("pruner", "a"), ("queue_gauges", "a")]
    );
}

fn operators_can_retry_and_cancel(backend: Backend) {
    let store = store("queue_operator", backend);
    let (a, b) = (room(&store, "t", "a"), room(&store, "t", "b"));
    let dead = enqueue(&store, "t", a, 1).id;
    let queued = enqueue(&store, "t", b, 1).id;
    assert_eq!(claim(&store, "w", 1, 1), [dead]);
    assert!(finish(
        &store,
        dead,
        "w",
        Outcome::Dead {
            error: "gave up".into()
        },
        2
    ));
    let mut conn = store.connection().unwrap();
    assert!(jobs::cancel(&mut conn, queued, 3).unwrap());
    assert!(
        !jobs::cancel(&mut conn, dead, 3).unwrap(),
        "only queued jobs can be cancelled"
    );
    assert!(jobs::retry(&mut conn, dead, 4).unwrap());
    drop(conn);
    assert_eq!(claim(&store, "w", 5, 10), [dead]);
    assert_eq!(get(&store, dead).attempts, 1);
}

/// Several workers (threads with their own connections) share the queue: every job runs exactly
/// once, and within a room the jobs finish in id order.
fn concurrent_workers_run_every_job_once_and_keep_rooms_in_order(backend: Backend) {
    let store = store("queue_concurrent", backend);
    let mut expected: HashMap<i64, Vec<i64>> = HashMap::new();
    let rooms: Vec<i64> = (0..20)
        .map(|i| room(&store, &format!("t{}", i % 4), &format!("r{i}")))
        .collect();
    for step in 0..5 {
        for (i, room_key) in rooms.iter().enumerate() {
            let job = enqueue(&store, &format!("t{}", i % 4), *room_key, step);
            expected.entry(*room_key).or_default().push(job.id);
        }
    }
    let done: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (store, done) = (store.store.clone(), done.clone());
            std::thread::spawn(move || {
                let owner = format!("worker{w}");
                let mut idle = 0;
                while idle < 20 {
                    let limits = ClaimLimits {
                        paused: &Default::default(),
                        total: 3,
                        per_tenant: usize::MAX,
                        running: &HashMap::new(),
                    };
                    let claimed =
                        jobs::claim(&mut store.connection().unwrap(), &owner, 1, 60_000, &limits)
                            .unwrap();
                    if claimed.is_empty() {
                        idle += 1;
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    idle = 0;
                    for job in claimed {
                        done.lock().unwrap().push((job.room_key.unwrap(), job.id));
                        assert!(
                            jobs::finish(
                                &mut store.connection().unwrap(),
                                job.id,
                                &owner,
                                &succeeded(),
                                2
                            )
                            .unwrap()
                        );
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let done = done.lock().unwrap();
    assert_eq!(done.len(), 100, "every job runs exactly once");
    let mut by_room: HashMap<i64, Vec<i64>> = HashMap::new();
    for (room_key, id) in done.iter() {
        by_room.entry(*room_key).or_default().push(*id);
    }
    assert_eq!(by_room, expected, "a room's jobs ran out of order");
}

/// Tenant A queues 150 rooms, then B one. With A at its bound, B's job is the next one claimed.
fn a_tenant_at_its_bound_does_not_hold_up_another_tenants_first_job(backend: Backend) {
    let store = store("queue_fair_bound", backend);
    for i in 0..150 {
        enqueue(&store, "A", room(&store, "A", &format!("r{i}")), 1);
    }
    let b = enqueue(&store, "B", room(&store, "B", "r"), 1).id;
    // A runs 4 jobs: its bound.
    let running = HashMap::from([("A".to_owned(), 4)]);
    let limits = ClaimLimits {
        paused: &Default::default(),
        total: 4,
        per_tenant: 4,
        running: &running,
    };
    let claimed = jobs::claim(&mut store.connection().unwrap(), "w", 1, 60_000, &limits).unwrap();
    let ids: Vec<i64> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(ids, [b], "B's first job waited behind A's backlog");
}

/// With free slots fewer than A's backlog, B's first job still gets one of them: the tenants
/// take turns instead of A's older ids filling every slot.
fn a_tenant_with_a_backlog_shares_free_slots_with_a_newcomer(backend: Backend) {
    let store = store("queue_fair_share", backend);
    let a: Vec<i64> = (0..150)
        .map(|i| enqueue(&store, "A", room(&store, "A", &format!("r{i}")), 1).id)
        .collect();
    let b = enqueue(&store, "B", room(&store, "B", "r"), 1).id;
    let limits = ClaimLimits {
        paused: &Default::default(),
        total: 4,
        per_tenant: 4,
        running: &HashMap::new(),
    };
    let claimed = jobs::claim(&mut store.connection().unwrap(), "w", 1, 60_000, &limits).unwrap();
    let ids: Vec<i64> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(
        ids,
        [a[0], a[1], a[2], b],
        "B's first job did not get a slot"
    );
}

/// A tenant whose homeserver is paused (refuses our token, cannot be reached) has no
/// candidates: its older jobs stay queued with their attempts untouched, and the other tenants'
/// jobs take every slot; once it is no longer paused, its jobs are claimed in order.
fn a_paused_tenants_jobs_stay_queued_and_leave_every_slot_to_the_others(backend: Backend) {
    let store = store("queue_paused_tenant", backend);
    let a: Vec<i64> = (0..3)
        .map(|i| enqueue(&store, "A", room(&store, "A", &format!("r{i}")), 1).id)
        .collect();
    let b: Vec<i64> = (0..3)
        .map(|i| enqueue(&store, "B", room(&store, "B", &format!("r{i}")), 1).id)
        .collect();
    let paused = HashSet::from(["A".to_owned()]);
    let limits = ClaimLimits {
        paused: &paused,
        total: 4,
        per_tenant: 4,
        running: &HashMap::new(),
    };
    let claimed = jobs::claim(&mut store.connection().unwrap(), "w", 1, 60_000, &limits).unwrap();
    let ids: Vec<i64> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(ids, b, "only B's jobs are taken while A is paused");
    for id in &a {
        let job = get(&store, *id);
        assert_eq!(
            (job.status, job.attempts),
            (JobStatus::Queued, 0),
            "{job:?}"
        );
    }
    assert_eq!(
        claim(&store, "w", 2, 4),
        a,
        "A's jobs once it is no longer paused"
    );
}

/// Eight callers with the same key at once (a platform retrying on several replicas): one job,
/// and every caller is answered with it — also once it has run; another tenant's key is its own.
fn an_idempotency_key_queues_one_job_even_when_callers_race(backend: Backend) {
    let store = store("queue_idempotency", backend);
    let room_key = room(&store, "t1", "news");
    let job = |tenant: &str| NewJob {
        tenant_id: tenant.into(),
        room_key: Some(room_key),
        kind: "test".into(),
        payload: json!({}),
    };
    let start = Arc::new(std::sync::Barrier::new(8));
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (store, start, job) = (store.store.clone(), start.clone(), job("t1"));
            std::thread::spawn(move || {
                let mut conn = store.connection().unwrap();
                start.wait();
                job_keys::enqueue_once(&mut conn, &job, "message:k1", 0).unwrap()
            })
        })
        .collect();
    let answers: Vec<(Job, bool)> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    let first = answers[0].0.id;
    assert!(
        answers.iter().all(|(job, _)| job.id == first),
        "two jobs for one key"
    );
    assert_eq!(answers.iter().filter(|(_, queued)| *queued).count(), 1);

    assert_eq!(claim(&store, "w", 1, 1), vec![first]);
    assert!(finish(&store, first, "w", succeeded(), 2));
    let mut conn = store.connection().unwrap();
    let (again, queued) = job_keys::enqueue_once(&mut conn, &job("t1"), "message:k1", 3).unwrap();
    assert_eq!(
        (again.id, again.status, queued),
        (first, JobStatus::Succeeded, false)
    );
    let (other, queued) = job_keys::enqueue_once(&mut conn, &job("t2"), "message:k1", 3).unwrap();
    assert!(queued && other.id != first, "a key is per tenant");
}

fn only_the_lease_holder_saves_progress_and_the_next_claim_reads_it(backend: Backend) {
    let store = store("progress", backend);
    let conn = &mut *store.connection().unwrap();
    let job = NewJob {
        tenant_id: "t".into(),
        room_key: None,
        kind: "redact_user".into(),
        payload: json!({"step": 0}),
    };
    let id = jobs::enqueue(conn, &job, 0).unwrap().id;
    let limits = ClaimLimits {
        paused: &Default::default(),
        total: 1,
        per_tenant: 1,
        running: &HashMap::new(),
    };
    jobs::claim(conn, "w1", 0, 1_000, &limits).unwrap();
    assert!(jobs::save_progress(conn, id, "w1", &json!({"step": 1})).unwrap());
    assert!(!jobs::save_progress(conn, id, "w2", &json!({"step": 9})).unwrap());
    // w1's lease lapses; w2 takes the job and reads where w1 got; w1 can no longer write.
    let taken = jobs::claim(conn, "w2", 2_000, 3_000, &limits).unwrap();
    assert_eq!(taken[0].payload, json!({"step": 1}).to_string());
    assert!(!jobs::save_progress(conn, id, "w1", &json!({"step": 2})).unwrap());
}

fn scheduled_jobs_count_as_due_once_their_time_has_come(backend: Backend) {
    use openmeet_appservice::store::status::scheduled_due_by_tenant;
    let store = store("scheduled", backend);
    let conn = &mut *store.connection().unwrap();
    let job = |tenant: &str| NewJob {
        tenant_id: tenant.into(),
        room_key: None,
        kind: "lift".into(),
        payload: json!({}),
    };
    job_keys::enqueue_keyed(conn, &job("a"), "unmute:1", 5_000, 0).unwrap();
    job_keys::enqueue_keyed(conn, &job("a"), "unmute:2", 9_000, 0).unwrap();
    job_keys::enqueue_keyed(conn, &job("b"), "unban:1", 4_000, 0).unwrap();
    // Due at once (an Idempotency-Key, not a schedule) and unkeyed: never counted.
    job_keys::enqueue_keyed(conn, &job("a"), "message:1", 0, 0).unwrap();
    jobs::enqueue(conn, &job("a"), 0).unwrap();
    assert_eq!(scheduled_due_by_tenant(conn, 1_000).unwrap(), []);
    let mut due = scheduled_due_by_tenant(conn, 6_000).unwrap();
    due.sort();
    assert_eq!(due, [("a".to_owned(), 1), ("b".to_owned(), 1)]);
    let mut due = scheduled_due_by_tenant(conn, 10_000).unwrap();
    due.sort();
    assert_eq!(due, [("a".to_owned(), 2), ("b".to_owned(), 1)]);
}

fn a_declaration_and_its_members_are_stored_once_and_read_back_by_slug(backend: Backend) {
    let store = store("declare", backend);
    let conn = &mut *store.connection().unwrap();
    let mut declaration = Declaration {
        tenant_id: "t".into(),
        homeserver: "default".into(),
        kind: RoomKind::Event,
        slug: "party".into(),
        name: "Party Chat".into(),
        topic: Some("Bring snacks".into()),
        visibility: Visibility::Private,
    };
    let (room, declared) = rooms::declare(conn, &declaration, 7).unwrap();
    assert_eq!(declared, Declared::New);
    assert_eq!(
        (room.status, room.created_at, room.generation),
        (RoomStatus::Pending, 7, 0)
    );
    let found = rooms::find(conn, "t", "event", "party").unwrap().unwrap();
    assert_eq!(format!("{found:?}"), format!("{room:?}"));
    assert_eq!(rooms::slugs(conn, room.id).unwrap(), ["party"]);

    let members = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(u, r)| ((*u).to_owned(), (*r).to_owned()))
            .collect()
    };
    let stored = |conn: &mut _| -> Vec<(String, Option<String>)> {
        members::members(conn, room.id)
            .unwrap()
            .into_iter()
            .map(|m| (m.user_id, m.role))
            .collect()
    };
    let first = members(&[("@a:s", "host"), ("@b:s", "participant")]);
    assert!(members::declare_members_of_new_room(conn, room.id, &first, 7).unwrap());
    assert!(!members::declare_members(conn, room.id, &first, 8).unwrap());
    let next = members(&[("@a:s", "moderator"), ("@c:s", "participant")]);
    assert!(members::declare_members(conn, room.id, &next, 9).unwrap());
    assert_eq!(
        stored(conn),
        [
            ("@a:s".to_owned(), Some("moderator".to_owned())),
            ("@b:s".to_owned(), None),
            ("@c:s".to_owned(), Some("participant".to_owned())),
        ]
    );

    assert_eq!(
        rooms::declare(conn, &declaration, 10).unwrap().1,
        Declared::Unchanged
    );
    declaration.topic = None;
    let (changed, declared) = rooms::declare(conn, &declaration, 11).unwrap();
    assert_eq!(
        (declared, changed.id, changed.topic.clone()),
        (Declared::Changed, room.id, None)
    );
    rooms::mark_deleted(conn, &changed, 12).unwrap();
    let (again, declared) = rooms::declare(conn, &declaration, 13).unwrap();
    assert_eq!(
        (declared, again.id, again.status),
        (Declared::Changed, room.id, RoomStatus::Pending)
    );
}
