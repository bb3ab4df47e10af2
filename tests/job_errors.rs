#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! How jobs meet the errors a real Synapse will not produce on demand — rate limits, 5xx,
//! timeouts, missing power, a refused token — against the fake homeserver (`support/fake_homeserver.rs`).
//! The happy paths run against the real Synapse in `tests/e2e/`.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::daemon::{Daemon, DaemonConfig};
use support::fake_homeserver::{Endpoint, FakeHomeserver, Fault};

const SERVER: &str = "fake.openmeet.test";

/// A fake homeserver and a ready daemon using it (v10 rooms: the fake has no capabilities API).
async fn setup(name: &str, extra_yaml: &str, timeout_seconds: u64) -> (FakeHomeserver, Daemon) {
    let mut config = DaemonConfig::new(name, None);
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.homeserver_timeout_seconds = timeout_seconds;
    // While the token is refused the daemon asks once per interval: keep the tests quick.
    config.check_interval_seconds = 1;
    config.extra_yaml = extra_yaml.into();
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    (fake, daemon)
}

/// Declares a room for tenantA; returns its job id.
async fn declare(daemon: &Daemon, slug: &str) -> i64 {
    let token = daemon.config.tenant_token("tenantA");
    let body = json!({"name": "Chat", "visibility": "private", "members": [{"user_id": format!("@alice:{SERVER}"), "role": "host"}]});
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            &format!("/v1/tenants/tenantA/rooms/event/{slug}"),
            Some(&token),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["job"]["id"].as_i64().unwrap()
}

async fn job(daemon: &Daemon, id: i64) -> Value {
    let token = daemon.config.tenant_token("tenantA");
    daemon
        .platform(Method::GET, &format!("/v1/jobs/{id}"), Some(&token), None)
        .await
        .1
}

