//! Teardown: deleting a room kicks everyone and removes the alias, across a crash of the daemon.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{declare, user};
use crate::environment::{
    SERVER_NAME, environment, fresh_config, port_turn, ready_daemon_with, still_in,
};
use crate::support::matrix_client::register_user;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_kicks_everyone_removes_the_alias_and_survives_a_crash() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let mut members = Vec::new();
    let mut people = Vec::new();
    for i in 0..20 {
        let localpart = format!("teardown-{i:02}");
        people.push(register_user(hs, &localpart).await);
        members.push(json!({"user_id": user(&localpart), "role": if i == 0 { "host" } else { "participant" }}));
    }
    let body = json!({"name": "Farewell Chat", "visibility": "private", "members": members});
    let job = declare(&daemon, "tenantA", "event", "farewell", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    for person in &people[..8] {
        person.join(hs, &room_id).await;
    }
    assert_eq!(still_in(&room_id).len(), 21, "20 members and the bot");

    // Delete, and crash the daemon while it is kicking.
    let path = "/v1/tenants/tenantA/rooms/event/farewell";
    let (status, answer) = daemon
        .platform(Method::DELETE, path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let teardown = answer["job"]["id"].as_i64().unwrap();
    crate::support::eventually(
        "the teardown to start kicking",
        std::time::Duration::from_secs(30),
        || async { (still_in(&room_id).len() < 18).then_some(()) },
    )
    .await;
    daemon.kill();
    assert!(
        !still_in(&room_id).is_empty(),
        "the teardown finished before the crash; the test proves nothing"
    );
    daemon.restart().await;

    let done = daemon.wait_for_job(teardown, &token).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", daemon.logs());
    assert_eq!(
        still_in(&room_id),
        Vec::<String>::new(),
        "someone is still in the room"
    );
    let alias = format!("#event-farewell-tenantA:{SERVER_NAME}");
    let (status, _) = people[0].resolve_alias(hs, &alias).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the alias still resolves");
    let kicked = environment().synapse.current_memberships(&room_id);
    assert!(
        kicked
            .iter()
            .any(|(u, m)| *u == user("teardown-00") && m == "leave")
    );

    // One teardown job, not two; GET says deleted; a repeated DELETE answers with it.
    let (_, room) = daemon.platform(Method::GET, path, Some(&token), None).await;
    assert_eq!(room["status"], "deleted");
    let (status, again) = daemon
        .platform(Method::DELETE, path, Some(&token), None)
        .await;
    assert_eq!(
        (status, again["job"]["id"].as_i64()),
        (StatusCode::ACCEPTED, Some(teardown))
    );
    let (code, jobs, stderr) = daemon
        .config
        .cli(&["jobs", "list", "--kind", "teardown_room"]);
    assert_eq!(code, 0, "{stderr}");
    let jobs: Vec<Value> = jobs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(jobs.len(), 1, "a second teardown job was queued: {jobs:?}");
    assert_eq!(
        jobs[0]["attempts"], 2,
        "the crash must cost exactly one more attempt: {jobs:?}"
    );
}
