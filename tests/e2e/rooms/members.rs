//! Members of a declared room: invited, promoted, demoted and removed through the platform API.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{state, user};
use crate::environment::{environment, fresh_config, port_turn, ready_daemon_with};
use crate::support::matrix_client::{encode, register_user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_invited_promoted_demoted_and_removed() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let viewer = register_user(hs, "members-host").await;
    register_user(hs, "members-dave").await;
    let room_path = "/v1/tenants/tenantA/rooms/event/members-flow";
    let body = json!({"name": "Members Chat", "visibility": "private", "members": [{"user_id": user("members-host"), "role": "host"}]});
    let (status, _) = daemon
        .platform(Method::PUT, room_path, Some(&token), Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Added before the room exists in Synapse: invited when it is created.
    let dave = user("members-dave");
    let member_path = format!("{room_path}/members/{}", encode(&dave));
    let set_role = |role: &'static str| {
        let (daemon, token, member_path) = (&daemon, token.clone(), member_path.clone());
        async move {
            let (status, answer) = daemon
                .platform(
                    Method::PUT,
                    &member_path,
                    Some(&token),
                    Some(json!({"role": role})),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
            let job = daemon
                .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
                .await;
            assert_eq!(job["status"], "succeeded", "{job}");
            job
        }
    };
    let job = set_role("moderator").await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    viewer.join(hs, &room_id).await;
    let level = |levels: &Value| levels["users"].get(&dave).and_then(Value::as_i64);
    let membership = |members: Vec<(String, String)>| {
        members
            .into_iter()
            .find(|(u, _)| *u == dave)
            .map(|(_, m)| m)
    };
    assert_eq!(
        level(&state(&viewer, &room_id, "m.room.power_levels").await),
        Some(50)
    );
    assert_eq!(
        membership(viewer.members(hs, &room_id).await).as_deref(),
        Some("invite")
    );

    set_role("host").await;
    assert_eq!(
        level(&state(&viewer, &room_id, "m.room.power_levels").await),
        Some(100),
        "promotion"
    );
    set_role("participant").await;
    assert_eq!(
        level(&state(&viewer, &room_id, "m.room.power_levels").await),
        None,
        "demotion to the default level drops the entry"
    );

    let (status, answer) = daemon
        .platform(
            Method::DELETE,
            &member_path,
            Some(&token),
            Some(json!({"reason": "Left the event"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        membership(viewer.members(hs, &room_id).await).as_deref(),
        Some("leave"),
        "the invite was not revoked"
    );
    let kicked = viewer
        .room_state(hs, &room_id)
        .await
        .into_iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == dave.as_str())
        .unwrap();
    assert_eq!(kicked["content"]["reason"], "Left the event");
    assert_eq!(
        level(&state(&viewer, &room_id, "m.room.power_levels").await),
        None
    );

    // Removing someone who is not a member succeeds.
    let stranger = format!("{room_path}/members/{}", encode(&user("members-nobody")));
    let (status, answer) = daemon
        .platform(Method::DELETE, &stranger, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, room) = daemon
        .platform(Method::GET, room_path, Some(&token), None)
        .await;
    let listed: Vec<&str> = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [user("members-host")]);
}
