//! Tenant staff (DESIGN §7.3 "Across the tenant"), against the real Synapse: a tenant moderator
//! holds 50 in every managed room of the tenant — rooms made before and after — without an
//! invitation; a host who raises them by hand is put back; DELETE drops the entries; another
//! tenant's rooms never hear of them.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{environment, port_turn, ready_daemon};
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::{TestUser, encode, register_user};

const ACTOR: &str = "openmeet-admin-7";

fn hs() -> &'static str {
    environment().synapse.url.as_str()
}

/// A staff call that must be accepted; waits for its job (the tenant's fan-out) to succeed.
async fn staff_call(daemon: &Daemon, method: Method, user: &str, body: Option<Value>) -> Value {
    let token = daemon.config.tenant_token("tenantA");
    let (status, answer) = daemon
        .platform_raw(
            method,
            &format!("/v1/tenants/tenantA/staff/{user}"),
            Some(&token),
            &[("x-openmeet-actor", ACTOR)],
            body.map(|body| body.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["job"]["id"].as_i64().expect("the job's id");
    let job = daemon.wait_for_job(id, &token).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    job
}

/// `user`'s entry in the room's power levels (`None`: no entry).
async fn level(viewer: &TestUser, room_id: &str, user: &str) -> Option<i64> {
    let levels = viewer
        .state_event(hs(), room_id, "m.room.power_levels", "")
        .await
        .expect("power levels");
    levels["users"][user].as_i64()
}

async fn wait_for_level(viewer: &TestUser, room_id: &str, user: &str, wanted: Option<i64>) {
    eventually(
        &format!("{user} at {wanted:?} in {room_id}"),
        Duration::from_secs(30),
        || async { (level(viewer, room_id, user).await == wanted).then_some(()) },
    )
    .await;
}

async fn declare(daemon: &Daemon, tenant: &str, slug: &str, host: &TestUser) -> String {
    let members = json!([{"user_id": host.user_id, "role": "host"}]);
    let body = json!({"name": "Staff Chat", "visibility": "public", "members": members});
    let job = daemon.declare(tenant, "event", slug, body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs(), &room_id).await;
    room_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_moderator_holds_50_in_every_room_of_the_tenant_is_put_back_and_dropped() {
    let _turn = port_turn().await;
    let daemon = ready_daemon().await;
    let host = register_user(hs(), "staff-host").await;
    let moderator = register_user(hs(), "staff-mod").await;
    let mut rooms = Vec::new();
    for slug in ["staff-one", "staff-two", "staff-three"] {
        rooms.push(declare(&daemon, "tenantA", slug, &host).await);
    }
    let other = declare(&daemon, "ciTenantB", "staff-other", &host).await;

    let fan_out = staff_call(
        &daemon,
        Method::PUT,
        &moderator.user_id,
        Some(json!({"role": "moderator"})),
    )
    .await;
    assert_eq!(fan_out["kind"], "converge_tenant", "{fan_out}");
    for room_id in &rooms {
        wait_for_level(&host, room_id, &moderator.user_id, Some(50)).await;
    }
    // A room declared afterwards carries it from its creation.
    rooms.push(declare(&daemon, "tenantA", "staff-later", &host).await);
    assert_eq!(level(&host, &rooms[3], &moderator.user_id).await, Some(50));
    for room_id in &rooms {
        let member = host
            .state_event(hs(), room_id, "m.room.member", &moderator.user_id)
            .await;
        assert!(member.is_none(), "staff are not invited: {member:?}");
    }
    assert_eq!(level(&host, &other, &moderator.user_id).await, None);
    let token = daemon.config.tenant_token("tenantA");
    let (status, listed) = daemon
        .platform(Method::GET, "/v1/tenants/tenantA/staff", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["staff"],
        json!([{"user_id": moderator.user_id, "role": "moderator", "level": 50,
                "actor": ACTOR, "updated_at": listed["staff"][0]["updated_at"]}])
    );

    // The host (at 100) raises the moderator by hand: the repair puts 50 back.
    let mut levels = host
        .state_event(hs(), &rooms[1], "m.room.power_levels", "")
        .await
        .unwrap();
    levels["users"][&moderator.user_id] = json!(90);
    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/",
        encode(&rooms[1])
    );
    let (status, answer) = host.request(hs(), Method::PUT, &path, Some(levels)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(level(&host, &rooms[1], &moderator.user_id).await, Some(90));
    wait_for_level(&host, &rooms[1], &moderator.user_id, Some(50)).await;

    // Removed from the staff: every room of the tenant drops the entry.
    staff_call(&daemon, Method::DELETE, &moderator.user_id, None).await;
    for room_id in &rooms {
        wait_for_level(&host, room_id, &moderator.user_id, None).await;
    }
    assert_eq!(level(&host, &rooms[0], &host.user_id).await, Some(100));
    let (status, _) = daemon
        .platform(
            Method::GET,
            &format!("/v1/tenants/tenantA/staff/{}", moderator.user_id),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, log) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/moderation",
            Some(&token),
            None,
        )
        .await;
    let actions: Vec<(&str, &str)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("staff", ACTOR), ("unstaff", ACTOR)], "{log}");
}
