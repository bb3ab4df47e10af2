//! DELETE wins (DESIGN §7.1) and the room lifecycle's edges: a DELETE racing a creation (by a job
//! or by an alias query) or a followed upgrade, the bot invited into an upgraded room, a v12
//! upgrade that leaves the bot without power, hosts the bot cannot demote, and which leaves make
//! a room `lost`. Races are forced with a proxy that holds `createRoom` in front of Synapse.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with, still_in,
};
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::hold_proxy::HoldProxy;
use crate::support::matrix_client::{TestUser, encode, register_user};

fn user(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

/// The daemon's jobs, newest first.
fn jobs(daemon: &Daemon, args: &[&str]) -> Vec<Value> {
    let mut command = vec!["jobs", "list"];
    command.extend_from_slice(args);
    let (code, out, stderr) = daemon.config.cli(&command);
    assert_eq!(code, 0, "{stderr}");
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits until no job is queued or running.
async fn wait_idle(daemon: &Daemon) {
    eventually("every job to end", Duration::from_secs(60), || async {
        let busy = jobs(daemon, &[])
            .into_iter()
            .filter(|job| job["status"] == "queued" || job["status"] == "running")
            .count();
        (busy == 0).then_some(())
    })
    .await;
}

/// Stops the daemon and starts it again with its job worker on or off.
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

/// Asserts the room is gone from Matrix's point of view: nobody in it, the alias resolves nowhere.
async fn assert_torn_down(viewer: &TestUser, room_id: &str, alias: &str) {
    let hs = environment().synapse.url.as_str();
    assert_eq!(
        still_in(room_id),
        Vec::<String>::new(),
        "someone is still joined or invited in {room_id}"
    );
    let (status, answer) = viewer.resolve_alias(hs, alias).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the alias resolves: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_while_create_room_is_in_flight_ends_deleted_with_nothing_left() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let proxy = HoldProxy::start(hs).await;
    let mut config = fresh_config();
    config.homeserver_url = proxy.url.clone();
    let daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    let guest = register_user(hs, "race-guest").await;
    proxy.hold("/createRoom");
    let body = json!({"name": "Race Chat", "visibility": "public",
        "members": [{"user_id": user("race-guest"), "role": "participant"}]});
    let ensure = daemon.put_room("tenantA", "event", "race", body).await;
    proxy.wait_held(1).await;

    let path = "/v1/tenants/tenantA/rooms/event/race";
    let (status, answer) = daemon
        .platform(Method::DELETE, path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    proxy.release();
    daemon.wait_for_job(ensure, &token).await;
    wait_idle(&daemon).await;

    let room = daemon.get_room("tenantA", "event", "race").await;
    assert_eq!(room["status"], "deleted", "{room}\n{}", daemon.logs());
    let created = proxy.held_answers();
    let room_id = created[0]["room_id"]
        .as_str()
        .expect("createRoom succeeded");
    assert_torn_down(
        &guest,
        room_id,
        &format!("#event-race-tenantA:{SERVER_NAME}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_a_just_in_time_creation_ends_deleted_with_nothing_left() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let proxy = HoldProxy::start(hs).await;
    let mut config = fresh_config();
    config.homeserver_url = proxy.url.clone();
    // No worker yet: only the alias query creates the room.
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    let mut daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    register_user(hs, "jit-race-host").await;
    let body = json!({"name": "JIT Race", "visibility": "public",
        "members": [{"user_id": user("jit-race-host"), "role": "host"}]});
    daemon.put_room("tenantA", "event", "jit-race", body).await;
    let visitor = register_user(hs, "jit-race-visitor").await;
    let alias = format!("#event-jit-race-tenantA:{SERVER_NAME}");
    proxy.hold("/createRoom");
    let lookup = {
        let (visitor, hs, alias) = (visitor.clone(), hs.to_owned(), alias.clone());
        tokio::spawn(async move { visitor.resolve_alias(&hs, &alias).await })
    };
    proxy.wait_held(1).await;
    let path = "/v1/tenants/tenantA/rooms/event/jit-race";
    let (status, answer) = daemon
        .platform(Method::DELETE, path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    proxy.release();
    let (status, answer) = lookup.await.unwrap();
    println!("the alias lookup racing the DELETE answered {status}: {answer}");

    restart_with_jobs(&mut daemon, true).await;
    wait_idle(&daemon).await;
    let room = daemon.get_room("tenantA", "event", "jit-race").await;
    assert_eq!(room["status"], "deleted", "{room}");
    let created = proxy.held_answers();
    let room_id = created[0]["room_id"]
        .as_str()
        .expect("createRoom succeeded");
    assert_torn_down(&visitor, room_id, &alias).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_upgrade_queued_before_a_delete_does_not_bring_the_room_back() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config.room_version = Some("10".into());
    let mut daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    let host = register_user(hs, "gone-upgrade-host").await;
    let body = json!({"name": "Gone Upgrade", "visibility": "public",
        "members": [{"user_id": user("gone-upgrade-host"), "role": "host"}]});
    let job = daemon
        .declare("tenantA", "event", "gone-upgrade", body)
        .await;
    let old_room = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &old_room).await;

    // The worker is off: the upgrade's follow_upgrade job waits, and the DELETE comes after it.
    restart_with_jobs(&mut daemon, false).await;
    let new_room = host.upgrade_room(hs, &old_room, "10").await;
    eventually(
        "the upgrade to be queued",
        Duration::from_secs(30),
        || async { (!jobs(&daemon, &["--kind", "follow_upgrade"]).is_empty()).then_some(()) },
    )
    .await;
    let path = "/v1/tenants/tenantA/rooms/event/gone-upgrade";
    let (status, answer) = daemon
        .platform(Method::DELETE, path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    restart_with_jobs(&mut daemon, true).await;
    wait_idle(&daemon).await;
    let room = daemon.get_room("tenantA", "event", "gone-upgrade").await;
    assert_eq!(room["status"], "deleted", "{room}\n{}", daemon.logs());
    let bot = bot_id("tenantA");
    assert!(
        !still_in(&new_room).contains(&bot),
        "the bot followed the upgrade of a deleted room: {:?}",
        environment().synapse.current_memberships(&new_room)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_invited_into_an_upgraded_room_as_told_accepts_and_the_retry_follows() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config.room_version = Some("10".into());
    let daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    let host = register_user(hs, "invite-upgrade-host").await;
    let body = json!({"name": "Private Upgrade", "visibility": "private",
        "members": [{"user_id": user("invite-upgrade-host"), "role": "host"}]});
    let job = daemon
        .declare("tenantA", "event", "private-upgrade", body)
        .await;
    let old_room = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &old_room).await;
    let new_room = host.upgrade_room(hs, &old_room, "10").await;

    // The new room is invite-only: the job fails and says to invite the bot.
    let failed = eventually("the follow to fail", Duration::from_secs(30), || async {
        jobs(&daemon, &["--kind", "follow_upgrade", "--status", "failed"])
            .into_iter()
            .next()
    })
    .await;
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("invite it there"),
        "{failed}"
    );
    let bot = bot_id("tenantA");
    host.invite(hs, &new_room, &bot).await;
    eventually(
        "the invite to be processed",
        Duration::from_secs(30),
        || async {
            daemon
                .inbox_events()
                .iter()
                .any(|e| {
                    e["room_id"] == new_room.as_str() && e["outcome"] == "own_membership:invite"
                })
                .then_some(())
        },
    )
    .await;
    wait_idle(&daemon).await;
    let id = failed["id"].as_i64().unwrap().to_string();
    let (code, _, stderr) = daemon.config.cli(&["jobs", "retry", &id]);
    assert_eq!(code, 0, "{stderr}");
    let done = daemon
        .wait_for_job(failed["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", daemon.logs());
    let room = daemon.get_room("tenantA", "event", "private-upgrade").await;
    assert_eq!(
        (room["status"].as_str(), room["room_id"].as_str()),
        (Some("ready"), Some(new_room.as_str())),
        "{room}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v12_upgrade_that_leaves_the_bot_without_power_fails_with_the_fix() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config.room_version = Some("12".into());
    let daemon = ready_daemon_with(config).await;
    let host = register_user(hs, "v12-upgrade-host").await;
    let body = json!({"name": "V12 Upgrade", "visibility": "public",
        "members": [{"user_id": user("v12-upgrade-host"), "role": "host"}]});
    let job = daemon
        .declare("tenantA", "event", "v12-upgrade", body)
        .await;
    let old_room = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &old_room).await;
    // In v12 only a creator (150) may upgrade: the bot, the room's creator, raises the host to it.
    let mut levels = host
        .state_event(hs, &old_room, "m.room.power_levels", "")
        .await
        .unwrap();
    levels["users"][user("v12-upgrade-host")] = json!(150);
    let set = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/?user_id={}",
        encode(&old_room),
        encode(&bot_id("tenantA"))
    );
    let (status, answer) = crate::support::matrix_client::request(
        hs,
        Some(&daemon.config.tokens.as_token),
        Method::PUT,
        &set,
        Some(levels),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Upgraded without naming the bot in additional_creators: the host is the only creator.
    host.upgrade_room(hs, &old_room, "12").await;

    let ended = eventually("the follow to end", Duration::from_secs(30), || async {
        jobs(&daemon, &["--kind", "follow_upgrade"])
            .into_iter()
            .find(|job| job["status"] != "queued" && job["status"] != "running")
    })
    .await;
    assert_eq!(ended["status"], "failed", "{ended}\n{}", daemon.logs());
    let error = ended["last_error"].as_str().unwrap();
    assert!(error.contains("additional_creators"), "{error}");
    let room = daemon.get_room("tenantA", "event", "v12-upgrade").await;
    assert!(
        room["previous_room_id"].is_null(),
        "the room was replaced instead: {room}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_the_bot_cannot_demote_keep_their_level_and_later_jobs_still_succeed() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config.room_version = Some("10".into());
    let daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    for localpart in ["v10-host-one", "v10-host-two", "v10-late"] {
        register_user(hs, localpart).await;
    }
    let body = json!({"name": "Hosts Chat", "visibility": "public", "members": [
        {"user_id": user("v10-host-one"), "role": "host"},
        {"user_id": user("v10-host-two"), "role": "host"},
    ]});
    daemon.declare("tenantA", "event", "hosts", body).await;
    let path = "/v1/tenants/tenantA/rooms/event/hosts";

    // Demote one host, remove the other: at the bot's own level, Matrix lets it do neither.
    let member = |who: &str| format!("{path}/members/{}", encode(&user(who)));
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            &member("v10-host-one"),
            Some(&token),
            Some(json!({"role": "participant"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let demoted = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(demoted["status"], "succeeded", "{demoted}");
    let (status, answer) = daemon
        .platform(Method::DELETE, &member("v10-host-two"), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let removed = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(
        removed["status"],
        "succeeded",
        "{removed}\n{}",
        daemon.logs()
    );

    // A later change of the room still goes through.
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            &member("v10-late"),
            Some(&token),
            Some(json!({"role": "moderator"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let later = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(later["status"], "succeeded", "{later}");

    // GET reports the level the room really has.
    let room = daemon.get_room("tenantA", "event", "hosts").await;
    let level = |who: &str| {
        room["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user_id"] == user(who).as_str())
            .map(|m| m["power_level"].clone())
    };
    assert_eq!(level("v10-host-one"), Some(json!(100)), "{room}");
    assert_eq!(level("v10-late"), Some(json!(50)), "{room}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_rooms_own_bot_leaving_marks_it_lost() {
    let _turn = port_turn().await;
    let daemon = ready_daemon_with(fresh_config()).await;
    let job = daemon
        .declare(
            "tenantA",
            "event",
            "leaves",
            json!({"name": "Leaves Chat", "visibility": "public"}),
        )
        .await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    // Another tenant's bot and the sender leave the room (as Synapse would deliver it).
    let leave = |n: u32, who: &str| {
        json!({
            "type": "m.room.member", "event_id": format!("$leaves-{n}"), "room_id": room_id,
            "sender": who, "state_key": who, "origin_server_ts": 1,
            "content": {"membership": "leave"},
        })
    };
    let events = json!({"events": [
        leave(1, &bot_id("ciTenantB")),
        leave(2, &format!("@openmeet-bot:{SERVER_NAME}")),
    ]});
    daemon.push("leaves-1", events.to_string()).await;
    eventually(
        "the leaves to be processed",
        Duration::from_secs(30),
        || async {
            daemon
                .inbox_events()
                .iter()
                .filter(|e| {
                    e["event_id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with("$leaves-"))
                        && !e["processed_at"].is_null()
                })
                .nth(1)
                .map(|_| ())
        },
    )
    .await;
    let room = daemon.get_room("tenantA", "event", "leaves").await;
    assert_eq!(room["status"], "ready", "{room}");
}
