//! The cutover from OpenMeet's NestJS appservice (DESIGN §14, docs/migration.md), end to end: the
//! test seeds Synapse as that appservice left it, acting as it through the same registration —
//! rooms its sender made with its own createRoom body and our aliases (public, private, one
//! encrypted), one the tenant's bot made without our alias, humans joined and chatting, hosts
//! raised to 100 — then `rooms adopt --dry-run` changes nothing, and `rooms adopt` takes every room
//! over: same ids, every earlier message, the tenant bot at 100, the declared settings and members.

use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{state, texts, user};
use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with,
};
use crate::support::matrix_client::{
    TestUser, encode, register_as_appservice, register_user, request,
};

const SENDER: &str = "openmeet-bot";

/// A room the NestJS appservice made: `createRoom` as its sender with its body, then the host
/// invited, joined, raised to 100 by the sender, and chatting.
async fn legacy_room(
    as_token: &str,
    acting_as: Option<&str>,
    body: Value,
    host: &TestUser,
    text: &str,
) -> String {
    let hs = environment().synapse.url.as_str();
    let as_user = acting_as
        .map(|user| format!("?user_id={}", encode(user)))
        .unwrap_or_default();
    let path = format!("/_matrix/client/v3/createRoom{as_user}");
    let (status, created) = request(hs, Some(as_token), Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let room_id = created["room_id"].as_str().unwrap().to_owned();
    let invite = format!(
        "/_matrix/client/v3/rooms/{}/invite{as_user}",
        encode(&room_id)
    );
    let (status, answer) = request(
        hs,
        Some(as_token),
        Method::POST,
        &invite,
        Some(json!({"user_id": host.user_id})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    host.join(hs, &room_id).await;
    let levels_path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/{as_user}",
        encode(&room_id)
    );
    let (_, mut levels) = request(hs, Some(as_token), Method::GET, &levels_path, None).await;
    levels["users"][host.user_id.as_str()] = json!(100);
    let (status, answer) =
        request(hs, Some(as_token), Method::PUT, &levels_path, Some(levels)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    host.send_message(hs, &room_id, text).await;
    room_id
}

/// NestJS's body: `"{Name} Chat"`, the preset, our alias.
fn nest_body(name: &str, preset: &str, alias_localpart: Option<&str>) -> Value {
    let mut body =
        json!({"name": format!("{name} Chat"), "preset": preset, "visibility": "private"});
    if let Some(localpart) = alias_localpart {
        body["room_alias_name"] = json!(localpart);
    }
    body
}

fn outcomes(stdout: &str) -> Vec<(String, String)> {
    let mut outcomes: Vec<(String, String)> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line per room"))
        .map(|line| {
            (
                line["room"].as_str().unwrap().to_owned(),
                line["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    outcomes.sort();
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nestjs_rooms_are_adopted_with_their_ids_and_history_and_a_dry_run_changes_nothing() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let as_token = daemon.config.tokens.as_token.clone();
    let host = register_user(hs, "cutover-host").await;
    let member = register_user(hs, "cutover-member").await;
    let tenant_bot = bot_id("tenantA");
    let sender = format!("@{SENDER}:{SERVER_NAME}");

    let public = legacy_room(
        &as_token,
        None,
        nest_body(
            "Harvest Fair",
            "public_chat",
            Some("event-harvest-fair-tenantA"),
        ),
        &host,
        "see you at the fair",
    )
    .await;
    member.join(hs, &public).await;
    member.send_message(hs, &public, "bringing apples").await;
    let private = legacy_room(
        &as_token,
        None,
        nest_body("Book Club", "private_chat", Some("group-book-club-tenantA")),
        &host,
        "chapter 3 tonight",
    )
    .await;
    let mut encrypted_body = nest_body("Board", "private_chat", Some("group-board-tenantA"));
    encrypted_body["initial_state"] = json!([{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]);
    let encrypted = legacy_room(
        &as_token,
        None,
        encrypted_body,
        &host,
        "ciphertext in real life",
    )
    .await;
    // July 2025: the tenant's own bot made a room, without our alias.
    register_as_appservice(hs, &as_token, &tenant_bot).await;
    let july = legacy_room(
        &as_token,
        Some(&tenant_bot),
        nest_body("July Picnic", "public_chat", None),
        &host,
        "july was fun",
    )
    .await;

    let host_member = json!([{"user_id": host.user_id, "role": "host"}]);
    let lines = [
        json!({"tenant": "tenantA", "kind": "event", "slug": "harvest-fair", "name": "Harvest Fair Chat", "visibility": "public",
               "members": [{"user_id": host.user_id, "role": "host"}, {"user_id": user("cutover-member"), "role": "participant"}]}),
        json!({"tenant": "tenantA", "kind": "group", "slug": "book-club", "name": "Book Club Chat", "visibility": "private", "members": [{"user_id": host.user_id, "role": "owner"}]}),
        json!({"tenant": "tenantA", "kind": "group", "slug": "board", "name": "Board Chat", "visibility": "private", "members": [{"user_id": host.user_id, "role": "owner"}]}),
        json!({"tenant": "tenantA", "kind": "event", "slug": "july-picnic", "name": "July Picnic Chat", "visibility": "public", "members": host_member, "adopt": {"room_id": july}}),
    ];
    let file = daemon.config.dir.join("rooms.jsonl");
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();
    let rooms = [&public, &private, &encrypted, &july];
    let synapse = &environment().synapse;
    let before: Vec<(i64, i64)> = rooms
        .iter()
        .map(|room| synapse.events_and_rooms(room, &sender))
        .collect();

    let (code, stdout, stderr) =
        daemon
            .config
            .cli(&["rooms", "adopt", "--file", file, "--dry-run"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let adopted = |outcome: &str| {
        [
            "tenantA/event/harvest-fair",
            "tenantA/event/july-picnic",
            "tenantA/group/board",
            "tenantA/group/book-club",
        ]
        .map(|room| (room.to_owned(), outcome.to_owned()))
        .to_vec()
    };
    assert_eq!(outcomes(&stdout), adopted("adopted"), "{stdout}\n{stderr}");
    let after: Vec<(i64, i64)> = rooms
        .iter()
        .map(|room| synapse.events_and_rooms(room, &sender))
        .collect();
    assert_eq!(after, before, "the dry run changed Synapse");
    assert!(
        !synapse
            .current_memberships(&public)
            .iter()
            .any(|(user, _)| *user == tenant_bot)
    );

    // Other tests share this Synapse: rooms made are counted before and after.
    let made_before = (
        synapse.events_and_rooms(&public, &sender).1,
        synapse.events_and_rooms(&public, &tenant_bot).1,
    );
    let started = Instant::now();
    let (code, stdout, stderr) =
        daemon
            .config
            .cli(&["rooms", "adopt", "--file", file, "--concurrency", "2"]);
    let elapsed = started.elapsed();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(outcomes(&stdout), adopted("adopted"), "{stdout}\n{stderr}");
    eprintln!(
        "cutover: {} rooms adopted in {elapsed:?} ({:.2} rooms/s)",
        rooms.len(),
        rooms.len() as f64 / elapsed.as_secs_f64()
    );
    assert!(stderr.contains("4/4 rooms"), "the progress: {stderr}");

    for (room_id, (slug, kind)) in rooms.iter().zip([
        ("harvest-fair", "event"),
        ("book-club", "group"),
        ("board", "group"),
        ("july-picnic", "event"),
    ]) {
        let declared = daemon.get_room("tenantA", kind, slug).await;
        assert_eq!(
            (declared["room_id"].as_str(), declared["status"].as_str()),
            (Some(room_id.as_str()), Some("ready")),
            "{declared}"
        );
        let levels = state(&host, room_id, "m.room.power_levels").await;
        if **room_id == july {
            // Its creator, in a v12 room: above every level, and never listed.
            let path = format!("/_matrix/client/v3/rooms/{}/state", encode(room_id));
            let (_, all) = host.request(hs, Method::GET, &path, None).await;
            let create = all
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == "m.room.create");
            assert_eq!(create.unwrap()["sender"], tenant_bot.as_str());
        } else {
            assert_eq!(
                levels["users"][tenant_bot.as_str()],
                100,
                "{slug}: {levels}"
            );
        }
        assert_eq!(
            levels["users"][host.user_id.as_str()],
            100,
            "{slug}: {levels}"
        );
        let alias = format!("#{kind}-{slug}-tenantA:{SERVER_NAME}");
        let (status, resolved) = host.resolve_alias(hs, &alias).await;
        assert_eq!(
            (status, resolved["room_id"].as_str()),
            (StatusCode::OK, Some(room_id.as_str())),
            "{alias}"
        );
    }
    assert_eq!(
        texts(&host, &public).await,
        ["see you at the fair", "bringing apples"]
    );
    assert_eq!(texts(&host, &private).await, ["chapter 3 tonight"]);
    assert_eq!(texts(&host, &july).await, ["july was fun"]);
    assert_eq!(
        state(&host, &public, "m.room.join_rules").await["join_rule"],
        "public"
    );
    assert_eq!(
        state(&host, &private, "m.room.join_rules").await["join_rule"],
        "invite"
    );
    assert_eq!(
        state(&host, &encrypted, "m.room.encryption").await["algorithm"],
        "m.megolm.v1.aes-sha2"
    );
    assert_eq!(
        daemon.get_room("tenantA", "group", "board").await["encrypted"],
        true
    );
    let levels = state(&host, &public, "m.room.power_levels").await;
    assert_eq!(
        levels["users"].get(user("cutover-member")),
        None,
        "a participant at 0 has no entry: {levels}"
    );
    let (_, by_bot) = synapse.events_and_rooms(&public, &tenant_bot);
    let (_, by_sender) = synapse.events_and_rooms(&public, &sender);
    assert_eq!(
        (by_bot, by_sender),
        (made_before.1, made_before.0),
        "no second room: neither the tenant bot nor the sender made one"
    );

    // The same file again: every room is declared and converged, nothing changes.
    let (code, stdout, stderr) = daemon.config.cli(&["rooms", "adopt", "--file", file]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        outcomes(&stdout),
        adopted("unchanged"),
        "{stdout}\n{stderr}"
    );
}
