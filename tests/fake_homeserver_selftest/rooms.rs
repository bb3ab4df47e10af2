//! The room state the fake keeps: created rooms and their state, memberships, sends deduplicated
//! by txn id, and directory aliases.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    BOT, CREATE_ROOM, SENDER, SERVER, acting, alias_path, fake, register, room_path, sender,
    state_path,
};
use crate::support::fake_homeserver::Endpoint;
use crate::support::matrix_client::encode;

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
