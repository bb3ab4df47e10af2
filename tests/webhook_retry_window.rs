#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The webhook retry window (`src/webhooks/`, DESIGN §7.4) on the app's clock, moved by hand: an
//! event its endpoint keeps refusing is retried for 24 h — still retried at 23 h — then given up:
//! counted in `failed_total` with its last error in the status, counted in
//! `openmeet_as_webhook_deliveries_total{outcome="failed"}`, and the next event goes. Both backends.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openmeet_appservice::app::App;
use openmeet_appservice::clock::Clock;
use openmeet_appservice::config::Config;
use openmeet_appservice::config::sample::{SampleTokens, render};
use openmeet_appservice::status::{self, HomeserverView};
use openmeet_appservice::store::outbox::{self};
use openmeet_appservice::store::outbox_data::{EventData, RoomReady};
use openmeet_appservice::store::webhook_deliveries;
use openmeet_appservice::webhooks;
use serde_json::Value;
use support::Backend;
use support::webhook_receiver::Receiver;

const HOUR: i64 = 3_600_000;
const START: i64 = 1_796_464_800_000;
const TENANT: &str = "lsdfaopkljdfs";
const SECRET: &str = "a-raw-secret-0123456789abcdef";
const WITHIN: Duration = Duration::from_secs(30);

on_both_backends!(an_event_refused_for_24_hours_is_given_up_and_the_next_goes);

/// A clock the test moves.
struct HandClock(AtomicI64);

impl Clock for HandClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst) as u64)
    }
}

fn app(url: &str, webhook_url: &str, clock: Arc<HandClock>) -> Arc<App> {
    let vars = [
        ("OPENMEET_AS__DATABASE__URL", url),
        ("OPENMEET_AS__TENANTS__0__WEBHOOK__URL", webhook_url),
        ("OPENMEET_AS__TENANTS__0__WEBHOOK__SECRET", SECRET),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let yaml = render(Some(&SampleTokens::random()));
    let config = Config::from_yaml(std::path::Path::new("window.yaml"), &yaml, vars).unwrap();
    let app = App::new(config, clock).unwrap();
    app.store.migrate().unwrap();
    app
}

async fn webhook_status(app: &App) -> Value {
    let status = status::collect(app, &HomeserverView::of_daemon(app))
        .await
        .unwrap();
    let tenant = status.tenants.into_iter().find(|t| t.id == TENANT).unwrap();
    serde_json::to_value(tenant.webhook.expect("the tenant has a webhook")).unwrap()
}

/// Moves the clock to `at` and wakes the worker (its backoff is counted on this clock).
fn move_clock(app: &App, clock: &HandClock, at: i64) {
    clock.0.store(at, Ordering::SeqCst);
    app.webhooks_wakeup.notify_one();
}

async fn an_event_refused_for_24_hours_is_given_up_and_the_next_goes(backend: Backend) {
    let dir = support::python::scratch_dir("webhook-window");
    let url = backend
        .database_url("webhook_window")
        .unwrap_or_else(|| format!("sqlite://{}/window.db", dir.display()));
    let receiver = Receiver::start().await;
    receiver.answer_event(&format!("{TENANT}-1"), 500);
    let clock = Arc::new(HandClock(AtomicI64::new(START)));
    let app = app(&url, &receiver.url, clock.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(webhooks::run(app.clone(), stopped));
    support::eventually("the webhook to start", WITHIN, || async {
        (webhook_status(&app).await["configured"] == true
            && app
                .store
                .run(webhook_deliveries::progress)
                .await
                .unwrap()
                .len()
                == 1)
            .then_some(())
    })
    .await;
    {
        let conn = &mut *app.store.connection().unwrap();
        for slug in ["first", "second"] {
            let room = ("group".to_owned(), slug.to_string());
            let data = EventData::RoomReady(RoomReady { room_id: None });
            outbox::append(
                conn,
                TENANT,
                Some((room.0.as_str(), room.1.as_str())),
                &data,
                START,
            )
            .unwrap();
        }
    }
    app.webhooks_wakeup.notify_one();
    receiver.wait_for_requests(1, WITHIN).await;
    support::eventually("the failure to be recorded", WITHIN, || async {
        (webhook_status(&app).await["attempts"] == 1).then_some(())
    })
    .await;
    let status = webhook_status(&app).await;
    assert_eq!(status["failing_since_ms"], START, "{status}");
    assert_eq!(status["lag_events"], 2, "{status}");

    // 23 h later: retried, not given up.
    move_clock(&app, &clock, START + 23 * HOUR);
    receiver.wait_for_requests(2, WITHIN).await;
    support::eventually("the second failure to be recorded", WITHIN, || async {
        (webhook_status(&app).await["attempts"] == 2).then_some(())
    })
    .await;
    let status = webhook_status(&app).await;
    assert_eq!(
        (
            status["failed_total"].as_i64(),
            status["delivered_seq"].as_i64()
        ),
        (Some(0), Some(0)),
        "{status}"
    );

    // 24 h after the first failure: the next failure gives the event up and the next one goes.
    move_clock(&app, &clock, START + 24 * HOUR);
    receiver.wait_for_acknowledged(TENANT, 1, WITHIN).await;
    let received = receiver.received();
    let sent: Vec<(&str, u16)> = received
        .iter()
        .map(|r| (r.id.as_str(), r.answered))
        .collect();
    let first = format!("{TENANT}-1");
    let second = format!("{TENANT}-2");
    assert_eq!(
        sent,
        [
            (first.as_str(), 500),
            (first.as_str(), 500),
            (first.as_str(), 500),
            (second.as_str(), 200)
        ],
        "event 1 three times (start, 23 h, 24 h), then event 2"
    );
    assert!(received.iter().all(|r| r.signed_with(SECRET)));
    // Each attempt is signed with the clock's time.
    assert_eq!(received[1].timestamp, (START + 23 * HOUR) / 1000);
    let status = support::eventually("the cursor to reach the head", WITHIN, || async {
        let status = webhook_status(&app).await;
        (status["delivered_seq"] == 2).then_some(status)
    })
    .await;
    assert_eq!(status["failed_total"], 1, "{status}");
    assert_eq!(status["last_failed_seq"], 1, "{status}");
    assert_eq!(status["lag_events"], 0, "{status}");
    let error = status["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("gave up on event 1 (room.ready) after 3 attempts over 24 h: the webhook answered HTTP 500"),
        "{error}"
    );
    assert!(!error.contains(SECRET));
    let metrics = app.metrics.render();
    assert!(
        metrics.contains(&format!(
            "openmeet_as_webhook_deliveries_total{{outcome=\"failed\",tenant=\"{TENANT}\"}} 1"
        )),
        "{metrics}"
    );
    assert!(!metrics.contains(SECRET));
    let table = status::collect(&app, &HomeserverView::of_daemon(&app))
        .await
        .unwrap()
        .to_table(START + 24 * HOUR);
    assert!(
        table.contains(&format!("tenant {TENANT}")) && table.contains("failed 1"),
        "{table}"
    );
    assert!(
        table.contains("last error (0s ago): gave up on event 1"),
        "{table}"
    );

    stop.send_replace(true);
    worker.await.unwrap();
    if url.starts_with("postgres") {
        support::postgres::drop_database(&url);
    }
}
