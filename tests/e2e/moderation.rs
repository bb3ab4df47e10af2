//! Bans, mutes and their timeouts as declared state (DESIGN §7.3), against the real Synapse: what
//! the banned or muted user meets in Matrix, what a later declaration or a host's change cannot
//! undo, what lifting restores, and the audit entry each call writes.

use std::time::{Duration, Instant};

use openmeet_appservice::config::{Database, DatabaseUrl};
use openmeet_appservice::store::Store;
use openmeet_appservice::store::moderation_log::{self, Entry};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon, ready_daemon_with,
};
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::{TestUser, encode, register_user};

/// The platform user every call here says acted.
const ACTOR: &str = "openmeet-user-42";

fn hs() -> &'static str {
    environment().synapse.url.as_str()
}

/// A moderation call under `/v1/tenants/{tenant}/` as the tenant, with `X-OpenMeet-Actor`.
async fn call(
    daemon: &Daemon,
    method: Method,
    tenant: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token(tenant);
    daemon
        .platform_raw(
            method,
            &format!("/v1/tenants/{tenant}/{path}"),
            Some(&token),
            &[("x-openmeet-actor", ACTOR)],
            body.map(|body| body.to_string()),
        )
        .await
}

/// A moderation call that must be accepted; waits for its job to succeed and returns it.
async fn moderate(
    daemon: &Daemon,
    method: Method,
    tenant: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, answer) = call(daemon, method, tenant, path, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{path}: {answer}");
    let id = answer["job"]["id"].as_i64().expect("the job's id");
    let job = daemon
        .wait_for_job(id, &daemon.config.tenant_token(tenant))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    job
}

/// The audit log of `tenant`, oldest first, read from the daemon's database.
fn audit(daemon: &Daemon, tenant: &str) -> Vec<Entry> {
    let store = Store::new(&Database {
        url: DatabaseUrl::parse(&daemon.config.database_url).unwrap(),
        migrate_on_start: false,
        max_connections: 1,
        acquire_timeout: Duration::from_secs(10),
    });
    let conn = &mut *store.connection().unwrap();
    moderation_log::list(conn, Some(tenant), None, 0, 1000).unwrap()
}

/// `user`'s membership event in the room as `viewer` sees it (`Null`: none).
async fn member_event(viewer: &TestUser, room_id: &str, user: &str) -> Value {
    viewer
        .state_event(hs(), room_id, "m.room.member", user)
        .await
        .map(|content| json!({"content": content}))
        .unwrap_or(Value::Null)
}

