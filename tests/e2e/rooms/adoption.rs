//! Adoption by room id (DESIGN §14): a declaration with `adopt: {room_id}` takes over an existing
//! Matrix room instead of creating one — its id, members and history stay, our alias is added and
//! the declared settings converge. A room nobody of ours can administer fails with a sentence
//! naming who can raise the tenant bot, and the same PUT succeeds once they did. An encrypted room
//! is adopted as it is, and the bot sends no plaintext there.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{declare_and_wait, state, texts, user};
use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with,
};
use crate::support::daemon::Daemon;
use crate::support::matrix_client::{
    TestUser, encode, register_as_appservice, register_user, request,
};

/// `owner`, who may, raises `bot` to 100 in the room.
async fn raise(owner: &TestUser, room_id: &str, bot: &str) {
    let hs = environment().synapse.url.as_str();
    let mut levels = state(owner, room_id, "m.room.power_levels").await;
    levels["users"][bot] = json!(100);
    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/",
        encode(room_id)
    );
    let (status, answer) = owner.request(hs, Method::PUT, &path, Some(levels)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn put(daemon: &Daemon, slug: &str, body: Value) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token("tenantA");
    let path = format!("/v1/tenants/tenantA/rooms/event/{slug}");
    daemon
        .platform(Method::PUT, &path, Some(&token), Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_nobody_of_ours_administers_fails_naming_who_can_and_is_adopted_once_they_did() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let owner = register_user(hs, "adopt-owner").await;
    let room_id = owner
        .create_room(hs, json!({"name": "Old Chat", "preset": "public_chat"}))
        .await;
    owner.send_message(hs, &room_id, "before the move").await;
    owner.send_message(hs, &room_id, "still here?").await;
    let bot = bot_id("tenantA");
    let body = json!({
        "name": "Legacy Party Chat",
        "visibility": "public",
        "members": [{"user_id": user("adopt-owner"), "role": "host"}],
        "adopt": {"room_id": room_id},
    });

    let job = declare_and_wait(&daemon, "event", "legacy-party", body.clone()).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("cannot adopt {room_id}"))
            && error.contains(&format!("{} must raise {bot} to 100", user("adopt-owner")))
            && error.contains("PUT the room again"),
        "{error}"
    );
    let room = daemon.get_room("tenantA", "event", "legacy-party").await;
    assert_eq!(
        (room["status"].as_str(), room["room_id"].as_str()),
        (Some("failed"), Some(room_id.as_str())),
        "{room}"
    );

    // The owner raises the bot, and the platform sends the same declaration again.
    raise(&owner, &room_id, &bot).await;
    let job = daemon
        .declare("tenantA", "event", "legacy-party", body)
        .await;
    assert_eq!(job["result"]["room_id"], room_id.as_str(), "{job}");

    let alias = format!("#event-legacy-party-tenantA:{SERVER_NAME}");
    let (status, resolved) = owner.resolve_alias(hs, &alias).await;
    assert_eq!(
        (status, resolved["room_id"].as_str()),
        (StatusCode::OK, Some(room_id.as_str()))
    );
    assert_eq!(
        state(&owner, &room_id, "m.room.name").await["name"],
        "Legacy Party Chat"
    );
    assert_eq!(
        state(&owner, &room_id, "m.room.canonical_alias").await["alias"],
        alias.as_str()
    );
    assert_eq!(
        texts(&owner, &room_id).await,
        ["before the move", "still here?"]
    );
    let room = daemon.get_room("tenantA", "event", "legacy-party").await;
    assert_eq!(room["status"], "ready", "{room}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_the_tenant_bot_made_without_our_alias_is_adopted_by_its_id() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let as_token = daemon.config.tokens.as_token.clone();
    let bot = bot_id("tenantA");
    // As in July 2025, the tenant's own bot made the room, with no alias of ours.
    register_as_appservice(hs, &as_token, &bot).await;
    let path = format!("/_matrix/client/v3/createRoom?user_id={}", encode(&bot));
    let create = json!({"name": "July Chat", "preset": "public_chat"});
    let (status, created) = request(hs, Some(&as_token), Method::POST, &path, Some(create)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let room_id = created["room_id"].as_str().unwrap().to_owned();
    let guest = register_user(hs, "adopt-july-guest").await;
    guest.join(hs, &room_id).await;
    guest.send_message(hs, &room_id, "july message").await;

    // Naming another declared room's Matrix room, or a room that is no room id, is refused.
    let (status, answer) = put(
        &daemon,
        "july",
        json!({"name": "x", "visibility": "public", "adopt": {"room_id": "not-a-room"}}),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input")),
        "{answer}"
    );
    assert!(
        answer["error"].as_str().unwrap().contains("adopt.room_id"),
        "{answer}"
    );

    let body = json!({
        "name": "July Meetup Chat",
        "visibility": "public",
        "members": [{"user_id": user("adopt-july-guest"), "role": "participant"}],
        "adopt": {"room_id": room_id},
    });
    let job = daemon
        .declare("tenantA", "event", "july", body.clone())
        .await;
    assert_eq!(job["result"]["room_id"], room_id.as_str(), "{job}");
    assert_eq!(
        state(&guest, &room_id, "m.room.name").await["name"],
        "July Meetup Chat"
    );
    let alias = format!("#event-july-tenantA:{SERVER_NAME}");
    let (status, resolved) = guest.resolve_alias(hs, &alias).await;
    assert_eq!(
        (status, resolved["room_id"].as_str()),
        (StatusCode::OK, Some(room_id.as_str()))
    );
    assert_eq!(texts(&guest, &room_id).await, ["july message"]);

    // The same declaration again changes nothing; another room may not take the same Matrix room.
    let again = daemon.put_room("tenantA", "event", "july", body).await;
    assert_eq!(again, job["id"].as_i64().unwrap());
    let (status, answer) = put(
        &daemon,
        "other",
        json!({"name": "x", "visibility": "public", "adopt": {"room_id": room_id}}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("event july of tenant tenantA"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_room_is_adopted_as_it_is_and_the_bot_sends_no_plaintext_there() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let owner = register_user(hs, "adopt-crypto-owner").await;
    let encryption = json!({"type": "m.room.encryption", "state_key": "",
        "content": {"algorithm": "m.megolm.v1.aes-sha2"}});
    let room_id = owner
        .create_room(
            hs,
            json!({"name": "Secret Chat", "preset": "private_chat",
            "initial_state": [encryption]}),
        )
        .await;
    let body = json!({
        "name": "Secret Chat",
        "visibility": "private",
        "members": [{"user_id": user("adopt-crypto-owner"), "role": "host"}],
        "adopt": {"room_id": room_id},
    });
    // Declared first: an invite into a room the platform has not declared is declined.
    let job = declare_and_wait(&daemon, "event", "secret", body.clone()).await;
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("A member allowed to change its m.room.power_levels must invite"),
        "{job}"
    );
    let bot = bot_id("tenantA");
    owner.invite(hs, &room_id, &bot).await;
    raise(&owner, &room_id, &bot).await;

    let job = daemon.declare("tenantA", "event", "secret", body).await;
    assert_eq!(job["result"]["room_id"], room_id.as_str(), "{job}");
    let room = daemon.get_room("tenantA", "event", "secret").await;
    assert_eq!(
        (room["encrypted"].as_bool(), room["status"].as_str()),
        (Some(true), Some("ready")),
        "{room}"
    );
    assert_eq!(
        state(&owner, &room_id, "m.room.encryption").await["algorithm"],
        "m.megolm.v1.aes-sha2"
    );

    let token = daemon.config.tenant_token("tenantA");
    let (status, answer) = daemon
        .platform(
            Method::POST,
            "/v1/tenants/tenantA/rooms/event/secret/messages",
            Some(&token),
            Some(json!({"body": "Doors open at 7"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap()
            .contains("end-to-end encryption on, and the daemon does not speak Megolm"),
        "{job}"
    );
    let sent: Vec<Value> = owner
        .messages(hs, &room_id, 100)
        .await
        .into_iter()
        .filter(|event| event["sender"] == bot.as_str() && event["type"] == "m.room.message")
        .collect();
    assert_eq!(sent, Vec::<Value>::new(), "no plaintext from the bot");
}
