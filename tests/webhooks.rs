#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Webhook delivery (DESIGN §7.4, `src/webhooks/`) by the real daemon to a test receiver that
//! verifies every signature with its own HMAC: signed, in order, at least once; a failing endpoint
//! gets the same `webhook-id` again and holds back only its own tenant; a kill -9 between the change
//! and the delivery delivers after the restart; a webhook added or changed by SIGHUP takes effect
//! from the outbox head; two replicas on one PostgreSQL never send one event twice at once. Events
//! are appended to the outbox directly (`store::outbox::append`), so these tests do not depend on
//! which changes emit them. No webhook secret appears in any log line (every `Daemon` checks its log
//! on drop; the receiver's 500s and the kill put error lines there). The deliveries also verify
//! with the Standard Webhooks reference library (PyPI `standardwebhooks`, pinned in the test
//! virtualenv), as a platform receiver would check them.

mod support;

use std::time::Duration;

use openmeet_appservice::config::{Database, DatabaseUrl};
use openmeet_appservice::store::Store;
use openmeet_appservice::store::outbox;
use openmeet_appservice::store::outbox_data::{EventData, RoomReady};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::daemon::{Daemon, DaemonConfig};
use support::webhook_receiver::{Received, Receiver};
use support::{Backend, eventually};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "a-raw-secret-for-tenant-b-0123";
const ADMIN: &str = "admin-0123456789abcdef0123456789";
const WITHIN: Duration = Duration::from_secs(30);

on_both_backends!(
    events_arrive_signed_and_in_order_and_a_wrong_secret_is_detected,
    a_refusing_endpoint_gets_the_same_event_again_then_the_rest_in_order,
    a_kill_between_the_change_and_the_delivery_delivers_after_the_restart,
);

/// A daemon config on `backend` whose tenants have webhooks to `receiver`.
fn config(
    name: &str,
    backend: Backend,
    receiver: &Receiver,
    tenants: &[(&str, &str)],
) -> DaemonConfig {
    let mut config = DaemonConfig::new(name, backend.database_url(name));
    config.tenants = tenants
        .iter()
        .map(|(id, _)| (id.to_string(), format!("Tenant {id}")))
        .collect();
    config.webhooks = tenants
        .iter()
        .map(|(id, secret)| (id.to_string(), receiver.url.clone(), secret.to_string()))
        .collect();
    config.extra_yaml = format!("admin_token: {ADMIN}\n");
    config.extra_secrets = vec![ADMIN.into()];
    config
}

/// The daemon's database, for appending events as a change would.
fn store(daemon: &Daemon) -> Store {
    Store::new(&Database {
        url: DatabaseUrl::parse(&daemon.config.database_url).unwrap(),
        migrate_on_start: false,
        max_connections: 2,
        acquire_timeout: Duration::from_secs(5),
    })
}

/// Appends `count` `room.ready` events for `tenant`; returns their seqs.
fn append(store: &Store, tenant: &str, count: usize) -> Vec<i64> {
    let conn = &mut *store.connection().unwrap();
    (0..count)
        .map(|i| {
            let room = ("event".to_owned(), format!("party-{i}"));
            let data = EventData::RoomReady(RoomReady {
                room_id: Some(format!("!room{i}:test.openmeet.invalid")),
            });
            outbox::append(
                conn,
                tenant,
                Some((room.0.as_str(), room.1.as_str())),
                &data,
                1_796_464_800_000,
            )
            .unwrap()
        })
        .collect()
}

fn ids(tenant: &str, seqs: impl IntoIterator<Item = i64>) -> Vec<String> {
    seqs.into_iter()
        .map(|seq| format!("{tenant}-{seq}"))
        .collect()
}

/// Waits until the daemon has started `tenant`'s webhook at the outbox head (events appended
/// before then are not delivered: the feed serves them).
async fn started(daemon: &Daemon, tenant: &str) {
    eventually(
        &format!("the webhook of {tenant} to start"),
        WITHIN,
        || async {
            let logs = daemon.logs();
            logs.lines()
                .any(|line| line.contains("webhook configured") && line.contains(tenant))
                .then_some(())
        },
    )
    .await;
}

