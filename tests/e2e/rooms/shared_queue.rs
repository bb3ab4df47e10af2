//! Two daemons on one PostgreSQL queue run every room job exactly once.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::user;
use crate::environment::{fresh_config, port_turn, ready_daemon_with};
use crate::support::matrix_client::encode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_one_postgres_queue_and_run_every_job_once() {
    let _turn = port_turn().await;
    let database = crate::support::postgres::fresh_database("e2e_shared_queue");
    let mut first = fresh_config();
    first.database_url = database.clone();
    // The second daemon is not the one Synapse pushes to: another appservice port, same queue.
    let mut second = fresh_config();
    second.database_url = database.clone();
    second.appservice_port = crate::support::python::free_port();
    second.platform_port = crate::support::python::free_port();
    second.metrics_port = crate::support::python::free_port();
    let first = ready_daemon_with(first).await;
    let second = crate::support::daemon::Daemon::start(second).await;
    let token = first.config.tenant_token("tenantA");
    let mut queued = Vec::new();
    for i in 0..6 {
        let daemon = if i % 2 == 0 { &first } else { &second };
        let body = json!({"name": format!("Shared {i}"), "visibility": "private"});
        let (status, answer) = daemon
            .platform(
                Method::PUT,
                &format!("/v1/tenants/tenantA/rooms/group/shared-{i}"),
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        queued.push(answer["job"]["id"].as_i64().unwrap());
        let member = format!(
            "/v1/tenants/tenantA/rooms/group/shared-{i}/members/{}",
            encode(&user(&format!("shared-{i}")))
        );
        let (status, answer) = daemon
            .platform(
                Method::PUT,
                &member,
                Some(&token),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        queued.push(answer["job"]["id"].as_i64().unwrap());
    }
    for id in &queued {
        let job = first.wait_for_job(*id, &token).await;
        assert_eq!(
            (job["status"].as_str(), job["attempts"].as_i64()),
            (Some("succeeded"), Some(1)),
            "{job}"
        );
    }
    let ran_first = first
        .metric(
            "openmeet_as_jobs_total",
            r#"kind="ensure_room",outcome="succeeded""#,
        )
        .await;
    let ran_second = second
        .metric(
            "openmeet_as_jobs_total",
            r#"kind="ensure_room",outcome="succeeded""#,
        )
        .await;
    assert_eq!(
        ran_first + ran_second,
        queued.len() as f64,
        "a job ran twice or not at all"
    );
    // Each room's second job found the room its first job created: one room per declaration.
    for i in 0..6 {
        let (_, room) = first
            .platform(
                Method::GET,
                &format!("/v1/tenants/tenantA/rooms/group/shared-{i}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(room["status"], "ready", "{room}");
        let admin = &room["members"][0];
        assert_eq!(
            (admin["role"].as_str(), admin["power_level"].as_i64()),
            (Some("admin"), Some(75)),
            "{room}"
        );
    }
}
