#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Reports (DESIGN §7.3) where a real Synapse cannot be made to fail (the happy path and the
//! refusals are in `tests/e2e/reports.rs`), on both backends with the fake homeserver: Synapse
//! away when the reporter's report is forwarded (stored, answered `200 {}`, then reported by the
//! tenant bot through `forward_report`); Synapse refusing the forward (its answer passed back,
//! kept in `forward_error`, never retried); Synapse away before the reporter could be checked
//! (nothing stored). `GET reports` pages by id and reaches only its own tenant.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Backend;
use support::daemon::{Daemon, DaemonConfig};
use support::fake_homeserver::{Endpoint, FakeHomeserver, Fault};
use support::matrix_client::{encode, request};

const SERVER: &str = "fake.openmeet.test";
const HUMAN_TOKEN: &str = "syt_reporter_token_0123456789";

on_both_backends!(
    a_report_synapse_could_not_take_is_kept_and_reported_by_the_tenant_bot,
    a_forward_synapse_refuses_is_answered_with_its_refusal_and_not_retried,
    a_report_that_cannot_be_checked_is_not_stored,
);

struct Setup {
    fake: FakeHomeserver,
    daemon: Daemon,
    reporter: String,
    room_id: String,
    event_id: String,
}

async fn setup(backend: Backend, name: &str) -> Setup {
    let mut config = DaemonConfig::new(name, backend.database_url(name));
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.tenants = vec![
        ("tenantA".into(), "Tenant A".into()),
        ("tenantB".into(), "Tenant B".into()),
    ];
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    let reporter = fake.add_user("reporter", HUMAN_TOKEN);
    let body = json!({"name": "Reported Chat", "visibility": "private",
        "members": [{"user_id": reporter, "role": "participant"}]});
    let job = daemon.declare("tenantA", "event", "reported", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    let path = format!("/_matrix/client/v3/rooms/{}/join", encode(&room_id));
    let (status, answer) = request(
        &fake.url,
        Some(HUMAN_TOKEN),
        Method::POST,
        &path,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let event_id = fake.post_message(&room_id, "@someone:fake.openmeet.test", None);
    Setup {
        fake,
        daemon,
        reporter,
        room_id,
        event_id,
    }
}

/// The reporter's report of the event, sent to the daemon as the proxy would.
async fn report(setup: &Setup, body: Value) -> (StatusCode, Value) {
    let path = format!(
        "/_matrix/client/v3/rooms/{}/report/{}",
        encode(&setup.room_id),
        encode(&setup.event_id)
    );
    let url = format!(
        "http://127.0.0.1:{}",
        setup.daemon.config.listening_appservice_port()
    );
    request(&url, Some(HUMAN_TOKEN), Method::POST, &path, Some(body)).await
}

async fn reports(daemon: &Daemon, tenant: &str, query: &str) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token(tenant);
    let path = format!("/v1/tenants/{tenant}/reports{query}");
    daemon
        .platform(Method::GET, &path, Some(&token), None)
        .await
}

/// The report requests the fake got: (the asserted or token user, body, status).
fn reports_seen(fake: &FakeHomeserver) -> Vec<(Option<String>, Value, u16)> {
    fake.requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::Report)
        .map(|r| (r.user_id, r.body, r.status))
        .collect()
}

