#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Retention (DESIGN §7.1, `jobs/prune.rs`): with `inbox_days: 1`, `jobs_days: 2` and the app's
//! clock moved by hand, rows older than their window go and newer ones stay — never a pending
//! event, a queued job or a room's latest job — in batches, counted per table, on both backends.
//! Moderation audit entries and outbox events go with the jobs' window; a tenant's event ids keep
//! counting after its events are pruned. Reports and their `report.created` events hold chat
//! content and go with the inbox's window.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::RunQueryDsl;
use openmeet_appservice::app::App;
use openmeet_appservice::clock::Clock;
use openmeet_appservice::config::Config;
use openmeet_appservice::config::sample::{SampleTokens, render};
use openmeet_appservice::jobs::prune;
use openmeet_appservice::on_backend;
use openmeet_appservice::store::inbox::{IncomingTransaction, NewEvent};
use openmeet_appservice::store::jobs::{self, ClaimLimits, NewJob, Outcome};
use openmeet_appservice::store::moderation_log::{self, NewEntry};
use openmeet_appservice::store::outbox::{self};
use openmeet_appservice::store::outbox_data::{EventData, ReportCreated, RoomReady};
use openmeet_appservice::store::retention::Table;
use openmeet_appservice::store::{DbConnection, Store};
use serde_json::json;
use support::Backend;

const DAY: i64 = 86_400_000;

on_both_backends!(rows_older_than_their_window_go_and_newer_ones_stay);

/// A clock the test moves.
struct HandClock(AtomicI64);

impl Clock for HandClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst) as u64)
    }
}

/// A `room.ready` without a Matrix room, for events appended by hand.
fn ready() -> EventData {
    EventData::RoomReady(RoomReady { room_id: None })
}

fn report_created() -> EventData {
    EventData::ReportCreated(ReportCreated {
        report: 1,
        room_id: "!r:x".into(),
        event_id: None,
        reporter: "@u:x".into(),
        reason: None,
        score: None,
        event: None,
    })
}

