//! A big room (DESIGN §15): declared with [`MEMBERS`] members, then [`LATE`] single-member PUTs
//! while its job works; every member ends invited, in about one homeserver call per member, the
//! PUTs folded into the job that waits.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{SERVER_NAME, environment, fresh_config, port_turn, ready_daemon_with};
use crate::support::matrix_client::{encode, register_many};

const MEMBERS: usize = 2_000;
const LATE: usize = 200;
/// The bound: homeserver calls per member.
const CALLS_PER_MEMBER: f64 = 1.2;
const CONVERGED_WITHIN: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_room_converges_in_about_one_call_per_member() {
    let hs = environment().synapse.url.as_str();
    let started = Instant::now();
    let users = register_many(hs, SERVER_NAME, "big-member", MEMBERS + LATE).await;
    eprintln!(
        "registered {} users in {:.1} s",
        users.len(),
        started.elapsed().as_secs_f64()
    );
    let (declared, late) = users.split_at(MEMBERS);
    let _turn = port_turn().await;
    let daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let calls = || daemon.metric("openmeet_as_homeserver_requests_total", "");
    let before = calls().await;
    let by_endpoint_before = calls_by_endpoint(&daemon).await;

    let started = Instant::now();
    let members: Vec<Value> = declared
        .iter()
        .map(|user| json!({"user_id": user, "role": "participant"}))
        .collect();
    let body = json!({"name": "Big Room", "visibility": "private", "members": members});
    let first = daemon.put_room("tenantA", "event", "big-room", body).await;
    let mut jobs = vec![first];
    for user in late {
        let path = format!(
            "/v1/tenants/tenantA/rooms/event/big-room/members/{}",
            encode(user)
        );
        let (status, answer) = daemon
            .platform(
                Method::PUT,
                &path,
                Some(&token),
                Some(json!({"role": "participant"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        jobs.push(answer["job"]["id"].as_i64().expect("a job id"));
    }
    let distinct: BTreeSet<i64> = jobs.iter().copied().collect();
    // The room's jobs run in order: once the last has ended, all have.
    let mut room_id = String::new();
    for id in &distinct {
        let job = daemon
            .wait_for_job_within(*id, &token, CONVERGED_WITHIN)
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        room_id = job["result"]["room_id"].as_str().unwrap_or_default().into();
    }
    let converged = started.elapsed();
    let calls = calls().await - before;
    let per_member = calls / (MEMBERS + LATE) as f64;
    eprintln!(
        "{MEMBERS} members + {LATE} PUTs: {} jobs, {calls} homeserver calls ({per_member:.3} per member), converged in {:.1} s",
        distinct.len(),
        converged.as_secs_f64()
    );

    let mut by_endpoint = calls_by_endpoint(&daemon).await;
    for (endpoint, calls) in &mut by_endpoint {
        *calls -= by_endpoint_before.get(endpoint).copied().unwrap_or(0.0);
    }
    by_endpoint.retain(|_, calls| *calls > 0.0);
    eprintln!("homeserver calls by endpoint: {by_endpoint:?}");

    let invited: BTreeSet<String> = environment()
        .synapse
        .current_memberships(&room_id)
        .into_iter()
        .filter(|(_, membership)| membership == "invite")
        .map(|(user, _)| user)
        .collect();
    let missing: Vec<&String> = users.iter().filter(|u| !invited.contains(*u)).collect();
    assert!(
        missing.is_empty(),
        "{} members not invited: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        distinct.len() < jobs.len() / 2,
        "{} jobs for {} PUTs: the member PUTs were not folded into the waiting job",
        distinct.len(),
        jobs.len()
    );
    assert!(
        per_member < CALLS_PER_MEMBER,
        "{calls} homeserver calls for {} members",
        MEMBERS + LATE
    );
}

/// `openmeet_as_homeserver_requests_total` by endpoint.
async fn calls_by_endpoint(
    daemon: &crate::support::daemon::Daemon,
) -> std::collections::BTreeMap<String, f64> {
    let text = daemon.metrics_text().await;
    let mut calls = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(labels) = line.strip_prefix("openmeet_as_homeserver_requests_total{") else {
            continue;
        };
        let endpoint = labels
            .split("endpoint=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("?");
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *calls.entry(endpoint.to_owned()).or_insert(0.0) += value;
    }
    calls
}