/// `GET /v1/status`'s webhook entry of `tenant`.
async fn webhook_status(daemon: &Daemon, tenant: &str) -> Value {
    let (status, body) = daemon
        .platform(Method::GET, "/v1/status", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tenant)
        .unwrap_or_else(|| panic!("no tenant {tenant} in {body}"))["webhook"]
        .clone()
}

async fn events_arrive_signed_and_in_order_and_a_wrong_secret_is_detected(backend: Backend) {
    let receiver = Receiver::start().await;
    let daemon = Daemon::start(config(
        "wh_signed",
        backend,
        &receiver,
        &[("tenantA", SECRET)],
    ))
    .await;
    let store = store(&daemon);
    started(&daemon, "tenantA").await;
    let seqs = append(&store, "tenantA", 3);
    receiver.wait_for_acknowledged("tenantA", 3, WITHIN).await;

    let received = receiver.received();
    assert_eq!(
        received.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids("tenantA", seqs.clone())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (request, seq) in received.iter().zip(&seqs) {
        assert!(
            request.signed_with(SECRET),
            "{request:?} does not verify with the secret"
        );
        assert!(
            !request.signed_with(OTHER_SECRET),
            "{request:?} verifies with a wrong secret"
        );
        assert!(!request.signed_with("whsec_ZGlmZmVyZW50LWtleS1kaWZmZXJlbnQta2V5"));
        let mut tampered = request.clone();
        tampered.body.push(b' ');
        assert!(
            !tampered.signed_with(SECRET),
            "a changed body still verifies"
        );
        assert!(
            (request.timestamp - now).abs() < 60,
            "webhook-timestamp is unix seconds: {request:?}"
        );
        assert_eq!(
            request.json,
            json!({
                "id": seq,
                "type": "room.ready",
                "at": "2026-12-05T10:00:00.000Z",
                "tenant": "tenantA",
                "room": {"kind": "event", "slug": format!("party-{}", seq - seqs[0])},
                "data": {"room_id": format!("!room{}:test.openmeet.invalid", seq - seqs[0])},
            })
        );
    }
    let status = eventually("the cursor to reach the head", WITHIN, || async {
        let status = webhook_status(&daemon, "tenantA").await;
        (status["lag_events"] == 0 && status["delivered_seq"] == 3).then_some(status)
    })
    .await;
    assert_eq!(
        status["endpoint"],
        receiver.url.trim_end_matches("/hook"),
        "{status}"
    );
    assert_eq!(status["failed_total"], 0, "{status}");
    assert!(status["last_error"].is_null(), "{status}");
    daemon
        .wait_metric(
            "openmeet_as_webhook_deliveries_total",
            "outcome=\"delivered\",tenant=\"tenantA\"",
            3.0,
            WITHIN,
        )
        .await;
    let logs = daemon.logs();
    assert!(
        !logs.contains(SECRET) && !logs.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "the secret was logged"
    );
}

async fn a_refusing_endpoint_gets_the_same_event_again_then_the_rest_in_order(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer("tenantA", 500);
    let daemon = Daemon::start(config(
        "wh_retry",
        backend,
        &receiver,
        &[("tenantA", SECRET)],
    ))
    .await;
    started(&daemon, "tenantA").await;
    let seqs = append(&store(&daemon), "tenantA", 3);
    receiver.wait_for_requests(2, WITHIN).await;
    let status = webhook_status(&daemon, "tenantA").await;
    assert_eq!(status["delivered_seq"], 0, "{status}");
    assert_eq!(status["lag_events"], 3, "{status}");
    assert!(status["attempts"].as_i64().unwrap() >= 1, "{status}");
    assert!(status["failing_since_ms"].is_i64(), "{status}");
    assert!(
        status["last_error"].as_str().unwrap().contains("HTTP 500"),
        "{status}"
    );

    receiver.answer("tenantA", 200);
    receiver.wait_for_acknowledged("tenantA", 3, WITHIN).await;
    let received = receiver.received();
    let (refused, accepted): (Vec<_>, Vec<_>) = received.iter().partition(|r| r.answered == 500);
    assert!(refused.len() >= 2, "{received:?}");
    assert!(
        refused
            .iter()
            .all(|r| r.id == "tenantA-1" && r.signed_with(SECRET)),
        "only the first event is tried while it fails: {received:?}"
    );
    assert_eq!(
        accepted.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ids("tenantA", seqs)
    );
    assert!(accepted.iter().all(|r| r.signed_with(SECRET)));
    // Each attempt is signed afresh (its own timestamp), the id stays.
    assert!(refused[0].timestamp <= accepted[0].timestamp);
    let status = eventually("the cursor to reach the head", WITHIN, || async {
        let status = webhook_status(&daemon, "tenantA").await;
        (status["lag_events"] == 0).then_some(status)
    })
    .await;
    assert!(
        status["failing_since_ms"].is_null() && status["attempts"] == 0,
        "{status}"
    );
    assert!(
        status["last_error"].as_str().unwrap().contains("HTTP 500"),
        "the last error is kept: {status}"
    );
    assert!(
        daemon
            .metric("openmeet_as_webhook_deliveries_total", "outcome=\"retry\"")
            .await
            >= 2.0
    );
}

async fn a_kill_between_the_change_and_the_delivery_delivers_after_the_restart(backend: Backend) {
    let receiver = Receiver::start().await;
    let mut daemon = Daemon::start(config(
        "wh_kill",
        backend,
        &receiver,
        &[("tenantA", SECRET)],
    ))
    .await;
    started(&daemon, "tenantA").await;
    receiver.hold();
    let store = store(&daemon);
    append(&store, "tenantA", 1);
    receiver.wait_for_requests(1, WITHIN).await;
    // The receiver has the event; the daemon has not heard back.
    daemon.kill();
    append(&store, "tenantA", 1);
    daemon.restart().await;
    receiver.wait_for_requests(2, WITHIN).await;
    receiver.release();
    receiver.wait_for_requests(3, WITHIN).await;
    let received = receiver.received();
    let sent: Vec<(String, u16)> = received
        .iter()
        .map(|r| (r.id.clone(), r.answered))
        .collect();
    // The first answer went to a dead process (whatever the receiver wrote): the restarted daemon
    // sends the event again with the same webhook-id, then the next.
    assert_eq!(
        received.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        ["tenantA-1", "tenantA-1", "tenantA-2"],
        "{sent:?}"
    );
    assert_eq!(sent[1].1, 200, "the next goes only after a 2xx: {sent:?}");
    eventually("the cursor to reach the head", WITHIN, || async {
        (webhook_status(&daemon, "tenantA").await["delivered_seq"] == 2).then_some(())
    })
    .await;
    assert!(received.iter().all(|r| r.signed_with(SECRET)));
    assert!(receiver.overlapped().is_empty());
}

/// Verifies each delivery (one JSON object a line on stdin: `secret`, `raw`: whether it is a
/// plain secret whose UTF-8 bytes are the key, `body` base64, `headers`) with the reference
/// library, as received and with one byte added to the body; prints one JSON line per delivery.
const STANDARD_WEBHOOKS_VERIFY: &str = r#"
import base64, json, sys
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

def outcome(webhook, body, headers):
    try:
        webhook.verify(body, headers)
        return "verified"
    except WebhookVerificationError as error:
        return f"refused: {error}"

for line in sys.stdin:
    case = json.loads(line)
    # whsec_ secrets as the library takes them; a plain secret's key is its UTF-8 bytes.
    webhook = Webhook(case["secret"].encode() if case["raw"] else case["secret"])
    body = base64.b64decode(case["body"])
    print(json.dumps({
        "as_received": outcome(webhook, body, case["headers"]),
        "tampered": outcome(webhook, body + b" ", case["headers"]),
    }), flush=True)
"#;

/// What [`STANDARD_WEBHOOKS_VERIFY`] says of each request, verified with its tenant's secret.
fn verify_with_standard_webhooks(requests: &[Received], secrets: &[(&str, &str)]) -> Vec<Value> {
    use base64::Engine;
    let input: String = requests
        .iter()
        .map(|request| {
            let (_, secret) = secrets
                .iter()
                .find(|(tenant, _)| *tenant == request.tenant())
                .expect("a tenant with a secret");
            let headers: serde_json::Map<String, Value> = request
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
                .collect();
            let case = json!({
                "secret": secret,
                "raw": !secret.starts_with("whsec_"),
                "body": base64::engine::general_purpose::STANDARD.encode(&request.body),
                "headers": headers,
            });
            format!("{case}\n")
        })
        .collect();
    let output = support::python::run_script(
        "the standardwebhooks check",
        STANDARD_WEBHOOKS_VERIFY,
        input.as_bytes(),
    );
    String::from_utf8(output)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_verify_with_the_standard_webhooks_library_and_a_changed_body_does_not() {
    let receiver = Receiver::start().await;
    // One whsec_ secret (the library's own form) and one plain secret.
    let tenants = [("tenantA", SECRET), ("tenantB", OTHER_SECRET)];
    let daemon = Daemon::start(config("wh_standard", Backend::Sqlite, &receiver, &tenants)).await;
    for tenant in ["tenantA", "tenantB"] {
        started(&daemon, tenant).await;
    }
    let store = store(&daemon);
    append(&store, "tenantA", 2);
    append(&store, "tenantB", 1);
    receiver.wait_for_acknowledged("tenantA", 2, WITHIN).await;
    receiver.wait_for_acknowledged("tenantB", 1, WITHIN).await;
    let received = receiver.received();
    let verdicts = verify_with_standard_webhooks(&received, &tenants);
    assert_eq!(verdicts.len(), received.len());
    for (request, verdict) in received.iter().zip(&verdicts) {
        assert_eq!(
            verdict,
            &json!({"as_received": "verified", "tampered": "refused: No matching signature found"}),
            "{} ({})",
            request.id,
            request.tenant()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_holds_back_only_its_own_tenant() {
    let receiver = Receiver::start().await;
    receiver.answer("tenantA", 503);
    let tenants = [("tenantA", SECRET), ("tenantB", OTHER_SECRET)];
    let daemon = Daemon::start(config("wh_tenants", Backend::Sqlite, &receiver, &tenants)).await;
    for tenant in ["tenantA", "tenantB"] {
        started(&daemon, tenant).await;
    }
    let store = store(&daemon);
    append(&store, "tenantA", 2);
    let b = append(&store, "tenantB", 3);
    receiver.wait_for_acknowledged("tenantB", 3, WITHIN).await;
    assert_eq!(receiver.acknowledged("tenantB"), ids("tenantB", b));
    let received = receiver.received();
    let of_a: Vec<&str> = received
        .iter()
        .filter(|r| r.tenant() == "tenantA")
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        !of_a.is_empty() && of_a.iter().all(|id| *id == "tenantA-1"),
        "{of_a:?}"
    );
    assert!(receiver.acknowledged("tenantA").is_empty());
    // Each tenant's requests are signed with its own secret.
    for request in &received {
        let (own, other) = if request.tenant() == "tenantA" {
            (SECRET, OTHER_SECRET)
        } else {
            (OTHER_SECRET, SECRET)
        };
        assert!(
            request.signed_with(own) && !request.signed_with(other),
            "{request:?}"
        );
    }
    let a = webhook_status(&daemon, "tenantA").await;
    assert_eq!(
        (a["delivered_seq"].as_i64(), a["lag_events"].as_i64()),
        (Some(0), Some(2)),
        "{a}"
    );
    assert!(
        a["last_error"].as_str().unwrap().contains("HTTP 503"),
        "{a}"
    );
    let (code, table, _) = daemon.config.cli(&["status"]);
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("WEBHOOKS"), "{table}");
    assert!(
        table.contains("tenant tenantA") && table.contains("delivered 0/2  lag 2"),
        "{table}"
    );
    assert!(table.contains("HTTP 503 Service Unavailable"), "{table}");
    assert!(
        table.contains("tenant tenantB") && table.contains("delivered 3/3  lag 0"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_added_or_changed_by_sighup_takes_effect_from_the_outbox_head() {
    let receiver = Receiver::start().await;
    let mut config = config("wh_sighup", Backend::Sqlite, &receiver, &[]);
    config.tenants = vec![("tenantA".into(), "Tenant A".into())];
    let daemon = Daemon::start(config).await;
    let store = store(&daemon);
    append(&store, "tenantA", 2);
    assert!(webhook_status(&daemon, "tenantA").await.is_null());

    let mut daemon = daemon;
    daemon.config.webhooks = vec![("tenantA".into(), receiver.url.clone(), SECRET.into())];
    daemon.reload();
    eventually("the webhook to start at the head", WITHIN, || async {
        let status = webhook_status(&daemon, "tenantA").await;
        (status["delivered_seq"] == 2 && status["configured"] == true).then_some(())
    })
    .await;
    append(&store, "tenantA", 1);
    receiver.wait_for_acknowledged("tenantA", 1, WITHIN).await;
    assert_eq!(
        receiver.acknowledged("tenantA"),
        ["tenantA-3"],
        "events before the webhook are the feed's"
    );
    assert!(receiver.received()[0].signed_with(SECRET));

    // A new secret signs the next event.
    daemon.config.webhooks = vec![("tenantA".into(), receiver.url.clone(), OTHER_SECRET.into())];
    daemon.reload();
    eventually("the reload", WITHIN, || async {
        (daemon
            .metric("openmeet_as_config_reloads_total", "outcome=\"applied\"")
            .await
            >= 2.0)
            .then_some(())
    })
    .await;
    append(&store, "tenantA", 1);
    receiver.wait_for_acknowledged("tenantA", 2, WITHIN).await;
    let last = receiver.received().pop().unwrap();
    assert_eq!(last.id, "tenantA-4");
    assert!(
        last.signed_with(OTHER_SECRET) && !last.signed_with(SECRET),
        "{last:?}"
    );
    // Both secrets were in force at some point: neither may be in the log.
    daemon.config.extra_secrets.push(SECRET.into());
}

/// Two replicas on one PostgreSQL, each with the same webhook: every event is acknowledged once,
/// in order, and no two requests of the tenant are ever in flight at once — also while the first
/// answer is held (the other replica polls meanwhile) and while the receiver refuses some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_deliver_one_event_twice_at_once() {
    let receiver = Receiver::start().await;
    let first = config(
        "wh_replicas",
        Backend::Postgres,
        &receiver,
        &[("tenantA", SECRET)],
    );
    let mut second = DaemonConfig::new("wh_replicas", None);
    second.database_url = first.database_url.clone();
    second.tenants = first.tenants.clone();
    second.webhooks = first.webhooks.clone();
    second.extra_yaml = first.extra_yaml.clone();
    second.extra_secrets = first.extra_secrets.clone();
    second.tokens = first.tokens.clone();
    let one = Daemon::start(first).await;
    let two = Daemon::start(second).await;
    started(&one, "tenantA").await;
    receiver.hold();
    let store = store(&one);
    append(&store, "tenantA", 1);
    receiver.wait_for_requests(1, WITHIN).await;
    // Both replicas poll every second; while the answer waits, neither may send it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
    receiver.answer("tenantA", 500);
    receiver.release();
    receiver.wait_for_requests(2, WITHIN).await;
    receiver.answer("tenantA", 200);
    let seqs = [vec![1], append(&store, "tenantA", 11)].concat();
    receiver
        .wait_for_acknowledged("tenantA", 12, Duration::from_secs(60))
        .await;
    assert_eq!(receiver.acknowledged("tenantA"), ids("tenantA", seqs));
    assert!(
        receiver.overlapped().is_empty(),
        "two requests of one tenant were in flight at once"
    );
    assert!(receiver.received().iter().all(|r| r.signed_with(SECRET)));
    let delivered = one
        .metric(
            "openmeet_as_webhook_deliveries_total",
            "outcome=\"delivered\"",
        )
        .await
        + two
            .metric(
                "openmeet_as_webhook_deliveries_total",
                "outcome=\"delivered\"",
            )
            .await;
    assert_eq!(
        delivered, 12.0,
        "each event acknowledged once, whichever replica sent it"
    );
}
