//! Creation: a declared room made real with the declared settings, members and power levels
//! (v12 and v10 rooms), and a declared room created once by the first join of its alias.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{declare, state, user};
use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with,
};
use crate::support::matrix_client::{encode, register_user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_event_room_exists_with_the_declared_settings_and_members() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let alice = register_user(hs, "rooms-host").await;
    register_user(hs, "rooms-moderator").await;
    register_user(hs, "rooms-participant").await;
    let body = json!({
        "name": "Summer Party Chat",
        "topic": "Chat room for Summer Party",
        "visibility": "private",
        "members": [
            {"user_id": user("rooms-host"), "role": "host"},
            {"user_id": user("rooms-moderator"), "role": "moderator"},
            {"user_id": user("rooms-participant"), "role": "participant"},
        ],
    });
    let job = declare(&daemon, "tenantA", "event", "summer-party", body.clone()).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    let alias = format!("#event-summer-party-tenantA:{SERVER_NAME}");
    assert_eq!(job["result"]["alias"], alias);

    // The alias resolves to the room, and the host, invited, can join it.
    let (status, resolved) = alice.resolve_alias(hs, &alias).await;
    assert_eq!(
        (status, resolved["room_id"].as_str()),
        (StatusCode::OK, Some(room_id.as_str()))
    );
    alice.join(hs, &room_id).await;

    let bot = bot_id("tenantA");
    assert_eq!(
        state(&alice, &room_id, "m.room.name").await["name"],
        "Summer Party Chat"
    );
    assert_eq!(
        state(&alice, &room_id, "m.room.topic").await["topic"],
        "Chat room for Summer Party"
    );
    assert_eq!(
        state(&alice, &room_id, "m.room.join_rules").await["join_rule"],
        "invite"
    );
    assert_eq!(
        state(&alice, &room_id, "m.room.history_visibility").await["history_visibility"],
        "shared"
    );
    assert_eq!(
        state(&alice, &room_id, "m.room.guest_access").await["guest_access"],
        "forbidden"
    );
    let create = alice
        .room_state(hs, &room_id)
        .await
        .into_iter()
        .find(|e| e["type"] == "m.room.create")
        .unwrap();
    assert_eq!(
        create["sender"],
        bot.as_str(),
        "the room was not created by the tenant's bot"
    );
    assert_eq!(
        create["content"]["room_version"], "12",
        "Synapse 1.163 creates v12 rooms by default"
    );

    let levels = state(&alice, &room_id, "m.room.power_levels").await;
    assert_eq!(levels["users"][user("rooms-host")], 100);
    assert_eq!(levels["users"][user("rooms-moderator")], 50);
    assert!(
        levels["users"].get(user("rooms-participant")).is_none(),
        "participants keep the default level: {levels}"
    );
    assert!(
        levels["users"].get(&bot).is_none(),
        "a v12 creator must not be listed: {levels}"
    );
    for action in ["redact", "kick", "ban", "state_default"] {
        assert_eq!(levels[action], 50, "{action}: {levels}");
    }
    let members: Vec<(String, String)> = alice.members(hs, &room_id).await;
    let membership = |who: &str| {
        members
            .iter()
            .find(|(u, _)| u == who)
            .map(|(_, m)| m.clone())
    };
    assert_eq!(
        membership(&user("rooms-moderator")).as_deref(),
        Some("invite")
    );
    assert_eq!(
        membership(&user("rooms-participant")).as_deref(),
        Some("invite")
    );
    assert_eq!(membership(&bot).as_deref(), Some("join"));

    // The platform's view: ready, with the applied levels.
    let token = daemon.config.tenant_token("tenantA");
    let (status, room) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/rooms/event/summer-party",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (room["status"].as_str(), room["room_id"].as_str()),
        (Some("ready"), Some(room_id.as_str()))
    );
    let host = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user("rooms-host").as_str())
        .unwrap();
    assert_eq!(
        (host["role"].as_str(), host["power_level"].as_i64()),
        (Some("host"), Some(100))
    );

    // The same declaration again changes nothing: same job, same room.
    let (status, again) = daemon
        .platform(
            Method::PUT,
            "/v1/tenants/tenantA/rooms/event/summer-party",
            Some(&token),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        again["job"]["id"], job["id"],
        "a repeated PUT queued a second job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_10_rooms_list_the_bot_at_100_and_map_group_roles() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config.room_version = Some("10".into());
    let daemon = ready_daemon_with(config).await;
    let owner = register_user(hs, "v10-owner").await;
    register_user(hs, "v10-admin").await;
    let body = json!({
        "name": "Hikers Chat",
        "visibility": "public",
        "members": [
            {"user_id": user("v10-owner"), "role": "owner"},
            {"user_id": user("v10-admin"), "role": "admin"},
        ],
    });
    let job = declare(&daemon, "ciTenantB", "group", "hikers", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    assert_eq!(
        job["result"]["alias"],
        format!("#group-hikers-ciTenantB:{SERVER_NAME}")
    );
    owner.join(hs, &room_id).await;
    let create = owner
        .room_state(hs, &room_id)
        .await
        .into_iter()
        .find(|e| e["type"] == "m.room.create")
        .unwrap();
    assert_eq!(create["content"]["room_version"], "10");
    assert_eq!(
        create["sender"],
        bot_id("ciTenantB").as_str(),
        "tenant B's room was not created by its own bot"
    );
    let levels = state(&owner, &room_id, "m.room.power_levels").await;
    assert_eq!(levels["users"][bot_id("ciTenantB")], 100, "{levels}");
    assert_eq!(levels["users"][user("v10-owner")], 100);
    assert_eq!(levels["users"][user("v10-admin")], 75);
    assert_eq!(
        state(&owner, &room_id, "m.room.join_rules").await["join_rule"],
        "public"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_the_alias_of_a_declared_room_creates_it_once() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    // No job worker in this daemon: only the alias query can create the room.
    let mut config = fresh_config();
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    let daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    let body = json!({"name": "JIT Chat", "visibility": "public"});
    let (status, _) = daemon
        .platform(
            Method::PUT,
            "/v1/tenants/tenantA/rooms/event/jit-party",
            Some(&token),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let alias = format!("#event-jit-party-tenantA:{SERVER_NAME}");
    let visitor = register_user(hs, "jit-visitor").await;

    // Five lookups at once: one room.
    let lookups: Vec<_> = (0..5)
        .map(|_| {
            let (visitor, hs, path) = (
                visitor.clone(),
                hs.to_owned(),
                format!("/_matrix/client/v3/directory/room/{}", encode(&alias)),
            );
            tokio::spawn(async move { visitor.request(&hs, Method::GET, &path, None).await })
        })
        .collect();
    let mut rooms = Vec::new();
    for lookup in lookups {
        let (status, answer) = lookup.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
        rooms.push(answer["room_id"].as_str().unwrap().to_owned());
    }
    rooms.dedup();
    assert_eq!(
        rooms.len(),
        1,
        "concurrent lookups made several rooms: {rooms:?}"
    );

    let joined = visitor.join(hs, &alias).await;
    assert_eq!(joined, rooms[0]);
    let (_, room) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/rooms/event/jit-party",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(room["room_id"], rooms[0].as_str());

    // An alias nobody declared is not found.
    let undeclared = format!(
        "/_matrix/client/v3/directory/room/{}",
        encode(&format!("#event-never-declared-tenantA:{SERVER_NAME}"))
    );
    let (status, answer) = visitor.request(hs, Method::GET, &undeclared, None).await;
    assert_eq!(
        (status, answer["errcode"].as_str()),
        (StatusCode::NOT_FOUND, Some("M_NOT_FOUND"))
    );
}
