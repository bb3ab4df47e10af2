#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Proves the fake homeserver (`support/fake_homeserver.rs`) does what its documentation says:
//! each fault answers as documented and then goes away, and the little state it keeps is consistent
//! enough for a daemon's jobs. Plain HTTP calls only, no daemon.

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::fake_homeserver::{Endpoint, FakeHomeserver, Fault};
use support::matrix_client::{encode, http_client};

const SERVER: &str = "fake.test";
const AS_TOKEN: &str = "as-token-for-the-fake";
const SENDER: &str = "@openmeet-bot:fake.test";
const BOT: &str = "@openmeet-bot-tenanta:fake.test";
const VERSIONS: &str = "/_matrix/client/versions";
const WHOAMI: &str = "/_matrix/client/v3/account/whoami";
const CREATE_ROOM: &str = "/_matrix/client/v3/createRoom";

async fn fake() -> FakeHomeserver {
    FakeHomeserver::start(SERVER, AS_TOKEN, "openmeet-bot").await
}

/// One answer: status, `Retry-After` header if any, JSON body (`Null` when not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Answer {
    fn errcode(&self) -> &str {
        self.body["errcode"].as_str().unwrap_or("")
    }

    fn room_id(&self) -> String {
        let room = self.body["room_id"].as_str();
        room.unwrap_or_else(|| panic!("no room_id in {self:?}"))
            .to_owned()
    }
}

/// Sends one request with `client`: `token` as bearer, `?user_id=` when `acting_as` is given.
async fn send(
    client: reqwest::Client,
    url: &str,
    token: Option<&str>,
    acting_as: Option<&str>,
    method: Method,
    body: Option<Value>,
) -> Result<Answer, reqwest::Error> {
    let query = acting_as.map_or(String::new(), |user| format!("?user_id={}", encode(user)));
    let mut request = client.request(method, format!("{url}{query}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        let request_body = request.header("content-type", "application/json");
        request = request_body.body(body.to_string());
    }
    let response = request.send().await?;
    let status = response.status();
    let retry_after = response.headers().get("retry-after");
    let retry_after = retry_after.map(|v| v.to_str().unwrap().to_owned());
    let body = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// Calls the fake as the appservice (as_token), as `user` or else as the sender.
struct As<'a> {
    hs: &'a FakeHomeserver,
    user: Option<&'a str>,
}

impl As<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}{path}", self.hs.url);
        let answer = send(http_client(), &url, Some(AS_TOKEN), self.user, method, body);
        answer.await.expect("the fake homeserver answers")
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    async fn state(&self, room: &str, kind: &str, key: &str) -> Answer {
        self.get(&state_path(room, kind, key)).await
    }
}

fn sender(hs: &FakeHomeserver) -> As<'_> {
    As { hs, user: None }
}

fn acting<'a>(hs: &'a FakeHomeserver, user: &'a str) -> As<'a> {
    As {
        hs,
        user: Some(user),
    }
}

/// Without any token.
async fn anonymous(hs: &FakeHomeserver, path: &str) -> Answer {
    let url = format!("{}{path}", hs.url);
    let answer = send(http_client(), &url, None, None, Method::GET, None);
    answer.await.unwrap()
}

async fn register(hs: &FakeHomeserver, localpart: &str) -> Answer {
    let body = json!({"type": "m.login.application_service", "username": localpart});
    sender(hs).post("/_matrix/client/v3/register", body).await
}

fn state_path(room: &str, kind: &str, key: &str) -> String {
    let (room, kind, key) = (encode(room), encode(kind), encode(key));
    format!("/_matrix/client/v3/rooms/{room}/state/{kind}/{key}")
}

fn room_path(room: &str, verb: &str) -> String {
    format!("/_matrix/client/v3/rooms/{}/{verb}", encode(room))
}

fn alias_path(alias: &str) -> String {
    format!("/_matrix/client/v3/directory/room/{}", encode(alias))
}

