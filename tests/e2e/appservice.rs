//! The appservice core against the real Synapse: preflight, ping, user queries, transactions.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{
    SERVER_NAME, assert_no_token, bot_id, environment, fresh_config, port_turn, ready_daemon,
    ready_daemon_with,
};
use crate::support::eventually;
use crate::support::matrix_client::{encode, register_user, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_with_and_without_a_running_daemon() {
    let _turn = port_turn().await;
    let config = fresh_config();
    // No daemon: `check` answers Synapse's ping itself.
    let (code, stdout, stderr) = config.cli(&["check"]);
    assert_eq!(code, 0, "check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ok   appservice ping"), "{stdout}");
    assert_no_token(&format!("{stdout}{stderr}"), &config);

    // With the daemon serving, Synapse's ping reaches the daemon.
    let daemon = ready_daemon().await;
    let (code, stdout, stderr) = daemon.config.cli(&["check"]);
    assert_eq!(code, 0, "check failed:\n{stdout}\n{stderr}");
    assert!(
        daemon
            .metric("openmeet_as_last_successful_ping_timestamp_seconds", "")
            .await
            > 0.0
    );
    assert_no_token(&daemon.logs(), &daemon.config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_hs_token_makes_check_fail_with_the_fix() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    config.tokens.hs_token = format!("not-the-registered-one-{}", config.tokens.hs_token);
    let (code, stdout, stderr) = config.cli(&["check"]);
    assert_eq!(
        code, 16,
        "expected the hs_token exit code:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("hs_token") && stderr.contains("registration"),
        "no fix sentence: {stderr}"
    );
    assert_no_token(&format!("{stdout}{stderr}"), &config);
    assert!(
        !format!("{stdout}{stderr}").contains(&config.tokens.hs_token),
        "the wrong token was printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_as_token_makes_check_fail_with_the_fix() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    config.tokens.as_token = format!("unknown-{}", config.tokens.as_token);
    let (code, stdout, stderr) = config.cli(&["check"]);
    assert_eq!(
        code, 13,
        "expected the as_token exit code:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("Synapse has not loaded this registration"),
        "no fix sentence: {stderr}"
    );
    assert!(
        !format!("{stdout}{stderr}").contains(&config.tokens.as_token),
        "the token was printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invited_bot_is_registered_and_its_room_events_arrive_once() {
    let _turn = port_turn().await;
    let env = environment();
    let hs = env.synapse.url.as_str();
    let daemon = ready_daemon().await;
    let bot = bot_id("ciTenantB");

    let alice = register_user(hs, "alice-invites").await;
    // A room the platform does not manage: the bot will decline the invite, then join by itself.
    let room = alice
        .create_room(hs, json!({"name": "E2E invite", "preset": "public_chat"}))
        .await;
    alice.invite(hs, &room, &bot).await;

    // Synapse asked whether the bot exists; the daemon registered it before answering.
    let invite = eventually(
        "the invite in a transaction",
        Duration::from_secs(20),
        || async {
            daemon
                .inbox_events()
                .into_iter()
                .find(|e| e["room_id"] == room.as_str() && e["outcome"] == "own_membership:invite")
        },
    )
    .await;
    assert_eq!(invite["event_type"], "m.room.member");
    assert!(
        daemon
            .metric("openmeet_as_user_queries_total", "registered")
            .await
            >= 1.0
    );
    let (status, profile) = alice.get_profile(hs, &bot).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the bot does not exist on Synapse: {profile}"
    );

    // The invite to a room the platform does not manage is declined...
    eventually("the bot to decline", Duration::from_secs(20), || async {
        let members = alice.members(hs, &room).await;
        members
            .iter()
            .any(|(u, m)| *u == bot && m == "leave")
            .then_some(())
    })
    .await;

    // ...and once the bot is in the room (here it joins the public room by itself, through the
    // as_token), a human's message reaches us.
    let join = format!(
        "/_matrix/client/v3/join/{}?user_id={}",
        encode(&room),
        encode(&bot)
    );
    let (status, answer) = request(
        hs,
        Some(&daemon.config.tokens.as_token),
        Method::POST,
        &join,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let message_id = alice.send_message(hs, &room, "hello bots").await;
    let message = eventually(
        "the message in a transaction",
        Duration::from_secs(20),
        || async {
            daemon
                .inbox_events()
                .into_iter()
                .find(|e| e["event_id"] == message_id.as_str())
        },
    )
    .await;
    assert_eq!(message["event_type"], "m.room.message");
    eventually(
        "the message to be processed",
        Duration::from_secs(10),
        || async {
            let events = daemon.inbox_events();
            let ours = events
                .iter()
                .find(|e| e["event_id"] == message_id.as_str())?;
            (ours["outcome"] == "message").then_some(())
        },
    )
    .await;

    // Each event is stored once, however often it was delivered.
    let in_room: Vec<Value> = daemon
        .inbox_events()
        .into_iter()
        .filter(|e| e["room_id"] == room.as_str())
        .collect();
    let mut ids: Vec<&str> = in_room
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "an event was stored twice");
    assert!(
        in_room
            .iter()
            .any(|e| e["outcome"] == "own_membership:join"),
        "{in_room:?}"
    );
    assert_no_token(&daemon.logs(), &daemon.config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_registered_by_a_user_query_still_gets_its_display_name() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config
        .tenants
        .push(("ciNamed".into(), "Named Tenant".into()));
    let _daemon = ready_daemon_with(config).await;
    let bot = bot_id("ciNamed");
    let alice = register_user(hs, "alice-names").await;
    let room = alice
        .create_room(hs, json!({"name": "E2E naming", "preset": "private_chat"}))
        .await;
    // Synapse asks whether the bot exists and the daemon registers it; then the bot declines,
    // its first job, which must give it its name although it is registered already.
    alice.invite(hs, &room, &bot).await;
    eventually(
        "the bot's display name",
        Duration::from_secs(30),
        || async {
            let (_, profile) = alice.get_profile(hs, &bot).await;
            (profile["displayname"] == "OpenMeet (Named Tenant)").then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn humans_and_unknown_tenants_are_not_ours() {
    let _turn = port_turn().await;
    let env = environment();
    let hs = env.synapse.url.as_str();
    let daemon = ready_daemon().await;
    let alice = register_user(hs, "alice-strangers").await;
    let room = alice.create_room(hs, json!({})).await;
    let stranger = format!("@openmeet-bot-nosuchtenant:{SERVER_NAME}");
    // Whether Synapse lets this invite through does not matter: the user must never be created.
    alice
        .request(
            hs,
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{}/invite", encode(&room)),
            Some(json!({"user_id": stranger})),
        )
        .await;
    eventually("the user query", Duration::from_secs(20), || async {
        (daemon
            .metric("openmeet_as_user_queries_total", "not_ours")
            .await
            >= 1.0)
            .then_some(())
    })
    .await;
    let (status, _) = alice.get_profile(hs, &stranger).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a bot for an unconfigured tenant was registered"
    );
}
