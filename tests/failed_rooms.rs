#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! A room shows how its last job ended (DESIGN §7.1): a room whose job ends `failed` or `dead`
//! reads `status: failed` with the error, `GET /v1/status` and `status` list both kinds, and an
//! identical PUT or a repeated DELETE queues a fresh job instead of answering with the finished
//! one. Failures come from the fake homeserver (a 403 or a 500 on demand), on both backends.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Backend;
use support::daemon::{Daemon, DaemonConfig, Tokens};
use support::fake_homeserver::{Endpoint, FakeHomeserver, Fault};

const SERVER: &str = "fake.openmeet.test";

on_both_backends!(failed_and_dead_rooms_show_it_and_are_tried_again_on_request);

async fn setup(name: &str, backend: Backend, admin_token: &str) -> (FakeHomeserver, Daemon) {
    let mut config = DaemonConfig::new(name, backend.database_url(name));
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.extra_yaml = format!("jobs:\n  max_attempts: 1\nadmin_token: {admin_token}\n");
    config.extra_secrets = vec![admin_token.to_owned()];
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    (fake, daemon)
}

async fn finished(daemon: &Daemon, id: i64) -> Value {
    daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await
}

async fn delete(daemon: &Daemon, slug: &str) -> i64 {
    let token = daemon.config.tenant_token("tenantA");
    let path = format!("/v1/tenants/tenantA/rooms/event/{slug}");
    let (status, answer) = daemon
        .platform(Method::DELETE, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["job"]["id"].as_i64().unwrap()
}

async fn failed_and_dead_rooms_show_it_and_are_tried_again_on_request(backend: Backend) {
    let admin = format!("adm{}", Tokens::fresh().as_token);
    let (fake, daemon) = setup("failed_rooms", backend, &admin).await;
    let body = json!({"name": "Chat", "visibility": "private"});

    // A permanent refusal: the job fails.
    fake.fail_next(Endpoint::CreateRoom, 1, Fault::Forbidden("not allowed"));
    let refused = daemon
        .put_room("tenantA", "event", "refused", body.clone())
        .await;
    let refused_job = finished(&daemon, refused).await;
    assert_eq!(refused_job["status"], "failed", "{refused_job}");
    // Attempts spent on transient errors: the job is dead.
    fake.fail_next(Endpoint::CreateRoom, 1, Fault::Status(500));
    let flaky = daemon
        .put_room("tenantA", "event", "flaky", body.clone())
        .await;
    let flaky_job = finished(&daemon, flaky).await;
    assert_eq!(flaky_job["status"], "dead", "{flaky_job}");

    // GET says so, with the job's error.
    for (slug, job) in [("refused", &refused_job), ("flaky", &flaky_job)] {
        let room = daemon.get_room("tenantA", "event", slug).await;
        assert_eq!(room["status"], "failed", "{slug}: {room}");
        assert_eq!(room["last_error"], job["last_error"], "{slug}: {room}");
    }

    // The status endpoint and the command list both, newest first.
    let (status, report) = daemon
        .platform(Method::GET, "/v1/status", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let tenant = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "tenantA")
        .unwrap()
        .clone();
    assert_eq!(tenant["queue"]["failed"], 1, "{tenant:#}");
    assert_eq!(tenant["queue"]["dead"], 1, "{tenant:#}");
    let listed: Vec<(i64, &str, &str)> = tenant["failed_jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("no failed_jobs: {tenant:#}"))
        .iter()
        .map(|job| {
            (
                job["id"].as_i64().unwrap(),
                job["status"].as_str().unwrap(),
                job["room"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (flaky, "dead", "tenantA/event/flaky"),
            (refused, "failed", "tenantA/event/refused")
        ],
        "{tenant:#}"
    );
    let (code, table, stderr) = daemon.config.cli(&["status"]);
    assert_eq!(code, 0, "{stderr}");
    for (id, job) in [(refused, &refused_job), (flaky, &flaky_job)] {
        assert!(table.contains(&format!("job {id} ")), "{table}");
        assert!(
            table.contains(job["last_error"].as_str().unwrap()),
            "{table}"
        );
    }

    // An identical PUT tries again (the homeserver lets it through now).
    let again = daemon
        .put_room("tenantA", "event", "refused", body.clone())
        .await;
    assert_ne!(
        again, refused,
        "the identical PUT answered with the failed job"
    );
    assert_eq!(finished(&daemon, again).await["status"], "succeeded");
    let room = daemon.get_room("tenantA", "event", "refused").await;
    assert_eq!(
        (&room["status"], &room["last_error"]),
        (&json!("ready"), &Value::Null),
        "{room}"
    );
    // And once it succeeded, the same PUT queues nothing new.
    assert_eq!(
        daemon.put_room("tenantA", "event", "refused", body).await,
        again
    );

    // A failed teardown: the room stays deleted and shows why; a repeated DELETE tries again.
    fake.fail_next(
        Endpoint::DirectoryAlias,
        1,
        Fault::Forbidden("not your alias"),
    );
    let teardown = delete(&daemon, "flaky").await;
    let teardown_job = finished(&daemon, teardown).await;
    assert_eq!(teardown_job["status"], "failed", "{teardown_job}");
    let room = daemon.get_room("tenantA", "event", "flaky").await;
    assert_eq!(room["status"], "deleted", "{room}");
    assert_eq!(room["last_error"], teardown_job["last_error"], "{room}");
    let again = delete(&daemon, "flaky").await;
    assert_ne!(
        again, teardown,
        "the repeated DELETE answered with the failed job"
    );
    assert_eq!(finished(&daemon, again).await["status"], "succeeded");
    let room = daemon.get_room("tenantA", "event", "flaky").await;
    assert_eq!(
        (&room["status"], &room["last_error"]),
        (&json!("deleted"), &Value::Null),
        "{room}"
    );
    assert_eq!(
        delete(&daemon, "flaky").await,
        again,
        "a finished teardown is the answer"
    );
    drop(fake);
}
