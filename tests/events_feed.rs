#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The events feed over HTTP (`GET /v1/tenants/{t}/events`, DESIGN §7.4) on both backends, with
//! the fake homeserver making a job die on demand: a declared room, a bot message, a mute, a dead
//! job and a DELETE each show up once, in order, with the ids the platform needs; `after` returns exactly
//! the newer events; a bad cursor is a 400 JSON error; a token reaches only its own tenant's feed.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Backend;
use support::daemon::{Daemon, DaemonConfig};
use support::fake_homeserver::{Endpoint, FakeHomeserver, Fault};

const SERVER: &str = "fake.openmeet.test";

on_both_backends!(the_feed_tells_each_change_once_in_order_and_pages_by_id);

async fn setup(backend: Backend) -> (FakeHomeserver, Daemon) {
    let mut config = DaemonConfig::new("events_feed", backend.database_url("events_feed"));
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.tenants = vec![
        ("tenantA".into(), "Tenant A".into()),
        ("tenantB".into(), "Tenant B".into()),
    ];
    config.extra_yaml = "jobs:\n  max_attempts: 1\n".into();
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    (fake, daemon)
}

/// A user of the fake homeserver (registered as an appservice registers its users).
async fn register(fake: &FakeHomeserver, daemon: &Daemon, localpart: &str) -> String {
    let (status, answer) = support::matrix_client::request(
        &fake.url,
        Some(&daemon.config.tokens.as_token),
        Method::POST,
        "/_matrix/client/v3/register",
        Some(json!({"type": "m.login.application_service", "username": localpart})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["user_id"].as_str().unwrap().to_owned()
}

/// `GET …/events?{query}` as `tenant`'s own token.
async fn feed(daemon: &Daemon, tenant: &str, query: &str) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token(tenant);
    let path = format!("/v1/tenants/{tenant}/events{query}");
    daemon
        .platform(Method::GET, &path, Some(&token), None)
        .await
}

fn ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_i64().unwrap())
        .collect()
}

async fn the_feed_tells_each_change_once_in_order_and_pages_by_id(backend: Backend) {
    let (fake, daemon) = setup(backend).await;
    let token = daemon.config.tenant_token("tenantA");
    let (status, empty) = feed(&daemon, "tenantA", "").await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(empty, json!({"events": [], "next_after": 0}));

    // A room made ready, a bot message in it, a job that dies, the room deleted.
    let body = json!({"name": "Launch Chat", "visibility": "private"});
    let created = daemon
        .declare("tenantA", "event", "launch", body.clone())
        .await;
    let room_id = created["result"]["room_id"].as_str().unwrap().to_owned();
    // Declaring the same again changes nothing and tells nothing.
    daemon
        .put_room("tenantA", "event", "launch", body.clone())
        .await;
    let path = "/v1/tenants/tenantA/rooms/event/launch/messages";
    let (status, answer) = daemon
        .platform(
            Method::POST,
            path,
            Some(&token),
            Some(json!({"body": "Doors open at 7"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let message = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(message["status"], "succeeded", "{message}");
    let muted = register(&fake, &daemon, "muted").await;
    let path = format!("/v1/tenants/tenantA/rooms/event/launch/mutes/{muted}");
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"reason": "spam"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let mute = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(mute["status"], "succeeded", "{mute}");
    fake.fail_next(Endpoint::CreateRoom, 1, Fault::Status(500));
    let flaky = daemon.put_room("tenantA", "event", "flaky", body).await;
    let dead = daemon.wait_for_job(flaky, &token).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    let (status, answer) = daemon
        .platform(
            Method::DELETE,
            "/v1/tenants/tenantA/rooms/event/launch",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let teardown = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(teardown["status"], "succeeded", "{teardown}");

    let (status, page) = feed(&daemon, "tenantA", "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let events = page["events"].as_array().unwrap();
    let told: Vec<(&str, &Value, &Value)> = events
        .iter()
        .map(|event| {
            (
                event["type"].as_str().unwrap(),
                &event["room"],
                &event["data"],
            )
        })
        .collect();
    let launch = json!({"kind": "event", "slug": "launch"});
    let flaky_room = json!({"kind": "event", "slug": "flaky"});
    let error = &dead["last_error"];
    assert_eq!(
        told,
        [
            ("room.ready", &launch, &json!({"room_id": room_id})),
            (
                "message.sent",
                &launch,
                &json!({"job": message["id"], "event_id": message["result"]["event_id"]})
            ),
            (
                "moderation.applied",
                &launch,
                &json!({"job": mute["id"], "action": "mute", "user_id": muted})
            ),
            (
                "room.failed",
                &flaky_room,
                &json!({"job": flaky, "error": error})
            ),
            (
                "job.dead",
                &flaky_room,
                &json!({"job": flaky, "kind": "ensure_room", "error": error})
            ),
            (
                "room.deleted",
                &launch,
                &json!({"room_id": room_id, "job": teardown["id"]})
            ),
        ],
        "{page:#}"
    );
    assert!(
        message["result"]["event_id"]
            .as_str()
            .unwrap()
            .starts_with('$')
    );
    assert_eq!(ids(&page), [1, 2, 3, 4, 5, 6]);
    assert_eq!(page["next_after"], 6);
    for event in events {
        assert_eq!(event["tenant"], "tenantA", "{event}");
        let at = event["at"].as_str().unwrap();
        assert!(at.ends_with('Z') && at.len() == 24, "{at}");
    }

    // `after` returns exactly the newer events; `limit` cuts the page.
    let (_, newer) = feed(&daemon, "tenantA", "?after=2").await;
    assert_eq!(
        (ids(&newer), &newer["next_after"]),
        (vec![3, 4, 5, 6], &json!(6))
    );
    assert_eq!(newer["events"][0], events[2]);
    let (_, none) = feed(&daemon, "tenantA", "?after=6").await;
    assert_eq!(none, json!({"events": [], "next_after": 6}));
    let (_, cut) = feed(&daemon, "tenantA", "?after=1&limit=2").await;
    assert_eq!((ids(&cut), &cut["next_after"]), (vec![2, 3], &json!(3)));

    // Another tenant has a feed of its own, still empty.
    let (status, other) = feed(&daemon, "tenantB", "").await;
    assert_eq!(
        (status, other),
        (StatusCode::OK, json!({"events": [], "next_after": 0}))
    );

    // A bad cursor or limit: 400 with a sentence naming the parameter.
    for (query, field) in [
        ("?after=-1", "after"),
        ("?after=abc", "after"),
        ("?after=3.5", "after"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?cursor=3", "cursor"),
    ] {
        let (status, error) = feed(&daemon, "tenantA", query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(error["code"], "invalid_input", "{query}: {error}");
        let sentence = error["error"].as_str().unwrap();
        assert!(
            sentence.starts_with(&format!("{field}: ")),
            "{query}: {sentence}"
        );
    }

    // A token reaches only its own tenant's feed.
    let path = "/v1/tenants/tenantA/events";
    let other_token = daemon.config.tenant_token("tenantB");
    let (status, error) = daemon
        .platform(Method::GET, path, Some(&other_token), None)
        .await;
    assert_eq!(
        (status, &error["code"]),
        (StatusCode::FORBIDDEN, &json!("forbidden")),
        "{error}"
    );
    let (status, error) = daemon.platform(Method::GET, path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{error}");
    drop(fake);
}
