//! Reports that reach the tenant (DESIGN §7.3), against the real Synapse behind the operator's
//! reverse proxy (`support::path_proxy`, the rule of docs/operations.md): a member's report of an
//! event reaches the tenant's webhook with the event's body and Synapse's admins too; a report
//! with a token Synapse refuses, or from someone not in the room, is refused as Synapse would; a
//! report about a room the daemon does not manage reaches Synapse only.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{environment, fresh_config, port_turn, ready_daemon_with};
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::{TestUser, encode, register_user, request};
use crate::support::path_proxy::PathProxy;
use crate::support::webhook_receiver::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn hs() -> &'static str {
    environment().synapse.url.as_str()
}

fn event_report_path(room_id: &str, event_id: &str) -> String {
    format!(
        "/_matrix/client/v3/rooms/{}/report/{}",
        encode(room_id),
        encode(event_id)
    )
}

/// Synapse's event reports about `event_id`, as its admin API lists them.
async fn synapse_reports(admin: &TestUser, event_id: &str) -> Vec<Value> {
    let (status, answer) = admin
        .request(
            hs(),
            Method::GET,
            "/_synapse/admin/v1/event_reports?limit=100",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["event_reports"]
        .as_array()
        .expect("event_reports")
        .iter()
        .filter(|report| report["event_id"] == event_id)
        .cloned()
        .collect()
}

/// The tenant's reports, as `GET /v1/tenants/{tenant}/reports` lists them.
async fn tenant_reports(daemon: &Daemon, tenant: &str) -> Vec<Value> {
    let token = daemon.config.tenant_token(tenant);
    let path = format!("/v1/tenants/{tenant}/reports");
    let (status, answer) = daemon
        .platform(Method::GET, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["reports"].as_array().expect("reports").clone()
}

/// The tenant's `report.created` events in its feed.
async fn feed_reports(daemon: &Daemon, tenant: &str) -> Vec<Value> {
    let token = daemon.config.tenant_token(tenant);
    let path = format!("/v1/tenants/{tenant}/events?limit=1000");
    let (status, answer) = daemon
        .platform(Method::GET, &path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["type"] == "report.created")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_report_reaches_the_tenant_and_synapse_and_others_are_refused_or_passed_through()
{
    let _turn = port_turn().await;
    let receiver = Receiver::start().await;
    let mut config = fresh_config();
    config.webhooks = vec![("tenantA".into(), receiver.url.clone(), SECRET.into())];
    let daemon = ready_daemon_with(config).await;
    let daemon_url = format!(
        "http://127.0.0.1:{}",
        daemon.config.listening_appservice_port()
    );
    let proxy = PathProxy::start(hs(), &daemon_url).await;
    let reporter = register_user(hs(), "reports-reporter").await;
    let offender = register_user(hs(), "reports-offender").await;
    let outsider = register_user(hs(), "reports-outsider").await;
    let admin = register_user(hs(), "reports-admin").await;
    environment().synapse.make_admin(&admin.user_id);

    let body = json!({"name": "Reported Chat", "visibility": "private", "members": [
        {"user_id": reporter.user_id, "role": "participant"},
        {"user_id": offender.user_id, "role": "participant"},
    ]});
    let job = daemon.declare("tenantA", "event", "reported", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    reporter.join(hs(), &room_id).await;
    offender.join(hs(), &room_id).await;
    let event_id = offender
        .send_message(hs(), &room_id, "cheap watches at spam.example")
        .await;
    let path = event_report_path(&room_id, &event_id);

    // Through the proxy, as any client would send it to its homeserver.
    let (status, answer) = reporter
        .request(
            &proxy.url,
            Method::POST,
            &path,
            Some(json!({"reason": "spam", "score": -100})),
        )
        .await;
    assert_eq!(
        (status, &answer),
        (StatusCode::OK, &json!({})),
        "{}",
        daemon.logs()
    );

    let webhook = eventually(
        "report.created at the webhook",
        Duration::from_secs(30),
        || {
            let received = receiver.received();
            async move {
                received
                    .into_iter()
                    .find(|r| r.json["type"] == "report.created")
            }
        },
    )
    .await;
    assert!(webhook.signed_with(SECRET), "{webhook:?}");
    let data = &webhook.json["data"];
    assert_eq!(
        webhook.json["room"],
        json!({"kind": "event", "slug": "reported"})
    );
    assert_eq!(data["room_id"], room_id.as_str());
    assert_eq!(data["event_id"], event_id.as_str());
    assert_eq!(data["reporter"], reporter.user_id.as_str());
    assert_eq!(data["reason"], "spam");
    assert_eq!(data["score"], -100);
    assert_eq!(data["event"]["sender"], offender.user_id.as_str());
    assert_eq!(data["event"]["type"], "m.room.message");
    assert_eq!(
        data["event"]["content"]["body"],
        "cheap watches at spam.example"
    );

    let [kept] = &synapse_reports(&admin, &event_id).await[..] else {
        panic!("Synapse does not show the report once");
    };
    assert_eq!(kept["user_id"], reporter.user_id.as_str());
    assert_eq!(kept["reason"], "spam");
    assert_eq!(kept["room_id"], room_id.as_str());
    let [listed] = &tenant_reports(&daemon, "tenantA").await[..] else {
        panic!("the tenant does not list the report once");
    };
    assert_eq!(listed["id"], data["report"]);
    assert_eq!(
        listed["event"]["content"]["body"],
        "cheap watches at spam.example"
    );
    assert!(listed["forwarded_at"].is_string(), "{listed}");
    assert_eq!(listed["forward_error"], Value::Null);

    // Refused as Synapse refuses them: no token, a token Synapse does not know, someone who is
    // not in the room.
    let body = Some(json!({"reason": "again"}));
    let (status, answer) = request(&proxy.url, None, Method::POST, &path, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["errcode"], "M_MISSING_TOKEN");
    let forged = Some("syt_cmVwb3J0cw_not_a_token_0000");
    let (status, answer) = request(&proxy.url, forged, Method::POST, &path, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["errcode"], "M_UNKNOWN_TOKEN");
    let (status, answer) = outsider
        .request(&proxy.url, Method::POST, &path, body.clone())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["errcode"], "M_NOT_FOUND");
    // An event that is not in the room.
    let elsewhere = event_report_path(&room_id, "$not-an-event-of-this-room");
    let (status, answer) = reporter
        .request(&proxy.url, Method::POST, &elsewhere, body.clone())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(synapse_reports(&admin, &event_id).await.len(), 1);
    assert_eq!(tenant_reports(&daemon, "tenantA").await.len(), 1);

    // A room of nobody's tenant: Synapse keeps the report, the tenants hear nothing.
    let unmanaged = outsider
        .create_room(hs(), json!({"preset": "private_chat"}))
        .await;
    let unmanaged_event = outsider.send_message(hs(), &unmanaged, "my own room").await;
    let (status, answer) = outsider
        .request(
            &proxy.url,
            Method::POST,
            &event_report_path(&unmanaged, &unmanaged_event),
            Some(json!({"reason": "testing"})),
        )
        .await;
    assert_eq!((status, &answer), (StatusCode::OK, &json!({})));
    let [passed] = &synapse_reports(&admin, &unmanaged_event).await[..] else {
        panic!("Synapse does not show the passed-through report once");
    };
    assert_eq!(passed["user_id"], outsider.user_id.as_str());

    // A member's report of the room itself reaches the tenant without an event; a user report is
    // Synapse's alone.
    let room_path = format!("/_matrix/client/v3/rooms/{}/report", encode(&room_id));
    let (status, answer) = reporter
        .request(
            &proxy.url,
            Method::POST,
            &room_path,
            Some(json!({"reason": "the whole room"})),
        )
        .await;
    assert_eq!((status, &answer), (StatusCode::OK, &json!({})));
    let user_path = format!(
        "/_matrix/client/v3/users/{}/report",
        encode(&offender.user_id)
    );
    let (status, answer) = reporter
        .request(
            &proxy.url,
            Method::POST,
            &user_path,
            Some(json!({"reason": "a spammer"})),
        )
        .await;
    assert_eq!((status, &answer), (StatusCode::OK, &json!({})));

    let reports = tenant_reports(&daemon, "tenantA").await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[1]["event_id"], Value::Null);
    assert_eq!(reports[1]["reason"], "the whole room");
    let feed = feed_reports(&daemon, "tenantA").await;
    assert_eq!(feed.len(), 2, "{feed:?}");
    assert!(
        feed.iter()
            .all(|event| event["data"]["room_id"] == room_id.as_str())
    );
    assert!(feed_reports(&daemon, "ciTenantB").await.is_empty());
    crate::environment::assert_no_token(&daemon.logs(), &daemon.config);
    assert!(
        !daemon.logs().contains(&reporter.access_token),
        "the reporter's token is in the log"
    );
}