async fn a_report_synapse_could_not_take_is_kept_and_reported_by_the_tenant_bot(backend: Backend) {
    let setup = setup(backend, "reports_away").await;
    setup
        .fake
        .fail_next(Endpoint::Report, 1, Fault::Status(503));
    let (status, answer) = report(&setup, json!({"reason": "spam"})).await;
    assert_eq!(
        (status, &answer),
        (StatusCode::OK, &json!({})),
        "{}",
        setup.daemon.logs()
    );

    let listed = support::eventually(
        "the tenant bot's report",
        Duration::from_secs(30),
        || async {
            let (_, page) = reports(&setup.daemon, "tenantA", "").await;
            let report = page["reports"][0].clone();
            report["forwarded_at"].is_string().then_some(report)
        },
    )
    .await;
    assert_eq!(listed["reporter"], setup.reporter.as_str());
    assert_eq!(listed["event"]["content"]["body"], "hello");
    assert_eq!(listed["forward_error"], Value::Null);
    let seen = reports_seen(&setup.fake);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].0.as_deref(), seen[0].2),
        (None, 503),
        "the reporter's own, refused"
    );
    assert_eq!(
        seen[1].0.as_deref(),
        Some("@openmeet-bot-tenanta:fake.openmeet.test")
    );
    assert_eq!(
        seen[1].1["reason"],
        format!("Reported by {} through OpenMeet: spam", setup.reporter)
    );
    assert_eq!(seen[1].2, 200);
    assert!(
        !setup.daemon.logs().contains(HUMAN_TOKEN),
        "the reporter's token is in the log"
    );

    // Paging and tenants: one report, after it none, another tenant sees none of it.
    let id = listed["id"].as_i64().unwrap();
    let (_, later) = reports(&setup.daemon, "tenantA", &format!("?after={id}")).await;
    assert_eq!(later, json!({"reports": []}));
    let (status, other) = reports(&setup.daemon, "tenantB", "").await;
    assert_eq!((status, other), (StatusCode::OK, json!({"reports": []})));
    let token_b = setup.daemon.config.tenant_token("tenantB");
    let (status, _) = setup
        .daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/reports",
            Some(&token_b),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, bad) = reports(&setup.daemon, "tenantA", "?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("limit"), "{bad}");
}

async fn a_forward_synapse_refuses_is_answered_with_its_refusal_and_not_retried(backend: Backend) {
    let setup = setup(backend, "reports_refused").await;
    setup.fake.fail_next(
        Endpoint::Report,
        1,
        Fault::RateLimited {
            retry_after_ms: 2000,
        },
    );
    let (status, answer) = report(&setup, json!({"reason": "spam", "score": -50})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["errcode"], "M_LIMIT_EXCEEDED");
    assert_eq!(answer["retry_after_ms"], 2000);
    let (_, page) = reports(&setup.daemon, "tenantA", "").await;
    let [listed] = &page["reports"].as_array().unwrap()[..] else {
        panic!("one report: {page}");
    };
    assert_eq!(listed["score"], -50);
    assert!(listed["forwarded_at"].is_string(), "{listed}");
    assert!(
        listed["forward_error"].as_str().unwrap().starts_with("429"),
        "{listed}"
    );
    assert_eq!(reports_seen(&setup.fake).len(), 1);
}

async fn a_report_that_cannot_be_checked_is_not_stored(backend: Backend) {
    let setup = setup(backend, "reports_unchecked").await;
    // The membership check (the watchdog's own whoami would take a fault meant for whoami).
    setup
        .fake
        .fail_next(Endpoint::GetState, 1, Fault::Status(502));
    let (status, answer) = report(&setup, json!({"reason": "spam"})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(answer["errcode"], "M_UNKNOWN");
    let (_, page) = reports(&setup.daemon, "tenantA", "").await;
    assert_eq!(page, json!({"reports": []}));
    assert!(reports_seen(&setup.fake).is_empty());
}

#[test]
fn the_test_proxy_sends_only_the_three_report_paths_to_the_daemon() {
    use support::path_proxy::is_report_path;
    assert!(is_report_path("/_matrix/client/v3/rooms/!r:s/report/$e"));
    assert!(is_report_path("/_matrix/client/v3/rooms/!r:s/report"));
    assert!(is_report_path("/_matrix/client/v3/users/@u:s/report"));
    assert!(!is_report_path(
        "/_matrix/client/v3/rooms/!r:s/send/m.room.message/1"
    ));
    assert!(!is_report_path("/_matrix/client/v3/rooms//report"));
    assert!(!is_report_path("/_matrix/client/r0/rooms/!r:s/report/$e"));
}
