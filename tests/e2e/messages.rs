//! Bot messages (DESIGN §7.2): posted through the platform API, sent by the tenant's bot, read
//! back from the room's timeline as a human member sees it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with,
};
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::hold_proxy::HoldProxy;
use crate::support::matrix_client::{TestUser, encode, register_user};

/// `POST …/messages` in tenantA's event room `slug`, with an `Idempotency-Key` when given.
async fn post(daemon: &Daemon, slug: &str, body: Value, key: Option<&str>) -> (StatusCode, Value) {
    let path = format!("/v1/tenants/tenantA/rooms/event/{slug}/messages");
    let token = daemon.config.tenant_token("tenantA");
    let headers: Vec<(&str, &str)> = key
        .map(|key| ("Idempotency-Key", key))
        .into_iter()
        .collect();
    daemon
        .platform_raw(
            Method::POST,
            &path,
            Some(&token),
            &headers,
            Some(body.to_string()),
        )
        .await
}

/// Posts a message and waits for its job; returns the job (asserted succeeded).
async fn send(daemon: &Daemon, slug: &str, body: Value) -> Value {
    let (status, answer) = post(daemon, slug, body, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["job"]["kind"], "send_message", "{answer}");
    let id = answer["job"]["id"].as_i64().unwrap();
    let job = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    job
}

/// A private event room of tenantA with `host` declared and joined; returns its Matrix id.
async fn room_with_host(daemon: &Daemon, slug: &str, host: &TestUser) -> String {
    room_with_host_as(daemon, slug, host, "private").await
}

async fn room_with_host_as(
    daemon: &Daemon,
    slug: &str,
    host: &TestUser,
    visibility: &str,
) -> String {
    let hs = environment().synapse.url.as_str();
    let body = json!({"name": "Messages Chat", "visibility": visibility,
        "members": [{"user_id": host.user_id, "role": "host"}]});
    let job = daemon.declare("tenantA", "event", slug, body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &room_id).await;
    room_id
}

