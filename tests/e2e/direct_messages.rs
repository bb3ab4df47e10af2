//! Bot direct messages (DESIGN §7.3 "Across the tenant"), against the real Synapse: two messages to
//! one user make one direct room, the user is invited to it (`is_direct`), the bot's `m.direct`
//! lists it, a repeated POST with the same `Idempotency-Key` sends nothing new, and a user who left
//! is invited again by the next message.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{bot_id, environment, port_turn, ready_daemon};
use crate::support::daemon::Daemon;
use crate::support::matrix_client::{TestUser, encode, register_user, request};

fn hs() -> &'static str {
    environment().synapse.url.as_str()
}

/// `POST users/{user}/messages` as tenantA, with an `Idempotency-Key` when given.
async fn post(daemon: &Daemon, user: &str, text: &str, key: Option<&str>) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token("tenantA");
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    daemon
        .platform_raw(
            Method::POST,
            &format!("/v1/tenants/tenantA/users/{user}/messages"),
            Some(&token),
            &headers,
            Some(json!({"body": text}).to_string()),
        )
        .await
}

/// Posts and waits for the job; returns its result (asserted succeeded).
async fn send(daemon: &Daemon, user: &str, text: &str, key: Option<&str>) -> (i64, Value) {
    let (status, answer) = post(daemon, user, text, key).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["job"]["kind"], "send_direct_message", "{answer}");
    let id = answer["job"]["id"].as_i64().unwrap();
    let job = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    (id, job["result"].clone())
}

/// The user's pending invitations, from an initial `/sync`: room id → their invite event.
async fn invites(user: &TestUser) -> serde_json::Map<String, Value> {
    let (status, sync) = user
        .request(hs(), Method::GET, "/_matrix/client/v3/sync?timeout=0", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{sync}");
    let mut found = serde_json::Map::new();
    for (room_id, room) in sync["rooms"]["invite"].as_object().into_iter().flatten() {
        let own = room["invite_state"]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["type"] == "m.room.member" && e["state_key"] == user.user_id.as_str());
        if let Some(event) = own {
            found.insert(room_id.clone(), event.clone());
        }
    }
    found
}

/// The bot's `m.direct`, read as the appservice acting as the bot.
async fn m_direct(daemon: &Daemon, bot: &str) -> Value {
    let path = format!(
        "/_matrix/client/v3/user/{}/account_data/m.direct?user_id={}",
        encode(bot),
        encode(bot)
    );
    let (status, answer) = request(
        hs(),
        Some(&daemon.config.tokens.as_token),
        Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// The bodies of the room's `m.room.message` events, oldest first.
async fn bodies(user: &TestUser, room_id: &str) -> Vec<String> {
    let mut bodies: Vec<String> = user
        .messages(hs(), room_id, 50)
        .await
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    bodies.reverse();
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_messages_make_one_invited_direct_room_listed_in_m_direct_and_a_key_sends_once() {
    let _turn = port_turn().await;
    let daemon = ready_daemon().await;
    let ann = register_user(hs(), "dm-ann").await;
    let bot = bot_id("tenantA");

    let (first_job, first) = send(&daemon, &ann.user_id, "Welcome to OpenMeet", Some("k1")).await;
    let room_id = first["room_id"].as_str().expect("room_id").to_owned();
    assert!(
        first["event_id"]
            .as_str()
            .is_some_and(|id| id.starts_with('$')),
        "{first}"
    );
    let (_, second) = send(&daemon, &ann.user_id, "Your event starts soon", None).await;
    assert_eq!(
        second["room_id"], first["room_id"],
        "one direct room per bot and user"
    );
    assert_ne!(second["event_id"], first["event_id"]);

    let invited = invites(&ann).await;
    let invite = invited
        .get(&room_id)
        .unwrap_or_else(|| panic!("{invited:?}"));
    assert_eq!(invite["sender"], bot.as_str(), "{invite}");
    assert_eq!(invite["content"]["is_direct"], true, "{invite}");
    assert_eq!(invited.len(), 1, "{invited:?}");
    assert_eq!(
        m_direct(&daemon, &bot).await[&ann.user_id],
        json!([room_id])
    );

    // The same key again: the first job answers and nothing new is sent.
    let (status, again) = post(&daemon, &ann.user_id, "Welcome to OpenMeet", Some("k1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["job"]["id"], first_job, "{again}");
    ann.join(hs(), &room_id).await;
    assert_eq!(
        bodies(&ann, &room_id).await,
        ["Welcome to OpenMeet", "Your event starts soon"]
    );

    // The user leaves; the next message invites them again into the same room.
    let path = format!("/_matrix/client/v3/rooms/{}/leave", encode(&room_id));
    let (status, answer) = ann
        .request(hs(), Method::POST, &path, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, third) = send(&daemon, &ann.user_id, "Still there?", None).await;
    assert_eq!(third["room_id"], room_id.as_str());
    assert!(invites(&ann).await.contains_key(&room_id));

    // The feed tells each message, with no room and the user it went to.
    let token = daemon.config.tenant_token("tenantA");
    let (_, feed) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/events",
            Some(&token),
            None,
        )
        .await;
    let sent: Vec<&Value> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message.sent")
        .collect();
    assert_eq!(sent.len(), 3, "{feed}");
    assert!(sent[0]["room"].is_null(), "{feed}");
    assert_eq!(sent[0]["data"]["user_id"], ann.user_id.as_str());
    assert_eq!(sent[0]["data"]["room_id"], room_id.as_str());
}
