//! Convergence of a room's settings (DESIGN §7.1): a re-declared name, topic and visibility change
//! the Matrix room, and the same settings changed in Matrix by someone else are put back.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{SERVER_NAME, environment, fresh_config, port_turn, ready_daemon_with};
use crate::support::eventually;
use crate::support::matrix_client::{TestUser, encode, register_user};

fn user(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

fn hs() -> &'static str {
    environment().synapse.url.as_str()
}

/// A state event's content as `viewer` sees it (`Null` when the room has none).
async fn state(viewer: &TestUser, room_id: &str, event_type: &str) -> Value {
    viewer
        .state_event(hs(), room_id, event_type, "")
        .await
        .unwrap_or(Value::Null)
}

/// `GET /directory/list/room/{roomId}`: `public` or `private`.
async fn directory(viewer: &TestUser, room_id: &str) -> String {
    let path = format!("/_matrix/client/v3/directory/list/room/{}", encode(room_id));
    let (status, answer) = viewer.request(hs(), Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["visibility"].as_str().unwrap().to_owned()
}

/// `viewer` sets a state event by hand, as a client would.
async fn set_state(viewer: &TestUser, room_id: &str, event_type: &str, content: Value) {
    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/{event_type}/",
        encode(room_id)
    );
    let (status, answer) = viewer
        .request(hs(), Method::PUT, &path, Some(content))
        .await;
    assert_eq!(status, StatusCode::OK, "{event_type}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeclared_name_topic_and_visibility_change_the_matrix_room() {
    let _turn = port_turn().await;
    let daemon = ready_daemon_with(fresh_config()).await;
    let host = register_user(hs(), "converge-host").await;
    let members = json!([{"user_id": user("converge-host"), "role": "host"}]);
    let job = daemon
        .declare(
            "tenantA",
            "event",
            "converge",
            json!({"name": "Before Chat", "topic": "Before topic", "visibility": "private",
                   "members": members}),
        )
        .await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs(), &room_id).await;
    assert_eq!(directory(&host, &room_id).await, "private");

    // New name, topic and visibility: the Matrix room follows, directory entry included.
    daemon
        .declare(
            "tenantA",
            "event",
            "converge",
            json!({"name": "After Chat", "topic": "After topic", "visibility": "public",
                   "members": members}),
        )
        .await;
    assert_eq!(
        state(&host, &room_id, "m.room.name").await["name"],
        "After Chat"
    );
    let topic = state(&host, &room_id, "m.room.topic").await;
    assert_eq!(topic["topic"], "After topic", "{topic}");
    assert_eq!(
        topic["m.topic"]["m.text"][0]["body"], "After topic",
        "{topic}"
    );
    assert_eq!(
        state(&host, &room_id, "m.room.join_rules").await["join_rule"],
        "public"
    );
    // Listed in the tenant's own directory (tests/e2e/directory.rs), not in the server-wide one
    // every tenant's users browse.
    assert_eq!(directory(&host, &room_id).await, "private");
    assert_eq!(
        state(&host, &room_id, "m.room.history_visibility").await["history_visibility"],
        "shared"
    );
    assert_eq!(
        state(&host, &room_id, "m.room.guest_access").await["guest_access"],
        "forbidden"
    );

    // Private again, topic no longer declared: invite only, out of the directory, the topic kept.
    daemon
        .declare(
            "tenantA",
            "event",
            "converge",
            json!({"name": "After Chat", "visibility": "private", "members": members}),
        )
        .await;
    assert_eq!(
        state(&host, &room_id, "m.room.join_rules").await["join_rule"],
        "invite"
    );
    assert_eq!(directory(&host, &room_id).await, "private");
    assert_eq!(
        state(&host, &room_id, "m.room.topic").await["topic"],
        "After topic"
    );

    // An empty topic declared: the topic is removed.
    daemon
        .declare(
            "tenantA",
            "event",
            "converge",
            json!({"name": "After Chat", "topic": "", "visibility": "private",
                   "members": members}),
        )
        .await;
    assert_eq!(state(&host, &room_id, "m.room.topic").await["topic"], "");
    let room = daemon.get_room("tenantA", "event", "converge").await;
    assert_eq!(
        (room["status"].as_str(), room["room_id"].as_str()),
        (Some("ready"), Some(room_id.as_str())),
        "{room}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_rename_is_put_back_and_an_undeclared_topic_is_left_alone() {
    let _turn = port_turn().await;
    let daemon = ready_daemon_with(fresh_config()).await;
    let host = register_user(hs(), "drift-host").await;
    let body = json!({"name": "Declared Chat", "visibility": "private",
                      "members": [{"user_id": user("drift-host"), "role": "host"}]});
    let job = daemon.declare("tenantA", "event", "drift", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs(), &room_id).await;
    assert_eq!(
        state(&host, &room_id, "m.room.power_levels").await["users"][&host.user_id],
        100
    );

    // The host, at 100, changes what the platform declared (and a topic it never declared).
    set_state(
        &host,
        &room_id,
        "m.room.topic",
        json!({"topic": "Host's topic"}),
    )
    .await;
    set_state(
        &host,
        &room_id,
        "m.room.join_rules",
        json!({"join_rule": "public"}),
    )
    .await;
    set_state(
        &host,
        &room_id,
        "m.room.name",
        json!({"name": "Host's name"}),
    )
    .await;

    eventually(
        "the declared name and join rule to be put back",
        Duration::from_secs(30),
        || async {
            let name = state(&host, &room_id, "m.room.name").await;
            let rule = state(&host, &room_id, "m.room.join_rules").await;
            (name["name"] == "Declared Chat" && rule["join_rule"] == "invite").then_some(())
        },
    )
    .await;
    assert_eq!(
        state(&host, &room_id, "m.room.topic").await["topic"],
        "Host's topic",
        "a topic the platform never declared was changed"
    );

    // The bot's own rename comes back as an echo, which queues nothing.
    let names = |daemon: &crate::support::daemon::Daemon| -> Vec<String> {
        daemon
            .inbox_events()
            .into_iter()
            .filter(|e| e["room_id"] == room_id.as_str() && e["event_type"] == "m.room.name")
            .filter_map(|e| e["outcome"].as_str().map(str::to_owned))
            .collect()
    };
    let outcomes = eventually(
        "the bot's rename to be processed",
        Duration::from_secs(30),
        || async {
            let outcomes = names(&daemon);
            outcomes.iter().any(|o| o == "own_echo").then_some(outcomes)
        },
    )
    .await;
    assert!(outcomes.iter().any(|o| o == "settings"), "{outcomes:?}");
    let room = daemon.get_room("tenantA", "event", "drift").await;
    assert_eq!(room["status"], "ready", "{room}");
}

/// A tenant's first rooms, declared at once, register and name its bot once between them; and a
/// room its job has just created is not read back (its alias and directory entry came with
/// `createRoom`), yet has both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_rooms_at_once_register_the_bot_once_and_new_rooms_are_not_read_back() {
    let _turn = port_turn().await;
    let daemon = ready_daemon_with(fresh_config()).await;
    let viewer = register_user(hs(), "fresh-viewer").await;
    let calls = |endpoint: &'static str| {
        let daemon = &daemon;
        async move {
            let labels = format!("endpoint=\"{endpoint}\"");
            daemon
                .metric("openmeet_as_homeserver_requests_total", &labels)
                .await
        }
    };
    const ENDPOINTS: [&str; 6] = [
        "register",
        "set_display_name",
        "get_alias",
        "get_room_visibility",
        "set_room_visibility",
        "set_appservice_room_visibility",
    ];
    let mut before = Vec::new();
    for endpoint in ENDPOINTS {
        before.push(calls(endpoint).await);
    }

    let rooms = [
        ("fresh-one", "public"),
        ("fresh-two", "private"),
        ("fresh-three", "public"),
        ("fresh-four", "private"),
    ];
    let puts = rooms.map(|(slug, visibility)| {
        let body = json!({"name": format!("Fresh {slug}"), "visibility": visibility});
        daemon.put_room("tenantA", "event", slug, body)
    });
    let [a, b, c, d] = puts;
    let jobs = tokio::join!(a, b, c, d);
    let token = daemon.config.tenant_token("tenantA");
    for (job, (slug, _)) in [jobs.0, jobs.1, jobs.2, jobs.3].into_iter().zip(rooms) {
        let job = daemon.wait_for_job(job, &token).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let room_id = job["result"]["room_id"].as_str().unwrap();
        let alias = format!("#event-{slug}-tenantA:{SERVER_NAME}");
        let (status, resolved) = viewer.resolve_alias(hs(), &alias).await;
        assert_eq!(status, StatusCode::OK, "{resolved}");
        assert_eq!(resolved["room_id"], room_id, "{alias}");
        // Public rooms are in their tenant's own directory (one PUT each, below), none in the
        // server-wide one (tests/e2e/directory.rs).
        assert_eq!(directory(&viewer, room_id).await, "private", "{slug}");
    }

    let mut made = Vec::new();
    for (endpoint, before) in ENDPOINTS.into_iter().zip(before) {
        made.push((endpoint, calls(endpoint).await - before));
    }
    assert_eq!(
        made,
        [
            ("register", 1.0),
            ("set_display_name", 1.0),
            ("get_alias", 0.0),
            ("get_room_visibility", 0.0),
            ("set_room_visibility", 0.0),
            ("set_appservice_room_visibility", 2.0),
        ]
    );
}