/// The room's `m.room.message` events whose body is `body`, as `viewer` reads the timeline.
async fn messages_saying(viewer: &TestUser, room_id: &str, body: &str) -> Vec<Value> {
    let hs = environment().synapse.url.as_str();
    viewer
        .messages(hs, room_id, 100)
        .await
        .into_iter()
        .filter(|event| event["type"] == "m.room.message" && event["content"]["body"] == body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_and_an_html_announcement_with_a_mention_arrive_from_the_tenant_bot() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let host = register_user(hs, "messages-host").await;
    let room_id = room_with_host(&daemon, "messages", &host).await;
    let bot = bot_id("tenantA");

    let notice = send(&daemon, "messages", json!({"body": "Doors open at 7"})).await;
    let announcement = send(
        &daemon,
        "messages",
        json!({
            "body": "Starting now, messages-host!",
            "html": "<b>Starting now</b>, <a href=\"https://matrix.to/#/@messages-host:openmeet.test\">messages-host</a>!",
            "msgtype": "m.text",
            "mentions": {"user_ids": [host.user_id]},
        }),
    )
    .await;

    let [seen_notice] = &messages_saying(&host, &room_id, "Doors open at 7").await[..] else {
        panic!("the notice is not in the room once");
    };
    assert_eq!(seen_notice["event_id"], notice["result"]["event_id"]);
    assert_eq!(seen_notice["sender"], bot.as_str());
    assert_eq!(
        seen_notice["content"],
        json!({"msgtype": "m.notice", "body": "Doors open at 7", "m.mentions": {}})
    );
    let [seen] = &messages_saying(&host, &room_id, "Starting now, messages-host!").await[..] else {
        panic!("the announcement is not in the room once");
    };
    assert_eq!(seen["event_id"], announcement["result"]["event_id"]);
    assert_eq!(seen["sender"], bot.as_str());
    assert_eq!(
        seen["content"],
        json!({
            "msgtype": "m.text",
            "body": "Starting now, messages-host!",
            "format": "org.matrix.custom.html",
            "formatted_body": "<b>Starting now</b>, <a href=\"https://matrix.to/#/@messages-host:openmeet.test\">messages-host</a>!",
            "m.mentions": {"user_ids": [format!("@messages-host:{SERVER_NAME}")]},
        })
    );

    // The same Idempotency-Key twice, then again once sent: one job, one event.
    let body = json!({"body": "Only once, please"});
    let (status, first) = post(&daemon, "messages", body.clone(), Some("announce-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = post(&daemon, "messages", body.clone(), Some("announce-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["job"]["id"], first["job"]["id"]);
    let id = first["job"]["id"].as_i64().unwrap();
    let job = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, later) = post(&daemon, "messages", body, Some("announce-1")).await;
    assert_eq!(
        (later["job"]["id"].as_i64(), later["job"]["status"].as_str()),
        (Some(id), Some("succeeded"))
    );
    let sent = messages_saying(&host, &room_id, "Only once, please").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["event_id"], job["result"]["event_id"]);
    assert_eq!(
        daemon
            .metric("openmeet_as_message_requests_total", "outcome=\"repeated\"")
            .await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_send_and_storing_its_result_still_sends_one_event() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let proxy = HoldProxy::start(hs).await;
    let mut config = fresh_config();
    config.homeserver_url = proxy.url.clone();
    let mut daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    let host = register_user(hs, "crash-message-host").await;
    let room_id = room_with_host(&daemon, "crash-message", &host).await;

    // Synapse stores the event and answers; the answer is held, and the daemon dies waiting.
    proxy.hold_answers("/send/m.room.message/");
    let (status, answer) = post(
        &daemon,
        "crash-message",
        json!({"body": "Exactly once"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["job"]["id"].as_i64().unwrap();
    proxy.wait_held(1).await;
    daemon.kill();
    let stored = proxy.held_answers()[0]["event_id"]
        .as_str()
        .expect("Synapse stored the event before the crash")
        .to_owned();
    assert_eq!(
        messages_saying(&host, &room_id, "Exactly once").await.len(),
        1,
        "the event is in the room before the retry"
    );

    proxy.release();
    daemon.restart().await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    let job = daemon.wait_for_job(id, &token).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    assert_eq!(
        job["attempts"], 2,
        "the retry is the crash's one extra attempt: {job}"
    );
    assert_eq!(job["result"]["event_id"], stored.as_str());
    let sent = messages_saying(&host, &room_id, "Exactly once").await;
    assert_eq!(sent.len(), 1, "the retry sent a second event: {sent:?}");
    assert_eq!(sent[0]["event_id"], stored.as_str());
}

/// Stops the daemon and starts it again with its job worker on or off (the inbox runs either way).
async fn restart_with_jobs(daemon: &mut Daemon, enabled: bool) {
    daemon.stop();
    daemon.config.extra_yaml = if enabled {
        String::new()
    } else {
        "jobs:\n  enabled: false\n".into()
    };
    daemon.restart().await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_queued_before_the_bot_left_fails_with_a_sentence_and_the_room_is_repaired_after()
{
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let host = register_user(hs, "left-message-host").await;
    let room_id = room_with_host_as(&daemon, "left-message", &host, "public").await;

    // The message is queued; then the bot leaves, and its repair is queued behind the message.
    restart_with_jobs(&mut daemon, false).await;
    let (status, answer) = post(
        &daemon,
        "left-message",
        json!({"body": "Into the void"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["job"]["id"].as_i64().unwrap();
    let leave = format!(
        "/_matrix/client/v3/rooms/{}/leave?user_id={}",
        encode(&room_id),
        encode(&bot_id("tenantA"))
    );
    let (status, left) = crate::support::matrix_client::request(
        hs,
        Some(&daemon.config.tokens.as_token),
        reqwest::Method::POST,
        &leave,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{left}");
    eventually(
        "the room to be marked lost",
        Duration::from_secs(30),
        || async {
            (daemon.get_room("tenantA", "event", "left-message").await["status"] == "lost")
                .then_some(())
        },
    )
    .await;

    restart_with_jobs(&mut daemon, true).await;
    let job = daemon.wait_for_job(id, &token).await;
    assert_eq!(job["status"], "failed", "{job}\n{}", daemon.logs());
    let error = job["last_error"].as_str().unwrap();
    println!("the message job failed: {error}");
    assert!(
        error.contains("is not in room event/left-message")
            && error.contains("post the message again"),
        "{error}"
    );
    eventually(
        "the repair to make the room ready",
        Duration::from_secs(30),
        || async {
            (daemon.get_room("tenantA", "event", "left-message").await["status"] == "ready")
                .then_some(())
        },
    )
    .await;
    let sent = send(&daemon, "left-message", json!({"body": "Back again"})).await;
    let seen = messages_saying(&host, &room_id, "Back again").await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["event_id"], sent["result"]["event_id"]);
    assert!(
        messages_saying(&host, &room_id, "Into the void")
            .await
            .is_empty()
    );
}
