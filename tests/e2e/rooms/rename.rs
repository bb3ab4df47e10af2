//! Renaming a declared room: both aliases answer, it stays one room, a neighbour's slug is taken.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{declare, state};
use crate::environment::{SERVER_NAME, environment, fresh_config, port_turn, ready_daemon_with};
use crate::support::matrix_client::register_user;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_room_answers_to_both_aliases_and_stays_one_room() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let job = declare(
        &daemon,
        "tenantA",
        "event",
        "old-name",
        json!({"name": "Renamed Chat", "visibility": "public"}),
    )
    .await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    declare(
        &daemon,
        "tenantA",
        "event",
        "neighbour",
        json!({"name": "Other Chat", "visibility": "public"}),
    )
    .await;

    let rename = "/v1/tenants/tenantA/rooms/event/old-name/rename";
    let (status, answer) = daemon
        .platform(
            Method::POST,
            rename,
            Some(&token),
            Some(json!({"new_slug": "new-name"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let renamed = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(renamed["status"], "succeeded", "{renamed}");

    let visitor = register_user(hs, "rename-visitor").await;
    let (old, new) = (
        format!("#event-old-name-tenantA:{SERVER_NAME}"),
        format!("#event-new-name-tenantA:{SERVER_NAME}"),
    );
    for alias in [&old, &new] {
        let (status, resolved) = visitor.resolve_alias(hs, alias).await;
        assert_eq!(
            (status, resolved["room_id"].as_str()),
            (StatusCode::OK, Some(room_id.as_str())),
            "{alias}"
        );
    }
    visitor.join(hs, &new).await;
    let canonical = state(&visitor, &room_id, "m.room.canonical_alias").await;
    assert_eq!(canonical, json!({"alias": new, "alt_aliases": [old]}));

    // The same rename again queues nothing; either slug finds the room; a neighbour's slug is taken.
    let (_, again) = daemon
        .platform(
            Method::POST,
            "/v1/tenants/tenantA/rooms/event/new-name/rename",
            Some(&token),
            Some(json!({"new_slug": "new-name"})),
        )
        .await;
    assert_eq!(again["job"]["id"], renamed["id"]);
    for slug in ["old-name", "new-name"] {
        let (_, room) = daemon
            .platform(
                Method::GET,
                &format!("/v1/tenants/tenantA/rooms/event/{slug}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (room["room_id"].as_str(), room["slug"].as_str()),
            (Some(room_id.as_str()), Some("new-name"))
        );
    }
    let (status, answer) = daemon
        .platform(
            Method::POST,
            "/v1/tenants/tenantA/rooms/event/new-name/rename",
            Some(&token),
            Some(json!({"new_slug": "neighbour"})),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{answer}"
    );
}
