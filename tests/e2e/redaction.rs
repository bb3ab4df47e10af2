//! Redaction against the real Synapse: the tenant bot removes a user's messages since a time, and
//! nothing else — not their earlier ones, not another member's, not its own.

use std::time::{SystemTime, UNIX_EPOCH};

use openmeet_appservice::clock::rfc3339;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{SERVER_NAME, bot_id, environment, port_turn, ready_daemon};
use crate::rooms::declare;
use crate::support::matrix_client::{encode, register_user, request};

fn user(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_messages_since_a_time_are_redacted_and_nothing_else() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon().await;
    let spammer = register_user(hs, "redaction-spammer").await;
    let bystander = register_user(hs, "redaction-bystander").await;
    let members = json!([
        {"user_id": user("redaction-spammer"), "role": "participant"},
        {"user_id": user("redaction-bystander"), "role": "participant"},
    ]);
    let job = declare(
        &daemon,
        "tenantA",
        "event",
        "redaction",
        json!({"name": "Redaction", "visibility": "private", "members": members}),
    )
    .await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    spammer.join(hs, &room_id).await;
    bystander.join(hs, &room_id).await;

    let mut early = Vec::new();
    for i in 0..3 {
        early.push(
            spammer
                .send_message(hs, &room_id, &format!("early {i}"))
                .await,
        );
    }
    let newest = bystander.messages(hs, &room_id, 1).await;
    let last_early_ts = newest[0]["origin_server_ts"].as_i64().unwrap();
    // Synapse stamps with this machine's clock: every later event is stamped after `since`.
    while now_ms() <= last_early_ts {
        tokio::task::yield_now().await;
    }
    let since = rfc3339(last_early_ts + 1);

    let mut kept = early.clone();
    let mut recent = Vec::new();
    let bot_path = |txn: &str| {
        format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}?user_id={}",
            encode(&room_id),
            encode(&bot_id("tenantA"))
        )
    };
    for i in 0..20 {
        recent.push(
            spammer
                .send_message(hs, &room_id, &format!("spam {i}"))
                .await,
        );
        if i % 7 == 0 {
            kept.push(
                bystander
                    .send_message(hs, &room_id, &format!("reply {i}"))
                    .await,
            );
            let (status, sent) = request(
                hs,
                Some(&daemon.config.tokens.as_token),
                Method::PUT,
                &bot_path(&format!("redaction-test-{i}")),
                Some(json!({"msgtype": "m.notice", "body": format!("bot {i}")})),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{sent}");
            kept.push(sent["event_id"].as_str().unwrap().to_owned());
        }
    }

    let token = daemon.config.tenant_token("tenantA");
    let (status, answer) = daemon
        .platform(
            Method::POST,
            "/v1/tenants/tenantA/rooms/event/redaction/redactions",
            Some(&token),
            Some(json!({"user_id": spammer.user_id, "since": since, "reason": "spam"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    assert_eq!(job["result"], json!({"redacted": 20}));

    // The timeline as a member reads it.
    let timeline = bystander.messages(hs, &room_id, 200).await;
    let event = |id: &str| -> Value {
        timeline
            .iter()
            .find(|e| e["event_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} is not in the timeline"))
    };
    for id in &recent {
        let event = event(id);
        assert_eq!(event["content"], json!({}), "{event}");
        let because = &event["unsigned"]["redacted_because"];
        assert_eq!(because["sender"], bot_id("tenantA"), "{event}");
        assert_eq!(because["content"]["reason"], "spam", "{event}");
    }
    for id in &kept {
        let event = event(id);
        assert!(event["content"]["body"].is_string(), "{event} was redacted");
        assert!(event["unsigned"]["redacted_because"].is_null(), "{event}");
    }
    let redactions = timeline
        .iter()
        .filter(|e| e["type"] == "m.room.redaction")
        .count();
    assert_eq!(redactions, 20, "one redaction per message");
}
