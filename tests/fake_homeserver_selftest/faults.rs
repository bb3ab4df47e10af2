//! The faults the fake injects: each answers as documented and then goes away, taken in order
//! by their endpoint only.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{
    AS_TOKEN, CREATE_ROOM, VERSIONS, WHOAMI, alias_path, anonymous, fake, room_path, send, sender,
    state_path, statuses,
};
use crate::support::fake_homeserver::{Endpoint, Fault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after_ms_then_recovers() {
    let hs = fake().await;
    let fault = Fault::RateLimited {
        retry_after_ms: 1500,
    };
    hs.fail_next(Endpoint::CreateRoom, 2, fault.clone());
    let body = json!({"room_alias_name": "event-x-tenantA"});
    for _ in 0..2 {
        let limited = sender(&hs).post(CREATE_ROOM, body.clone()).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.errcode(), "M_LIMIT_EXCEEDED");
        assert_eq!(limited.body["retry_after_ms"], 1500);
        assert_eq!(
            limited.retry_after.as_deref(),
            Some("2"),
            "whole seconds, rounded up"
        );
    }
    let created = sender(&hs).post(CREATE_ROOM, body).await;
    assert_eq!(
        created.status,
        StatusCode::OK,
        "the third call is not limited"
    );
    assert_eq!(
        created.room_id(),
        "!fake1:fake.test",
        "the limited calls created nothing"
    );
    assert_eq!(statuses(&hs, Endpoint::CreateRoom), [429, 429, 200]);
    let faults: Vec<_> = hs.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(faults, [Some(fault.clone()), Some(fault), None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_fault_answers_that_status_and_changes_nothing() {
    let hs = fake().await;
    let room = sender(&hs).post(CREATE_ROOM, json!({})).await.room_id();
    hs.fail_next(Endpoint::SetState, 1, Fault::Status(503));
    let path = state_path(&room, "m.room.topic", "");
    let failed = sender(&hs).put(&path, json!({"topic": "one"})).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.errcode(), "M_UNKNOWN");
    let read = sender(&hs).get(&path).await;
    assert_eq!(
        read.status,
        StatusCode::NOT_FOUND,
        "the faulted PUT stored nothing"
    );
    let stored = sender(&hs).put(&path, json!({"topic": "two"})).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(sender(&hs).get(&path).await.body, json!({"topic": "two"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_fault_delays_the_answer_but_does_the_work() {
    let hs = fake().await;
    hs.fail_next(
        Endpoint::CreateRoom,
        2,
        Fault::Timeout(Duration::from_millis(800)),
    );
    let started = Instant::now();
    let slow = sender(&hs).post(CREATE_ROOM, json!({})).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "answered after {took:?}"
    );
    assert_eq!(slow.status, StatusCode::OK);

    // A client that gives up first sees a timeout, yet the room exists: the case idempotency is for.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let body = json!({"room_alias_name": "impatient"});
    let url = format!("{}{CREATE_ROOM}", hs.url);
    let attempt = send(
        impatient,
        &url,
        Some(AS_TOKEN),
        None,
        Method::POST,
        Some(body),
    );
    let error = attempt.await.expect_err("the impatient client times out");
    assert!(error.is_timeout(), "{error}");
    let resolved = sender(&hs).get(&alias_path("#impatient:fake.test")).await;
    assert_eq!(
        resolved.status,
        StatusCode::OK,
        "the room was created anyway"
    );
    assert_eq!(statuses(&hs, Endpoint::CreateRoom), [200, 200]);

    let started = Instant::now();
    sender(&hs).post(CREATE_ROOM, json!({})).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "only two answers were late"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_rejection_answers_unknown_token_until_restored() {
    let hs = fake().await;
    hs.set_token_accepted(false);
    for path in [WHOAMI, VERSIONS, CREATE_ROOM] {
        let answer = sender(&hs).get(path).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(answer.errcode(), "M_UNKNOWN_TOKEN", "{path}");
        assert_eq!(answer.body["soft_logout"], false, "{path}");
    }
    let versions = anonymous(&hs, VERSIONS).await;
    assert_eq!(
        versions.status,
        StatusCode::OK,
        "versions without a token still answer"
    );
    hs.set_token_accepted(true);
    assert_eq!(sender(&hs).get(WHOAMI).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_token_fault_rejects_only_the_next_request() {
    let hs = fake().await;
    hs.fail_next(Endpoint::WhoAmI, 1, Fault::UnknownToken);
    let rejected = sender(&hs).get(WHOAMI).await;
    assert_eq!(rejected.status, StatusCode::UNAUTHORIZED);
    assert_eq!(rejected.errcode(), "M_UNKNOWN_TOKEN");
    assert_eq!(sender(&hs).get(WHOAMI).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_fault_answers_m_forbidden_with_its_message() {
    let hs = fake().await;
    let room = sender(&hs).post(CREATE_ROOM, json!({})).await.room_id();
    let message = "You don't have permission to invite users";
    hs.fail_next(Endpoint::Invite, 1, Fault::Forbidden(message));
    let invite = json!({"user_id": "@alice:fake.test"});
    let refused = sender(&hs)
        .post(&room_path(&room, "invite"), invite.clone())
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body,
        json!({"errcode": "M_FORBIDDEN", "error": message})
    );
    let invited = sender(&hs).post(&room_path(&room, "invite"), invite).await;
    assert_eq!(invited.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_taken_in_order_by_their_endpoint_only() {
    let hs = fake().await;
    hs.fail_next(Endpoint::WhoAmI, 1, Fault::Status(502));
    hs.fail_next(
        Endpoint::WhoAmI,
        1,
        Fault::RateLimited { retry_after_ms: 10 },
    );
    let versions = sender(&hs).get(VERSIONS).await;
    assert_eq!(
        versions.status,
        StatusCode::OK,
        "other endpoints are not affected"
    );
    for _ in 0..3 {
        sender(&hs).get(WHOAMI).await;
    }
    assert_eq!(statuses(&hs, Endpoint::WhoAmI), [502, 429, 200]);
    assert_eq!(hs.count(Endpoint::WhoAmI), 3);
    assert_eq!(hs.count(Endpoint::Versions), 1);
}