async fn membership(viewer: &TestUser, room_id: &str, user: &str) -> String {
    member_event(viewer, room_id, user).await["content"]["membership"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

/// `user`'s entry in the room's power levels (`None`: no entry).
async fn level(viewer: &TestUser, room_id: &str, user: &str) -> Option<i64> {
    let levels = viewer
        .state_event(hs(), room_id, "m.room.power_levels", "")
        .await
        .expect("power levels");
    levels["users"][user].as_i64()
}

/// `PUT /send/m.room.message` as `user`: the homeserver's status.
async fn send_status(user: &TestUser, room_id: &str, text: &str) -> StatusCode {
    let path = format!(
        "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
        encode(room_id),
        encode(&format!("{text}-{:?}", Instant::now()))
    );
    let body = json!({"msgtype": "m.text", "body": text});
    user.request(hs(), Method::PUT, &path, Some(body)).await.0
}

async fn join_status(user: &TestUser, room_id: &str) -> StatusCode {
    let path = format!("/_matrix/client/v3/join/{}", encode(room_id));
    user.request(hs(), Method::POST, &path, Some(json!({})))
        .await
        .0
}

fn member(user: &TestUser, role: &str) -> Value {
    json!({"user_id": user.user_id, "role": role})
}

/// The member of a GET room answer with `user_id`.
fn listed<'a>(room: &'a Value, user_id: &str) -> &'a Value {
    room["members"]
        .as_array()
        .and_then(|members| members.iter().find(|m| m["user_id"] == user_id))
        .unwrap_or_else(|| panic!("{user_id} is not listed: {room}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_ban_keeps_the_user_out_even_when_declared_and_an_unban_invites_them_again() {
    let _turn = port_turn().await;
    let daemon = ready_daemon().await;
    let host = register_user(hs(), "rban-host").await;
    let spammer = register_user(hs(), "rban-spammer").await;
    let members = json!([member(&host, "host"), member(&spammer, "participant")]);
    let body = json!({"name": "Ban Chat", "visibility": "public", "members": members});
    let job = daemon.declare("tenantA", "event", "rban", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs(), &room_id).await;
    spammer.join(hs(), &room_id).await;

    let path = format!("rooms/event/rban/bans/{}", spammer.user_id);
    moderate(
        &daemon,
        Method::PUT,
        "tenantA",
        &path,
        Some(json!({"reason": "Spam links"})),
    )
    .await;
    let event = host
        .room_state(hs(), &room_id)
        .await
        .into_iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == spammer.user_id.as_str())
        .unwrap();
    assert_eq!(event["content"]["membership"], "ban", "{event}");
    assert_eq!(event["content"]["reason"], "Spam links", "{event}");
    assert_eq!(event["sender"], bot_id("tenantA"), "{event}");
    assert_eq!(join_status(&spammer, &room_id).await, StatusCode::FORBIDDEN);

    // A later PUT still listing them (with a change, so its job runs) does not invite them.
    let body = json!({"name": "Ban Chat, renamed", "visibility": "public", "members": members});
    daemon.declare("tenantA", "event", "rban", body).await;
    assert_eq!(membership(&host, &room_id, &spammer.user_id).await, "ban");
    let room = daemon.get_room("tenantA", "event", "rban").await;
    let shown = listed(&room, &spammer.user_id);
    assert_eq!(shown["role"], "participant", "{room}");
    assert_eq!(shown["banned"]["reason"], "Spam links", "{room}");
    assert_eq!(shown["banned"]["scope"], "room", "{room}");
    assert_eq!(shown["muted"], Value::Null, "{room}");

    // Unban: a declared member is invited again, and can join.
    moderate(&daemon, Method::DELETE, "tenantA", &path, None).await;
    assert_eq!(
        membership(&host, &room_id, &spammer.user_id).await,
        "invite"
    );
    spammer.join(hs(), &room_id).await;
    let room = daemon.get_room("tenantA", "event", "rban").await;
    assert_eq!(listed(&room, &spammer.user_id)["banned"], Value::Null);

    let entries = audit(&daemon, "tenantA");
    let seen: Vec<_> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.reason.as_deref(), e.actor.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("ban", Some("Spam links"), Some(ACTOR)),
            ("unban", None, Some(ACTOR))
        ]
    );
    assert_eq!(entries[0].user_id, spammer.user_id);
    assert_eq!(entries[0].room_slug.as_deref(), Some("rban"));
    assert!(entries.iter().all(|e| e.job_id.is_some()), "{entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_wide_ban_reaches_every_room_of_the_tenant_and_rooms_declared_later() {
    let _turn = port_turn().await;
    let daemon = ready_daemon().await;
    let host = register_user(hs(), "tban-host").await;
    let troll = register_user(hs(), "tban-troll").await;
    let rooms = [
        ("tenantA", "event", "tban-one", "participant"),
        ("tenantA", "group", "tban-two", "member"),
        ("ciTenantB", "event", "tban-other", "participant"),
    ];
    let mut room_ids = Vec::new();
    for (tenant, kind, slug, role) in rooms {
        let host_role = if kind == "group" { "owner" } else { "host" };
        let members = json!([member(&host, host_role), member(&troll, role)]);
        let body = json!({"name": "Tenant Chat", "visibility": "private", "members": members});
        let job = daemon.declare(tenant, kind, slug, body).await;
        let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
        host.join(hs(), &room_id).await;
        troll.join(hs(), &room_id).await;
        room_ids.push(room_id);
    }

    let path = format!("bans/{}", troll.user_id);
    let body = json!({"reason": "Harassment", "expires_in_seconds": 3600});
    let fan_out = moderate(&daemon, Method::PUT, "tenantA", &path, Some(body)).await;
    assert_eq!(fan_out["kind"], "converge_tenant", "{fan_out}");
    for room_id in &room_ids[..2] {
        eventually(
            "the troll to be banned in the tenant's room",
            Duration::from_secs(30),
            || async { (membership(&host, room_id, &troll.user_id).await == "ban").then_some(()) },
        )
        .await;
    }

    // A room declared afterwards, listing them: banned there, never invited.
    let members = json!([member(&host, "host"), member(&troll, "participant")]);
    let body = json!({"name": "Later Chat", "visibility": "public", "members": members});
    let job = daemon.declare("tenantA", "event", "tban-later", body).await;
    let later = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs(), &later).await;
    assert_eq!(membership(&host, &later, &troll.user_id).await, "ban");
    assert_eq!(join_status(&troll, &later).await, StatusCode::FORBIDDEN);
    let room = daemon.get_room("tenantA", "event", "tban-later").await;
    let banned = &listed(&room, &troll.user_id)["banned"];
    assert_eq!(banned["scope"], "tenant", "{room}");
    assert!(
        banned["expires_at"]
            .as_str()
            .is_some_and(|at| at.ends_with("Z")),
        "{room}"
    );

    // The other tenant's room is untouched.
    assert_eq!(
        membership(&host, &room_ids[2], &troll.user_id).await,
        "join"
    );

    // Lifted: invited again wherever they are declared.
    moderate(&daemon, Method::DELETE, "tenantA", &path, None).await;
    for room_id in [&room_ids[0], &room_ids[1], &later] {
        eventually(
            "the troll to be invited again",
            Duration::from_secs(30),
            || async {
                (membership(&host, room_id, &troll.user_id).await == "invite").then_some(())
            },
        )
        .await;
    }

    let entries = audit(&daemon, "tenantA");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        (entries[0].action.as_str(), entries[0].room_slug.as_deref()),
        ("ban", None)
    );
    assert!(entries[0].expires_at.is_some(), "{entries:?}");
    assert_eq!(entries[0].job_id, fan_out["id"].as_i64());
    assert_eq!(entries[1].action, "unban");
    assert!(audit(&daemon, "ciTenantB").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_is_enforced_by_synapse_kept_by_repair_and_an_unmute_restores_the_role() {
    let _turn = port_turn().await;
    let daemon = ready_daemon().await;
    let host = register_user(hs(), "mute-host").await;
    let talker = register_user(hs(), "mute-talker").await;
    let members = json!([member(&host, "host"), member(&talker, "speaker")]);
    let body = json!({"name": "Mute Chat", "visibility": "public", "members": members});
    let job = daemon.declare("tenantA", "event", "mute", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs(), &room_id).await;
    talker.join(hs(), &room_id).await;
    assert_eq!(level(&host, &room_id, &talker.user_id).await, Some(25));

    let path = format!("rooms/event/mute/mutes/{}", talker.user_id);
    moderate(
        &daemon,
        Method::PUT,
        "tenantA",
        &path,
        Some(json!({"reason": "Flooding"})),
    )
    .await;
    assert_eq!(level(&host, &room_id, &talker.user_id).await, Some(-1));
    assert_eq!(
        send_status(&talker, &room_id, "still here?").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(membership(&host, &room_id, &talker.user_id).await, "join");
    let room = daemon.get_room("tenantA", "event", "mute").await;
    assert_eq!(
        listed(&room, &talker.user_id)["muted"]["reason"],
        "Flooding",
        "{room}"
    );

    // The host raises them again by hand: power-level repair puts the mute back.
    let mut levels = host
        .state_event(hs(), &room_id, "m.room.power_levels", "")
        .await
        .unwrap();
    levels["users"][&talker.user_id] = json!(50);
    let state_path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/",
        encode(&room_id)
    );
    let (status, answer) = host
        .request(hs(), Method::PUT, &state_path, Some(levels))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    eventually(
        "the mute to be put back",
        Duration::from_secs(30),
        || async { (level(&host, &room_id, &talker.user_id).await == Some(-1)).then_some(()) },
    )
    .await;

    // Unmuted: exactly the speaker's level again, and they can send.
    moderate(&daemon, Method::DELETE, "tenantA", &path, None).await;
    assert_eq!(level(&host, &room_id, &talker.user_id).await, Some(25));
    assert_eq!(send_status(&talker, &room_id, "back").await, StatusCode::OK);
    let actions: Vec<String> = audit(&daemon, "tenantA")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["mute", "unmute"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_mute_lifts_by_itself_across_a_restart_and_a_reset_expiry_keeps_it() {
    let _turn = port_turn().await;
    let mut daemon = ready_daemon().await;
    let short = register_user(hs(), "timed-short").await;
    let long = register_user(hs(), "timed-long").await;
    let members = json!([member(&short, "speaker"), member(&long, "speaker")]);
    let body = json!({"name": "Timeout Chat", "visibility": "private", "members": members});
    let job = daemon.declare("tenantA", "event", "timeout", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    short.join(hs(), &room_id).await;
    long.join(hs(), &room_id).await;

    let started = Instant::now();
    let five = json!({"reason": "Cool down", "expires_in_seconds": 5});
    for user in [&short, &long] {
        let path = format!("rooms/event/timeout/mutes/{}", user.user_id);
        moderate(&daemon, Method::PUT, "tenantA", &path, Some(five.clone())).await;
    }
    // Set again before it expires: 60 s from now instead.
    let path = format!("rooms/event/timeout/mutes/{}", long.user_id);
    let sixty = json!({"reason": "Cool down longer", "expires_in_seconds": 60});
    moderate(&daemon, Method::PUT, "tenantA", &path, Some(sixty)).await;
    assert_eq!(level(&short, &room_id, &short.user_id).await, Some(-1));
    assert_eq!(level(&short, &room_id, &long.user_id).await, Some(-1));

    daemon.stop();
    daemon.restart().await;

    eventually(
        "the 5 s mute to lift by itself",
        Duration::from_secs(15).saturating_sub(started.elapsed()),
        || async { (level(&short, &room_id, &short.user_id).await == Some(25)).then_some(()) },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "lifted before its time"
    );
    assert_eq!(level(&short, &room_id, &long.user_id).await, Some(-1));
    assert_eq!(
        send_status(&long, &room_id, "muted still").await,
        StatusCode::FORBIDDEN
    );

    let entries = audit(&daemon, "tenantA");
    let seen: Vec<_> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.user_id.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("mute", short.user_id.as_str(), Some("Cool down")),
            ("mute", long.user_id.as_str(), Some("Cool down")),
            ("mute", long.user_id.as_str(), Some("Cool down longer")),
            ("unmute", short.user_id.as_str(), Some("expired")),
        ]
    );
    assert!(entries[1].expires_at < entries[2].expires_at, "{entries:?}");
    assert_eq!(entries[3].actor, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_synapse_has_no_profile_for_is_banned_and_muted() {
    let _turn = port_turn().await;
    let daemon = ready_daemon().await;
    let host = register_user(hs(), "ghost-host").await;
    let body = json!({"name": "Ghost Chat", "visibility": "private",
                      "members": [member(&host, "host")]});
    let job = daemon.declare("tenantA", "event", "ghost", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs(), &room_id).await;
    // Never registered: Synapse answers 404 for their profile, as it does for a user with no
    // display name and no avatar. Matrix bans and mutes them all the same. Two users, as a
    // banned user is left out of the levels.
    let banned = format!("@ghost-banned:{SERVER_NAME}");
    let muted = format!("@ghost-muted:{SERVER_NAME}");
    for user in [&banned, &muted] {
        let (status, answer) = host.get_profile(hs(), user).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user}: {answer}");
    }

    let path = format!("rooms/event/ghost/bans/{banned}");
    let body = json!({"reason": "Spam"});
    moderate(&daemon, Method::PUT, "tenantA", &path, Some(body)).await;
    let event = member_event(&host, &room_id, &banned).await;
    assert_eq!(event["content"]["membership"], "ban", "{event}");
    assert_eq!(event["content"]["reason"], "Spam", "{event}");

    let path = format!("rooms/event/ghost/mutes/{muted}");
    moderate(&daemon, Method::PUT, "tenantA", &path, Some(json!({}))).await;
    let levels = host
        .state_event(hs(), &room_id, "m.room.power_levels", "")
        .await
        .expect("power levels");
    let sending = levels["events"]["m.room.message"]
        .as_i64()
        .or(levels["events_default"].as_i64())
        .unwrap_or(0);
    let level = levels["users"][&muted].as_i64();
    assert!(
        level.is_some_and(|level| level < sending),
        "{muted} is not below the sending level {sending}: {levels}"
    );
    let actions: Vec<(String, String)> = audit(&daemon, "tenantA")
        .into_iter()
        .map(|e| (e.action, e.user_id))
        .collect();
    assert_eq!(
        actions,
        [("ban".to_owned(), banned), ("mute".to_owned(), muted)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_moderation_input_is_refused_with_a_json_error_and_no_audit_entry() {
    let _turn = port_turn().await;
    let daemon = ready_daemon().await;
    let known = register_user(hs(), "bad-input-known").await;
    let ban = json!({"reason": "Spam"});
    let cases = [
        (
            "bans/not-a-user".to_owned(),
            ban.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bans/@someone:elsewhere.example".to_owned(),
            ban.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("bans/{}", bot_id("tenantA")),
            ban.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("mutes/@openmeet-bot:{SERVER_NAME}"),
            json!({}),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("mutes/{}", known.user_id),
            json!({"expires_in_seconds": -5}),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("bans/{}", known.user_id),
            json!({"reason": "Spam", "expires_in_seconds": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("bans/{}", known.user_id),
            json!({}),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("rooms/event/nowhere/bans/{}", known.user_id),
            ban.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("rooms/event/nowhere/mutes/{}", known.user_id),
            json!({}),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, body, want) in cases {
        let (status, answer) = call(&daemon, Method::PUT, "tenantA", &path, Some(body)).await;
        assert_eq!(status, want, "{path}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()) && answer["code"].is_string(),
            "{path}: {answer}"
        );
    }
    let (status, answer) = call(
        &daemon,
        Method::DELETE,
        "tenantA",
        &format!("rooms/event/nowhere/bans/@x:{SERVER_NAME}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(audit(&daemon, "tenantA").is_empty());
    let counted = |outcome: &'static str| {
        let daemon = &daemon;
        async move {
            daemon
                .metric(
                    "openmeet_as_moderation_actions_total",
                    &format!("outcome=\"{outcome}\""),
                )
                .await
        }
    };
    assert!(counted("refused").await >= 5.0, "refusals are not counted");
    assert_eq!(counted("accepted").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muting_a_host_at_the_bots_level_fails_the_rooms_job_with_a_sentence() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    config.room_version = Some("10".into());
    let daemon = ready_daemon_with(config).await;
    let host = register_user(hs(), "v10-mute-host").await;
    let body = json!({"name": "V10 Chat", "visibility": "private",
                      "members": [member(&host, "host")]});
    let job = daemon.declare("tenantA", "event", "v10-mute", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs(), &room_id).await;

    let path = format!("rooms/event/v10-mute/mutes/{}", host.user_id);
    let (status, answer) = call(&daemon, Method::PUT, "tenantA", &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let token = daemon.config.tenant_token("tenantA");
    let job = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot mute") && error.contains(&host.user_id),
        "{job}"
    );
    assert_eq!(level(&host, &room_id, &host.user_id).await, Some(100));
    let room = daemon.get_room("tenantA", "event", "v10-mute").await;
    assert_eq!(room["status"], "failed", "{room}");

    // Lifted: the room converges again.
    moderate(&daemon, Method::DELETE, "tenantA", &path, None).await;
    let room = daemon.get_room("tenantA", "event", "v10-mute").await;
    assert_eq!(room["status"], "ready", "{room}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_move_invites_the_new_id_with_the_role_bans_it_where_the_old_one_was_and_kicks_the_old_one()
 {
    let _turn = port_turn().await;
    let daemon = ready_daemon().await;
    let host = register_user(hs(), "move-host").await;
    let old = register_user(hs(), "move-old").await;
    let new = register_user(hs(), "move-new").await;
    let rooms = [
        ("move-one", "moderator"),
        ("move-two", "participant"),
        ("move-three", "participant"),
    ];
    let mut room_ids = Vec::new();
    for (slug, role) in rooms {
        let members = json!([member(&host, "host"), member(&old, role)]);
        let body = json!({"name": "Move Chat", "visibility": "private", "members": members});
        let job = daemon.declare("tenantA", "event", slug, body).await;
        let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
        host.join(hs(), &room_id).await;
        old.join(hs(), &room_id).await;
        room_ids.push(room_id);
    }
    let ban = format!("rooms/event/move-three/bans/{}", old.user_id);
    let body = json!({"reason": "Spam links"});
    moderate(&daemon, Method::PUT, "tenantA", &ban, Some(body)).await;
    assert_eq!(membership(&host, &room_ids[2], &old.user_id).await, "ban");
    assert_eq!(level(&host, &room_ids[0], &old.user_id).await, Some(50));

    let path = format!("users/{}/move", old.user_id);
    let body = json!({"to": new.user_id});
    let fan_out = moderate(&daemon, Method::POST, "tenantA", &path, Some(body.clone())).await;
    assert_eq!(fan_out["kind"], "converge_tenant", "{fan_out}");
    assert_eq!(fan_out["result"]["rooms"], 3, "{fan_out}");

    // Where the old id was a member: the new one invited with its role, the old one kicked.
    for (room_id, (_, role)) in room_ids[..2].iter().zip(rooms) {
        eventually(
            "the new id to be invited and the old one removed",
            Duration::from_secs(30),
            || async {
                let invited = membership(&host, room_id, &new.user_id).await == "invite";
                let removed = membership(&host, room_id, &old.user_id).await == "leave";
                // The levels are written after the kick, in the same job.
                let dropped = level(&host, room_id, &old.user_id).await.is_none();
                (invited && removed && dropped).then_some(())
            },
        )
        .await;
        let kicked = member_event(&host, room_id, &old.user_id).await;
        assert_eq!(kicked["content"]["membership"], "leave", "{kicked}");
        assert_eq!(
            kicked["content"]["reason"], "Matrix account moved",
            "{kicked}"
        );
        let wanted = (role == "moderator").then_some(50);
        assert_eq!(level(&host, room_id, &new.user_id).await, wanted, "{role}");
        assert_eq!(level(&host, room_id, &old.user_id).await, None);
    }
    // Where the old id was banned: the new one is banned too, never invited, and the old one
    // stays banned.
    let three = &room_ids[2];
    eventually(
        "the new id to be banned where the old one was",
        Duration::from_secs(30),
        || async { (membership(&host, three, &new.user_id).await == "ban").then_some(()) },
    )
    .await;
    let banned = member_event(&host, three, &new.user_id).await;
    assert_eq!(banned["content"]["reason"], "Spam links", "{banned}");
    assert_eq!(membership(&host, three, &old.user_id).await, "ban");
    assert_eq!(join_status(&new, three).await, StatusCode::FORBIDDEN);
    new.join(hs(), &room_ids[0]).await;
    let room = daemon.get_room("tenantA", "event", "move-one").await;
    assert_eq!(listed(&room, &new.user_id)["role"], "moderator", "{room}");
    assert_eq!(listed(&room, &new.user_id)["power_level"], 50, "{room}");

    // The same move again: the earlier job, nothing new in the audit log.
    let (status, again) = call(&daemon, Method::POST, "tenantA", &path, Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["job"]["id"], fan_out["id"], "{again}");
    let moves: Vec<Entry> = audit(&daemon, "tenantA")
        .into_iter()
        .filter(|e| e.action == "move")
        .collect();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0].user_id, old.user_id);
    assert_eq!(moves[0].actor.as_deref(), Some(ACTOR));
    assert_eq!(moves[0].job_id, fan_out["id"].as_i64());
}
