//! What the bots do when others change a room in Synapse: a power level put back, a stranger's
//! invite declined, a lost private room replaced under its alias, a room upgrade followed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{declare, state, user};
use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with,
};
use crate::support::matrix_client::{encode, register_user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_level_changed_by_someone_else_is_put_back() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let host = register_user(hs, "repair-host").await;
    register_user(hs, "repair-moderator").await;
    let body = json!({"name": "Repair Chat", "visibility": "public", "members": [
        {"user_id": user("repair-host"), "role": "host"},
        {"user_id": user("repair-moderator"), "role": "moderator"},
    ]});
    let job = declare(&daemon, "tenantA", "event", "repair", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &room_id).await;

    // The host, who may, lowers the moderator to 0 by hand.
    let mut levels = state(&host, &room_id, "m.room.power_levels").await;
    levels["users"][user("repair-moderator")] = json!(0);
    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/",
        encode(&room_id)
    );
    let (status, answer) = host.request(hs, Method::PUT, &path, Some(levels)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    crate::support::eventually(
        "the declared level to be put back",
        std::time::Duration::from_secs(30),
        || async {
            let levels = state(&host, &room_id, "m.room.power_levels").await;
            (levels["users"][user("repair-moderator")] == 50).then_some(())
        },
    )
    .await;
    let levels = state(&host, &room_id, "m.room.power_levels").await;
    assert_eq!(
        levels["users"][user("repair-host")],
        100,
        "the reconcile touched another entry: {levels}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_invited_to_a_strangers_room_declines() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let stranger = register_user(hs, "stranger").await;
    let room_id = stranger
        .create_room(hs, json!({"name": "Not OpenMeet's"}))
        .await;
    let bot = bot_id("tenantA");
    stranger.invite(hs, &room_id, &bot).await;
    crate::support::eventually(
        "the bot to decline",
        std::time::Duration::from_secs(30),
        || async {
            let members = stranger.members(hs, &room_id).await;
            members
                .iter()
                .any(|(u, m)| *u == bot && m == "leave")
                .then_some(())
        },
    )
    .await;
    let (code, jobs, stderr) = daemon
        .config
        .cli(&["jobs", "list", "--kind", "decline_invite"]);
    assert_eq!(code, 0, "{stderr}");
    // Only this room's: Synapse may also hand this daemon events an earlier test left undelivered.
    let declines = jobs
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|job| job["payload"].as_str().unwrap().contains(room_id.as_str()))
        .count();
    assert_eq!(declines, 1, "{jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_the_bot_lost_is_replaced_under_the_same_alias() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let host = register_user(hs, "lost-host").await;
    let body = json!({"name": "Lost Chat", "visibility": "private", "members": [{"user_id": user("lost-host"), "role": "host"}]});
    let job = declare(&daemon, "tenantA", "event", "lost", body).await;
    let old_room = job["result"]["room_id"].as_str().unwrap().to_owned();

    // The bot is taken out of the private room (here: it is made to leave, through the as_token).
    let bot = bot_id("tenantA");
    let leave = format!(
        "/_matrix/client/v3/rooms/{}/leave?user_id={}",
        encode(&old_room),
        encode(&bot)
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

    let path = "/v1/tenants/tenantA/rooms/event/lost";
    let room = crate::support::eventually(
        "the room to be replaced",
        std::time::Duration::from_secs(30),
        || async {
            let (_, room) = daemon.platform(Method::GET, path, Some(&token), None).await;
            (room["status"] == "ready" && room["room_id"] != old_room.as_str()).then_some(room)
        },
    )
    .await;
    let new_room = room["room_id"].as_str().unwrap();
    let alias = format!("#event-lost-tenantA:{SERVER_NAME}");
    let (status, resolved) = host.resolve_alias(hs, &alias).await;
    assert_eq!(
        (status, resolved["room_id"].as_str()),
        (StatusCode::OK, Some(new_room))
    );
    let in_new = environment().synapse.current_memberships(new_room);
    assert!(
        in_new.contains(&(user("lost-host"), "invite".to_owned())),
        "the host was not invited to the replacement: {in_new:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_follows_a_room_upgrade() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config.room_version = Some("10".into());
    let daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    let host = register_user(hs, "upgrade-host").await;
    register_user(hs, "upgrade-moderator").await;
    let body = json!({"name": "Upgraded Chat", "visibility": "public", "members": [
        {"user_id": user("upgrade-host"), "role": "host"},
        {"user_id": user("upgrade-moderator"), "role": "moderator"},
    ]});
    let job = declare(&daemon, "tenantA", "event", "upgraded", body).await;
    let old_room = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &old_room).await;

    let new_room = host.upgrade_room(hs, &old_room, "10").await;

    let path = "/v1/tenants/tenantA/rooms/event/upgraded";
    crate::support::eventually(
        "the declaration to follow the upgrade",
        std::time::Duration::from_secs(30),
        || async {
            let (_, room) = daemon.platform(Method::GET, path, Some(&token), None).await;
            (room["room_id"] == new_room.as_str() && room["status"] == "ready").then_some(())
        },
    )
    .await;
    let members = environment().synapse.current_memberships(&new_room);
    assert!(
        members.contains(&(bot_id("tenantA"), "join".to_owned())),
        "{members:?}"
    );
    assert!(
        members.contains(&(user("upgrade-moderator"), "invite".to_owned())),
        "{members:?}"
    );
    host.join(hs, &new_room).await;
    let levels = state(&host, &new_room, "m.room.power_levels").await;
    assert_eq!(levels["users"][user("upgrade-moderator")], 50, "{levels}");
}