fn create_room_requests(fake: &FakeHomeserver) -> Vec<support::fake_homeserver::Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::CreateRoom)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_job_waits_retry_after_ms_then_succeeds() {
    let (fake, daemon) = setup("ratelimit", "", 10).await;
    fake.fail_next(
        Endpoint::CreateRoom,
        1,
        Fault::RateLimited {
            retry_after_ms: 1500,
        },
    );
    let id = declare(&daemon, "limited").await;
    let done = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["attempts"], 1,
        "a rate limit must not spend an attempt: {done}"
    );
    let creates = create_room_requests(&fake);
    assert_eq!(creates.len(), 2);
    let waited = creates[1].at.duration_since(creates[0].at);
    assert!(
        waited >= Duration::from_millis(1500),
        "retried after {waited:?}, before retry_after_ms"
    );
    assert_eq!(
        daemon
            .metric("openmeet_as_rate_limit_waits_total", "")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_timeouts_back_off_then_succeed_with_one_room() {
    let (fake, daemon) = setup("transient", "", 1).await;
    fake.fail_next(Endpoint::CreateRoom, 1, Fault::Status(502));
    // The homeserver does the work but answers after our timeout: the retry must adopt that room.
    fake.fail_next(
        Endpoint::CreateRoom,
        1,
        Fault::Timeout(Duration::from_secs(3)),
    );
    let id = declare(&daemon, "flaky").await;
    let done = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", daemon.logs());
    assert_eq!(done["attempts"], 3, "{done}");
    let creates = create_room_requests(&fake);
    assert!(
        creates[1].at.duration_since(creates[0].at) >= Duration::from_millis(500),
        "no backoff after the 502"
    );
    let made: Vec<_> = creates
        .iter()
        .filter(|r| r.fault.is_none() || r.fault == Some(Fault::Timeout(Duration::from_secs(3))))
        .collect();
    assert_eq!(
        made.len(),
        2,
        "the timed-out create and the retry that found the alias taken: {creates:?}"
    );
    let room_of_timed_out = fake
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::DirectoryAlias)
        .count();
    assert!(
        room_of_timed_out >= 1,
        "the retry did not resolve the alias to adopt the room"
    );
    let (_, room) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/rooms/event/flaky",
            Some(&daemon.config.tenant_token("tenantA")),
            None,
        )
        .await;
    assert_eq!(room["room_id"], done["result"]["room_id"]);
    assert_eq!(
        room["room_id"], "!fake1:fake.openmeet.test",
        "a second room was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_power_fails_the_job_with_a_fix_sentence() {
    let (fake, daemon) = setup("forbidden", "", 10).await;
    fake.fail_next(
        Endpoint::CreateRoom,
        1,
        Fault::Forbidden("You don't have permission to do that"),
    );
    let id = declare(&daemon, "forbidden").await;
    let done = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["last_error"].as_str().unwrap();
    assert!(
        error.contains("power level 100") && error.contains("retry"),
        "no fix sentence: {error}"
    );
    let (_, room) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/rooms/event/forbidden",
            Some(&daemon.config.tenant_token("tenantA")),
            None,
        )
        .await;
    assert_eq!(
        (room["status"].as_str(), room["last_error"].as_str()),
        (Some("failed"), Some(error))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_pauses_jobs_and_readiness_until_it_is_accepted_again() {
    let (fake, daemon) = setup("token", "", 10).await;
    fake.set_token_accepted(false);
    let id = declare(&daemon, "paused").await;
    daemon.wait_ready(false, Duration::from_secs(30)).await;
    // Paused, not failed and not dead, for as long as the token is refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let paused = job(&daemon, id).await;
    assert_eq!(
        (paused["status"].as_str(), paused["attempts"].as_i64()),
        (Some("queued"), Some(0)),
        "{paused}"
    );
    assert!(
        paused["last_error"]
            .as_str()
            .unwrap()
            .contains("M_UNKNOWN_TOKEN"),
        "{paused}"
    );
    assert!(
        daemon
            .logs()
            .contains("regenerate it with `openmeet-appservice registration`"),
        "no fix in the logs"
    );

    fake.set_token_accepted(true);
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    let done = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_keeps_failing_is_dead_after_its_attempts() {
    let (fake, daemon) = setup("dead", "jobs:\n  max_attempts: 2\n", 10).await;
    fake.fail_next(Endpoint::CreateRoom, 5, Fault::Status(500));
    let id = declare(&daemon, "doomed").await;
    let done = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_i64()),
        (Some("dead"), Some(2)),
        "{done}"
    );
    assert!(
        done["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{done}"
    );
    assert_eq!(create_room_requests(&fake).len(), 2);
}

/// Two replicas raced: the other one's `createRoom` won, and this one's is answered 409 (as a
/// proxy or Synapse's own conflict handling may answer it). The room is adopted, not failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_from_create_room_adopts_the_room_the_other_replica_made() {
    let (fake, daemon) = setup("conflict", "", 10).await;
    let as_token = daemon.config.tokens.as_token.clone();
    let bot = format!("@openmeet-bot-tenanta:{SERVER}");
    let (status, answer) = support::matrix_client::request(
        &fake.url,
        Some(&as_token),
        Method::POST,
        "/_matrix/client/v3/register",
        Some(json!({"type": "m.login.application_service", "username": "openmeet-bot-tenanta"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, other) = support::matrix_client::request(
        &fake.url,
        Some(&as_token),
        Method::POST,
        &format!(
            "/_matrix/client/v3/createRoom?user_id={}",
            support::matrix_client::encode(&bot)
        ),
        Some(json!({"room_alias_name": "event-raced-tenantA", "room_version": "10"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    fake.fail_next(Endpoint::CreateRoom, 1, Fault::Status(409));
    let id = declare(&daemon, "raced").await;
    let done = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", daemon.logs());
    assert_eq!(done["result"]["room_id"], other["room_id"], "{done}");
    assert_eq!(
        create_room_requests(&fake).len(),
        2,
        "one by the test, one answered 409"
    );
}
