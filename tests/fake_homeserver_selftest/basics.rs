//! What the fake answers without faults: versions and whoami, the as_token check, register,
//! ping, display names, anything else recorded as unrecognized, and closing its connections.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    AS_TOKEN, BOT, CREATE_ROOM, SENDER, VERSIONS, WHOAMI, acting, anonymous, fake, register, send,
    sender,
};
use crate::support::fake_homeserver::Endpoint;
use crate::support::matrix_client::{encode, http_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_answer_without_a_token_and_whoami_names_the_sender_or_the_asserted_user() {
    let hs = fake().await;
    let versions = anonymous(&hs, VERSIONS).await;
    assert_eq!(versions.status, StatusCode::OK);
    assert_eq!(versions.body["versions"][0], "v1.1");
    assert_eq!(versions.body["versions"][11], "v1.12");
    assert_eq!(sender(&hs).get(WHOAMI).await.body["user_id"], SENDER);

    let unregistered = acting(&hs, BOT).get(WHOAMI).await;
    assert_eq!(
        unregistered.status,
        StatusCode::FORBIDDEN,
        "{unregistered:?}"
    );
    assert_eq!(unregistered.errcode(), "M_FORBIDDEN");
    register(&hs, "openmeet-bot-tenanta").await;
    assert_eq!(acting(&hs, BOT).get(WHOAMI).await.body["user_id"], BOT);

    let recorded = hs.requests().pop().unwrap();
    assert_eq!(recorded.endpoint, Endpoint::WhoAmI);
    assert_eq!(
        recorded.user_id.as_deref(),
        Some(BOT),
        "?user_id= is recorded decoded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_as_token_are_refused_as_synapse_does() {
    let hs = fake().await;
    let missing = anonymous(&hs, WHOAMI).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.errcode(), "M_MISSING_TOKEN");
    let url = format!("{}{WHOAMI}", hs.url);
    let wrong = send(http_client(), &url, Some("nope"), None, Method::GET, None);
    let wrong = wrong.await.unwrap();
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.errcode(), "M_UNKNOWN_TOKEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_creates_the_user_once_then_answers_user_in_use() {
    let hs = fake().await;
    let first = register(&hs, "openmeet-bot-tenanta").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["user_id"], BOT);
    let again = register(&hs, "openmeet-bot-tenanta").await;
    assert_eq!(
        (again.status, again.errcode()),
        (StatusCode::BAD_REQUEST, "M_USER_IN_USE")
    );
    let sender = register(&hs, "openmeet-bot").await;
    assert_eq!(
        sender.errcode(),
        "M_USER_IN_USE",
        "the sender exists from the start"
    );
    let upper = register(&hs, "Openmeet-Bot-X").await;
    assert_eq!(
        upper.errcode(),
        "M_INVALID_USERNAME",
        "localparts are lowercase"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_a_duration_without_calling_back() {
    let hs = fake().await;
    let path = "/_matrix/client/v1/appservice/openmeet-test/ping";
    let answer = sender(&hs)
        .post(path, json!({"transaction_id": "t1"}))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, json!({"duration_ms": 1}));
    assert_eq!(hs.count(Endpoint::Ping), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_can_set_its_own_display_name_only() {
    let hs = fake().await;
    register(&hs, "openmeet-bot-tenanta").await;
    let path = format!("/_matrix/client/v3/profile/{}/displayname", encode(BOT));
    let name = json!({"displayname": "Tenant A"});
    let as_sender = sender(&hs).put(&path, name.clone()).await;
    assert_eq!(as_sender.status, StatusCode::FORBIDDEN);
    assert_eq!(
        acting(&hs, BOT).put(&path, name.clone()).await.status,
        StatusCode::OK
    );
    assert_eq!(sender(&hs).get(&path).await.body, name);
    assert_eq!(hs.count(Endpoint::Profile), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_else_is_unrecognized_and_recorded_as_other() {
    let hs = fake().await;
    let sync = sender(&hs).get("/_matrix/client/v3/sync").await;
    assert_eq!(
        (sync.status, sync.errcode()),
        (StatusCode::NOT_FOUND, "M_UNRECOGNIZED")
    );
    assert_eq!(hs.count(Endpoint::Other), 1);
    let wrong_method = sender(&hs).delete(CREATE_ROOM).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);

    let broken = http_client()
        .post(format!("{}{CREATE_ROOM}", hs.url))
        .header("authorization", format!("Bearer {AS_TOKEN}"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&broken.bytes().await.unwrap()).unwrap();
    assert_eq!(body["errcode"], "M_NOT_JSON");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_it_closes_even_kept_alive_connections() {
    let hs = fake().await;
    let client = http_client();
    let url = format!("{}{VERSIONS}", hs.url);
    send(client.clone(), &url, None, None, Method::GET, None)
        .await
        .unwrap();
    drop(hs);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let error = client
        .get(&url)
        .send()
        .await
        .expect_err("nobody answers any more");
    assert!(error.is_connect() || error.is_request(), "{error}");
}