fn app(url: &str, clock: Arc<HandClock>) -> Arc<App> {
    let vars = [
        ("OPENMEET_AS__DATABASE__URL", url),
        ("OPENMEET_AS__RETENTION__INBOX_DAYS", "1"),
        ("OPENMEET_AS__RETENTION__JOBS_DAYS", "2"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let yaml = render(Some(&SampleTokens::random()));
    let config = Config::from_yaml(std::path::Path::new("retention.yaml"), &yaml, vars).unwrap();
    let app = App::new(config, clock).unwrap();
    app.store.migrate().unwrap();
    app
}

fn execute(conn: &mut DbConnection, sql: &str) {
    on_backend!(conn, c => diesel::sql_query(sql).execute(c)).unwrap();
}

fn count(conn: &mut DbConnection, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<Count> = on_backend!(conn, c => diesel::sql_query(sql).load(c)).unwrap();
    rows[0].n
}

/// `count` inbox events received at `at`, processed (or pending) then.
fn events(conn: &mut DbConnection, prefix: &str, count: usize, at: i64, processed: bool) {
    let processed_at = if processed {
        at.to_string()
    } else {
        "NULL".into()
    };
    let rows: Vec<String> = (0..count)
        .map(|i| {
            format!("('${prefix}{i}', '!r:x', 'm.room.message', '@u:x', 't', '{{}}', {at}, {processed_at})")
        })
        .collect();
    execute(
        conn,
        &format!(
            "INSERT INTO inbox_events (event_id, room_id, event_type, sender, txn_id, event_json, received_at, processed_at) VALUES {}",
            rows.join(", ")
        ),
    );
}

/// A job of `room_key` queued and ended with `outcome` at `at`; returns its id.
fn finished_job(store: &Store, room_key: Option<i64>, outcome: Outcome, at: i64) -> i64 {
    let conn = &mut *store.connection().unwrap();
    let job = NewJob {
        tenant_id: "t".into(),
        room_key,
        kind: "ensure_room".into(),
        payload: json!({}),
    };
    let id = jobs::enqueue(conn, &job, at).unwrap().id;
    let limits = ClaimLimits {
        paused: &Default::default(),
        total: 1,
        per_tenant: 1,
        running: &Default::default(),
    };
    let claimed = jobs::claim(conn, "w", at, at + 60_000, &limits).unwrap();
    assert_eq!(claimed[0].id, id);
    assert!(jobs::finish(conn, id, "w", &outcome, at).unwrap());
    id
}

fn room(store: &Store, slug: &str) -> i64 {
    support::test_store::declare_room(store, "t", slug)
}

fn job_ids(store: &Store) -> Vec<i64> {
    jobs::list(&mut store.connection().unwrap(), None, None, 100)
        .unwrap()
        .into_iter()
        .map(|job| job.id)
        .rev()
        .collect()
}

async fn rows_older_than_their_window_go_and_newer_ones_stay(backend: Backend) {
    let dir = support::python::scratch_dir("retention");
    let url = backend
        .database_url("retention")
        .unwrap_or_else(|| format!("sqlite://{}/retention.db", dir.display()));
    let clock = Arc::new(HandClock(AtomicI64::new(0)));
    let app = app(&url, clock.clone());
    let succeeded = || Outcome::Succeeded { result: json!({}) };

    // Jobs: a room's older job and a roomless one ended on day 5 (to go), the room's latest job
    // (failed on day 5: it answers a repeated PUT), two jobs ended on day 9 and one still queued.
    let (old_room, new_room, waiting_room) = (
        room(&app.store, "a"),
        room(&app.store, "b"),
        room(&app.store, "c"),
    );
    let old = finished_job(&app.store, Some(old_room), succeeded(), 5 * DAY);
    let latest = finished_job(
        &app.store,
        Some(old_room),
        Outcome::Failed { error: "no".into() },
        5 * DAY,
    );
    let roomless = finished_job(&app.store, None, succeeded(), 5 * DAY);
    let recent = finished_job(&app.store, Some(new_room), succeeded(), 9 * DAY);
    let recent_latest = finished_job(&app.store, Some(new_room), succeeded(), 9 * DAY);
    let queued = jobs::enqueue(
        &mut app.store.connection().unwrap(),
        &NewJob {
            tenant_id: "t".into(),
            room_key: Some(waiting_room),
            kind: "ensure_room".into(),
            payload: json!({}),
        },
        DAY,
    )
    .unwrap()
    .id;

    // Audit entries: two from day 5 (to go), one from day 9.
    for at in [5 * DAY, 5 * DAY + 1, 9 * DAY] {
        let entry = NewEntry {
            tenant_id: "t".into(),
            action: "redact".into(),
            user_id: "@u:x".into(),
            ..NewEntry::default()
        };
        moderation_log::append(&mut app.store.connection().unwrap(), &entry, at).unwrap();
    }

    // Outbox: two events from day 5 (to go), one from day 9.
    for at in [5 * DAY, 5 * DAY + 1, 9 * DAY] {
        let conn = &mut *app.store.connection().unwrap();
        outbox::append(conn, "t", None, &ready(), at).unwrap();
    }

    // Reports: one from day 8 (to go on day 10), one from day 9.5; each with its report.created
    // (tenant "r", so that tenant "t"'s ids below are as they were).
    for at in [8 * DAY, 9 * DAY + DAY / 2] {
        let conn = &mut *app.store.connection().unwrap();
        execute(
            conn,
            &format!(
                "INSERT INTO reports (tenant_id, room_kind, room_slug, room_id, reporter, at) VALUES ('r', 'event', 's', '!r:x', '@u:x', {at})"
            ),
        );
        outbox::append(conn, "r", None, &report_created(), at).unwrap();
    }

    // Inbox: 1,205 events processed on day 8 (three batches), 3 still pending from day 8, 4
    // processed on day 9.5; a transaction and a quarantine row from each day.
    {
        let conn = &mut *app.store.connection().unwrap();
        events(conn, "old", 1_205, 8 * DAY, true);
        events(conn, "pending", 3, 8 * DAY, false);
        events(conn, "new", 4, 9 * DAY + DAY / 2, true);
        for (txn, at) in [("old", 8 * DAY), ("new", 9 * DAY + DAY / 2)] {
            execute(
                conn,
                &format!(
                    "INSERT INTO as_transactions (txn_id, fingerprint, event_count, received_at) VALUES ('{txn}', 'f', 1, {at})"
                ),
            );
            execute(
                conn,
                &format!(
                    "INSERT INTO quarantine (txn_id, reason, body, received_at) VALUES ('{txn}', 'unreadable', '{{}}', {at})"
                ),
            );
        }
    }
    let (_stop, shutdown) = tokio::sync::watch::channel(false);

    // The event-id dedupe now holds every stored event (on SQLite a set in memory, loaded here).
    // (Its transaction is stored, with the old ones' time, and goes with them on day 10.)
    assert_eq!(record(&app, "t0", &["$old0", "$new0"], 8 * DAY).await, 0);

    // Day 8.5: the inbox rows are half a day old and stay; jobs ended before day 6.5 go.
    clock.0.store(8 * DAY + DAY / 2, Ordering::SeqCst);
    let deleted = prune::prune(&app, &shutdown, &|| true).await.unwrap();
    assert_eq!(
        deleted,
        [
            (Table::InboxEvents, 0),
            (Table::AsTransactions, 0),
            (Table::Quarantine, 0),
            (Table::Jobs, 2),
            (Table::ModerationLog, 2),
            (Table::OutboxEvents, 2),
            (Table::Reports, 0),
            (Table::ReportEvents, 0)
        ]
    );
    assert_eq!(
        job_ids(&app.store),
        [latest, recent, recent_latest, queued],
        "jobs {old} (not its room's latest) and {roomless} go"
    );

    // Day 10: what arrived before day 9 goes, pending events excepted.
    clock.0.store(10 * DAY, Ordering::SeqCst);
    let deleted = prune::prune(&app, &shutdown, &|| true).await.unwrap();
    assert_eq!(
        deleted,
        [
            (Table::InboxEvents, 1_205),
            (Table::AsTransactions, 2),
            (Table::Quarantine, 1),
            (Table::Jobs, 0),
            (Table::ModerationLog, 0),
            (Table::OutboxEvents, 0),
            (Table::Reports, 1),
            (Table::ReportEvents, 1)
        ]
    );
    let conn = &mut *app.store.connection().unwrap();
    assert_eq!(
        count(
            conn,
            "SELECT COUNT(*) AS n FROM inbox_events WHERE processed_at IS NULL"
        ),
        3,
        "a pending event was deleted"
    );
    assert_eq!(
        count(
            conn,
            "SELECT COUNT(*) AS n FROM inbox_events WHERE processed_at IS NOT NULL"
        ),
        4
    );
    for table in ["as_transactions", "quarantine"] {
        assert_eq!(
            count(
                conn,
                &format!("SELECT COUNT(*) AS n FROM {table} WHERE txn_id = 'new'")
            ),
            1,
            "{table}"
        );
        assert_eq!(
            count(conn, &format!("SELECT COUNT(*) AS n FROM {table}")),
            1,
            "{table}"
        );
    }
    assert_eq!(job_ids(&app.store), [latest, recent, recent_latest, queued]);
    let metric = |table: &str| {
        app.metrics
            .retention_deleted
            .with_label_values(&[table])
            .get()
    };
    assert_eq!(
        (
            metric("inbox_events"),
            metric("as_transactions"),
            metric("quarantine"),
            metric("jobs"),
            metric("moderation_log")
        ),
        (1_205, 2, 1, 2, 2)
    );
    let audit =
        moderation_log::list(&mut app.store.connection().unwrap(), None, None, 0, 10).unwrap();
    assert_eq!(audit.iter().map(|e| e.at).collect::<Vec<_>>(), [9 * DAY]);

    // A pruned event is forgotten by the dedupe (its memory stays bounded on SQLite), a kept one
    // is not.
    assert_eq!(record(&app, "t1", &["$old0", "$new0"], 10 * DAY).await, 1);
    let conn = &mut *app.store.connection().unwrap();
    let kept = outbox::list_after(conn, "t", 0, 10).unwrap();
    assert_eq!(
        kept.iter().map(|e| (e.seq, e.at_ms)).collect::<Vec<_>>(),
        [(3, 9 * DAY)]
    );
    assert_eq!(
        outbox::append(conn, "t", None, &ready(), 10 * DAY).unwrap(),
        4,
        "ids go on counting after pruning"
    );
    assert_eq!(metric("outbox_events"), 2);
    assert_eq!(
        count(conn, "SELECT COUNT(*) AS n FROM reports"),
        1,
        "the day-9.5 report stays"
    );
    let reported = outbox::list_after(conn, "r", 0, 10).unwrap();
    assert_eq!(
        reported.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2],
        "the day-8 report.created goes with the inbox's window"
    );
    assert_eq!((metric("reports"), metric("report_events")), (1, 1));
    drop(app);
    if backend_is_postgres(&url) {
        support::postgres::drop_database(&url);
    }
}

/// Stores a transaction `txn_id` of messages with `event_ids` received at `at` as the
/// acknowledgement does (chat messages are settled: stored processed); returns how many of them
/// were new.
async fn record(app: &App, txn_id: &str, event_ids: &[&str], at: i64) -> usize {
    let events = event_ids
        .iter()
        .map(|id| NewEvent {
            event_id: (*id).into(),
            room_id: "!r:x".into(),
            event_type: "m.room.message".into(),
            sender: "@u:x".into(),
            state_key: None,
            event_json: "{}".into(),
            settled: Some("message"),
        })
        .collect();
    let txn = IncomingTransaction {
        homeserver: "default".into(),
        txn_id: txn_id.into(),
        fingerprint: txn_id.into(),
        received_at: at,
        unreadable: false,
        events,
        quarantined: Vec::new(),
    };
    let (_, recorded) = app.store.record_transaction(txn).await.unwrap();
    assert!(!recorded.duplicate);
    recorded.new_events
}

fn backend_is_postgres(url: &str) -> bool {
    url.starts_with("postgres")
}
