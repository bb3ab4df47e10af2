//! A room declared through the platform API and made real in Synapse reaches OpenMeet core as a
//! signed `room.ready` webhook carrying its room id (DESIGN §7.4).

use std::time::Duration;

use serde_json::json;

use crate::environment::{fresh_config, port_turn, ready_daemon_with};
use crate::support::webhook_receiver::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_room_reaches_the_webhook_as_a_signed_room_ready() {
    let _turn = port_turn().await;
    let receiver = Receiver::start().await;
    let mut config = fresh_config();
    config.webhooks = vec![("tenantA".into(), receiver.url.clone(), SECRET.into())];
    let daemon = ready_daemon_with(config).await;
    crate::support::eventually("the webhook to start", Duration::from_secs(30), || async {
        daemon.logs().contains("webhook configured").then_some(())
    })
    .await;
    let job = daemon
        .declare(
            "tenantA",
            "event",
            "webhook-party",
            json!({"name": "Webhook Party", "visibility": "private"}),
        )
        .await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();

    receiver
        .wait_for_acknowledged("tenantA", 1, Duration::from_secs(30))
        .await;
    let ready = receiver
        .received()
        .into_iter()
        .find(|r| r.json["type"] == "room.ready")
        .expect("a room.ready webhook");
    assert!(ready.signed_with(SECRET), "{ready:?}");
    assert_eq!(ready.id, format!("tenantA-{}", ready.json["id"]));
    assert_eq!(ready.json["tenant"], "tenantA");
    assert_eq!(
        ready.json["room"],
        json!({"kind": "event", "slug": "webhook-party"})
    );
    assert_eq!(ready.json["data"]["room_id"], room_id.as_str());
}
