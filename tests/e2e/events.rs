//! The events feed (DESIGN §7.4) against the real Synapse: a declared room is `room.ready` with
//! its real id; a declared member accepting the invite and leaving is `member.joined` and
//! `member.left`, seen in Synapse's transactions; a bot message is `message.sent` with the id of
//! the event Synapse stored; DELETE is `room.deleted` once the teardown is done; a room whose bot
//! was put out is `room.lost` then `room.replaced` with both ids; a room id Synapse does not know
//! (as after a reset of Synapse's database) is replaced by `rooms reconcile`: `room.replaced`.
//! `after` with the last id seen returns exactly the newer events. (A job forced dead is
//! `tests/events_feed.rs`, on the fake homeserver.)

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with,
};
use crate::operate::import_foreign_room_id;
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::{encode, register_user};

fn user(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

/// tenantA's events after `after`.
async fn events_after(daemon: &Daemon, after: i64) -> Vec<Value> {
    let token = daemon.config.tenant_token("tenantA");
    let path = format!("/v1/tenants/tenantA/events?after={after}");
    let (status, page) = daemon
        .platform(Method::GET, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["events"].as_array().unwrap().clone()
}

/// Waits until the feed holds `count` events after `after` and returns them (events the inbox
/// turns into news come a moment after Synapse sent them).
async fn wait_for_events(daemon: &Daemon, after: i64, count: usize) -> Vec<Value> {
    eventually(
        &format!("{count} events after {after}"),
        Duration::from_secs(30),
        || async {
            let events = events_after(daemon, after).await;
            (events.len() >= count).then_some(events)
        },
    )
    .await
}

/// `(type, data)` of each event.
fn told(events: &[Value]) -> Vec<(String, Value)> {
    events
        .iter()
        .map(|event| {
            (
                event["type"].as_str().unwrap().to_owned(),
                event["data"].clone(),
            )
        })
        .collect()
}

fn last_id(events: &[Value]) -> i64 {
    events.last().unwrap()["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_life_in_synapse_is_told_in_order() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let guest = register_user(hs, "feed-guest").await;
    let body = json!({
        "name": "Feed Chat",
        "visibility": "private",
        "members": [{"user_id": user("feed-guest"), "role": "participant"}],
    });
    let job = daemon.declare("tenantA", "event", "feed", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    let ready = wait_for_events(&daemon, 0, 1).await;
    assert_eq!(
        told(&ready),
        [("room.ready".to_owned(), json!({"room_id": room_id}))],
        "{ready:#?}"
    );
    assert_eq!(ready[0]["room"], json!({"kind": "event", "slug": "feed"}));
    assert_eq!(ready[0]["tenant"], "tenantA");

    // The declared member accepts the invite in Synapse.
    guest.join(hs, &room_id).await;
    let joined = wait_for_events(&daemon, 1, 1).await;
    let member = json!({"user_id": user("feed-guest"), "room_id": room_id, "membership": "join"});
    assert_eq!(
        told(&joined),
        [("member.joined".to_owned(), member)],
        "{joined:#?}"
    );

    // A bot message: the event id is the one Synapse stored, as the member reads it.
    let path = "/v1/tenants/tenantA/rooms/event/feed/messages";
    let (status, answer) = daemon
        .platform(
            Method::POST,
            path,
            Some(&token),
            Some(json!({"body": "Welcome"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let message = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    let event_id = message["result"]["event_id"].as_str().unwrap().to_owned();
    let sent = wait_for_events(&daemon, 2, 1).await;
    assert_eq!(
        told(&sent),
        [(
            "message.sent".to_owned(),
            json!({"job": message["id"], "event_id": event_id})
        )]
    );
    let timeline = guest.messages(hs, &room_id, 20).await;
    assert!(
        timeline
            .iter()
            .any(|event| event["event_id"] == event_id.as_str()
                && event["content"]["body"] == "Welcome"),
        "{timeline:#?}"
    );

    // The member leaves.
    let leave = format!("/_matrix/client/v3/rooms/{}/leave", encode(&room_id));
    let (status, answer) = guest
        .request(hs, Method::POST, &leave, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let left = wait_for_events(&daemon, 3, 1).await;
    let member = json!({"user_id": user("feed-guest"), "room_id": room_id, "membership": "leave"});
    assert_eq!(
        told(&left),
        [("member.left".to_owned(), member)],
        "{left:#?}"
    );
    let seen = last_id(&left);
    assert_eq!(seen, 4);

    // DELETE: told once the teardown is done; `after` the last id seen is exactly that.
    let (status, answer) = daemon
        .platform(
            Method::DELETE,
            "/v1/tenants/tenantA/rooms/event/feed",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let teardown = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(teardown["status"], "succeeded", "{teardown}");
    let deleted = events_after(&daemon, seen).await;
    assert_eq!(
        told(&deleted),
        [(
            "room.deleted".to_owned(),
            json!({"room_id": room_id, "job": teardown["id"]})
        )],
        "{deleted:#?}"
    );
    assert_eq!(deleted[0]["id"], seen + 1);
    let all = events_after(&daemon, 0).await;
    assert_eq!(all.len() as i64, seen + 1, "{all:#?}");
    assert_eq!(all[..4], [ready, joined, sent, left].concat()[..]);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_room_and_a_room_synapse_does_not_know_are_told_replaced() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    register_user(hs, "feed-lost-host").await;
    let body = json!({
        "name": "Feed Lost",
        "visibility": "private",
        "members": [{"user_id": user("feed-lost-host"), "role": "host"}],
    });
    let job = daemon.declare("tenantA", "event", "feed-lost", body).await;
    let old_room = job["result"]["room_id"].as_str().unwrap().to_owned();
    assert_eq!(wait_for_events(&daemon, 0, 1).await.len(), 1);

    // The bot is put out of the private room in Synapse: lost, replaced, ready again.
    let leave = format!(
        "/_matrix/client/v3/rooms/{}/leave?user_id={}",
        encode(&old_room),
        encode(&bot_id("tenantA"))
    );
    let (status, answer) = crate::support::matrix_client::request(
        hs,
        Some(&daemon.config.tokens.as_token),
        Method::POST,
        &leave,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let repaired = wait_for_events(&daemon, 1, 3).await;
    let new_room = daemon.get_room("tenantA", "event", "feed-lost").await["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_room, old_room);
    let reason = format!("the bot was removed from the room by {}", bot_id("tenantA"));
    assert_eq!(
        told(&repaired),
        [
            (
                "room.lost".to_owned(),
                json!({"room_id": old_room, "reason": reason})
            ),
            (
                "room.replaced".to_owned(),
                json!({"previous_room_id": old_room, "room_id": new_room})
            ),
            ("room.ready".to_owned(), json!({"room_id": new_room})),
        ],
        "{repaired:#?}"
    );

    // A room id Synapse does not know, as its database reset would leave it: `rooms reconcile`
    // replaces the room, which stays ready.
    let foreign = "!feedResetRoom:staging.openmeet.example";
    import_foreign_room_id(&daemon, "feed-lost", foreign);
    let (code, stdout, stderr) =
        daemon
            .config
            .cli(&["rooms", "reconcile", "tenantA/event/feed-lost"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let line: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let job = daemon
        .wait_for_job(line["job"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    let replaced = events_after(&daemon, 4).await;
    let newest = job["result"]["room_id"].as_str().unwrap();
    assert!(newest != foreign && newest != new_room, "{job}");
    assert_eq!(
        told(&replaced),
        [(
            "room.replaced".to_owned(),
            json!({"previous_room_id": foreign, "room_id": newest})
        )],
        "{replaced:#?}"
    );
    daemon.stop();
}