/// The statuses the requests to `endpoint` got, in order.
fn statuses(hs: &FakeHomeserver, endpoint: Endpoint) -> Vec<u16> {
    let requests = hs.requests().into_iter().filter(|r| r.endpoint == endpoint);
    requests.map(|r| r.status).collect()
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_room_then_state_roundtrip() {
    let hs = fake().await;
    let body = json!({
        "name": "Launch Chat",
        "topic": "Chat room for Launch",
        "preset": "public_chat",
        "room_alias_name": "event-launch-tenantA",
        "room_version": "11",
        "power_level_content_override": {"users": {SENDER: 100, "@host:fake.test": 100}},
        "initial_state": [{"type": "m.room.guest_access", "content": {"guest_access": "forbidden"}}],
    });
    let room = sender(&hs).post(CREATE_ROOM, body.clone()).await.room_id();
    assert_eq!(room, "!fake1:fake.test");

    let me = sender(&hs);
    let content = |kind: &'static str| {
        let me = &me;
        let room = &room;
        async move { me.state(room, kind, "").await.body }
    };
    assert_eq!(content("m.room.name").await, json!({"name": "Launch Chat"}));
    assert_eq!(
        content("m.room.topic").await["topic"],
        "Chat room for Launch"
    );
    assert_eq!(content("m.room.join_rules").await["join_rule"], "public");
    assert_eq!(
        content("m.room.guest_access").await["guest_access"],
        "forbidden"
    );
    let canonical = content("m.room.canonical_alias").await;
    assert_eq!(canonical["alias"], "#event-launch-tenantA:fake.test");
    let levels = content("m.room.power_levels").await;
    assert_eq!(levels["users"]["@host:fake.test"], 100);
    let missing = me.state(&room, "m.room.encryption", "").await;
    assert_eq!(
        (missing.status, missing.errcode()),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );

    let name_path = state_path(&room, "m.room.name", "");
    let renamed = me.put(&name_path, json!({"name": "Renamed"})).await;
    let event_id = renamed.body["event_id"].as_str().unwrap();
    assert!(event_id.starts_with('$'), "{renamed:?}");
    assert_eq!(content("m.room.name").await, json!({"name": "Renamed"}));
    let all = me.get(&room_path(&room, "state")).await.body;
    let names: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.name")
        .collect();
    assert_eq!(names.len(), 1, "state is keyed by (type, state_key)");
    assert_eq!(names[0]["content"]["name"], "Renamed");
    assert_eq!(names[0]["sender"], SENDER);

    let alias = me.get(&alias_path("#event-launch-tenantA:fake.test")).await;
    assert_eq!(alias.room_id(), room);
    let taken = me.post(CREATE_ROOM, body).await;
    assert_eq!(
        (taken.status, taken.errcode()),
        (StatusCode::BAD_REQUEST, "M_ROOM_IN_USE")
    );

    let put = hs
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::SetState);
    let expected = format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/");
    assert_eq!(put.unwrap().path, expected, "paths are recorded decoded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_follows_invite_join_kick_leave_and_forget() {
    let hs = fake().await;
    let alice = "@alice:fake.test";
    register(&hs, "openmeet-bot-tenanta").await;
    register(&hs, "alice").await;
    let (bot, as_alice) = (acting(&hs, BOT), acting(&hs, alice));
    let body = json!({"preset": "private_chat", "room_alias_name": "group-g-tenantA"});
    let room = bot.post(CREATE_ROOM, body).await.room_id();
    let membership = |user: &'static str| {
        let (bot, room) = (&bot, &room);
        async move { bot.state(room, "m.room.member", user).await.body }
    };
    assert_eq!(membership(BOT).await["membership"], "join");

    let join = format!(
        "/_matrix/client/v3/join/{}",
        encode("#group-g-tenantA:fake.test")
    );
    let uninvited = as_alice.post(&join, json!({})).await;
    assert_eq!(
        uninvited.status,
        StatusCode::FORBIDDEN,
        "the room is invite-only"
    );
    let invite = json!({"user_id": alice});
    let invited = bot.post(&room_path(&room, "invite"), invite.clone()).await;
    assert_eq!(invited.status, StatusCode::OK);
    assert_eq!(membership(alice).await["membership"], "invite");
    assert_eq!(as_alice.post(&join, json!({})).await.room_id(), room);
    assert_eq!(membership(alice).await["membership"], "join");
    let again = bot.post(&room_path(&room, "invite"), invite).await;
    assert_eq!(
        again.status,
        StatusCode::FORBIDDEN,
        "a joined user cannot be invited"
    );

    let kick = json!({"user_id": alice, "reason": "Room being deleted"});
    bot.post(&room_path(&room, "kick"), kick.clone()).await;
    let kicked = json!({"membership": "leave", "reason": "Room being deleted"});
    assert_eq!(membership(alice).await, kicked);
    let twice = bot.post(&room_path(&room, "kick"), kick).await;
    assert_eq!(
        twice.status,
        StatusCode::FORBIDDEN,
        "the target is not in the room any more"
    );

    let forget = room_path(&room, "forget");
    let early = bot.post(&forget, json!({})).await;
    assert_eq!(
        early.status,
        StatusCode::BAD_REQUEST,
        "forget needs a leave first"
    );
    bot.post(&room_path(&room, "leave"), json!({})).await;
    assert_eq!(bot.post(&forget, json!({})).await.status, StatusCode::OK);
    let gone = bot.get(&room_path(&room, "state")).await;
    assert_eq!(
        gone.status,
        StatusCode::FORBIDDEN,
        "a user who left cannot read the state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_is_deduplicated_by_txn_id() {
    let hs = fake().await;
    register(&hs, "openmeet-bot-tenanta").await;
    let room = sender(&hs)
        .post(CREATE_ROOM, json!({"preset": "public_chat"}))
        .await
        .room_id();
    let join = format!("/_matrix/client/v3/join/{}", encode(&room));
    acting(&hs, BOT).post(&join, json!({})).await;
    let send = |txn: &str| room_path(&room, &format!("send/m.room.message/{txn}"));
    let text = json!({"msgtype": "m.text", "body": "hello"});
    let first = sender(&hs).put(&send("txn-1"), text.clone()).await.body;
    let retry = sender(&hs).put(&send("txn-1"), text.clone()).await.body;
    let other = sender(&hs).put(&send("txn-2"), text.clone()).await.body;
    assert_eq!(first, retry, "a retried txn id gets the same event");
    assert_ne!(first, other);
    // Synapse keys appservice txn ids by path and appservice, not by the asserted user.
    let as_bot = acting(&hs, BOT).put(&send("txn-1"), text).await.body;
    assert_eq!(
        as_bot, first,
        "the same txn id from another bot is the same event"
    );
    assert_eq!(hs.count(Endpoint::SendMessage), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_aliases_can_be_added_resolved_and_removed() {
    let hs = fake().await;
    let me = sender(&hs);
    let room = me.post(CREATE_ROOM, json!({})).await.room_id();
    let path = alias_path("#event-new-tenantA:fake.test");
    let body = json!({"room_id": room});
    assert_eq!(me.put(&path, body.clone()).await.status, StatusCode::OK);
    assert_eq!(me.put(&path, body).await.status, StatusCode::CONFLICT);
    let resolved = me.get(&path).await.body;
    assert_eq!(resolved, json!({"room_id": room, "servers": [SERVER]}));
    assert_eq!(me.delete(&path).await.status, StatusCode::OK);
    let gone = me.get(&path).await;
    assert_eq!(
        (gone.status, gone.errcode()),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    assert_eq!(me.delete(&path).await.status, StatusCode::NOT_FOUND);
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
