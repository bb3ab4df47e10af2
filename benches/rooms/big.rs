//! One big room (DESIGN §15): declared with [`BIG_MEMBERS`] members in one `PUT`, then
//! [`BIG_LATE`] single-member `PUT`s one after another, until every job of the room has succeeded;
//! the homeserver calls per member, the jobs and the time to converge, side by side with the
//! direct client making the same invites (one state read, one invite per member).
//!
//! Its member users (`big-member-NNNN`) are registered once, then invited once into a warm-up
//! room by the direct client, so that neither measured run pays for Synapse's cold caches; a
//! daemon is up (and idle) for the warm-up and the direct run, so Synapse pushes their events to
//! an appservice as in the daemon's run. `OPENMEET_BENCH_BIG_MEMBERS=N` declares N members and
//! N / 10 single-member PUTs instead.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::daemon::{Backend, SERVER_NAME, start_daemon};
use crate::common::metrics::{label, metrics_text, samples, wait_inbox_processed};
use crate::direct::Direct;
use crate::plan::run_config;
use crate::setup::send_json;
use crate::support::daemon::DaemonConfig;
use crate::support::matrix_client::{encode, http_client, register_many};
use crate::{RUN_TIMEOUT, Report};

/// Members declared in the room's `PUT`.
pub const BIG_MEMBERS: usize = 5_000;
/// Single-member `PUT`s after it.
pub const BIG_LATE: usize = 500;

/// The room's size: members declared in the `PUT`, single-member `PUT`s after it.
pub fn big_size() -> (usize, usize) {
    match std::env::var("OPENMEET_BENCH_BIG_MEMBERS") {
        Ok(n) => {
            let n: usize = n.parse().expect("OPENMEET_BENCH_BIG_MEMBERS: a number");
            (n, n / 10)
        }
        Err(_) => (BIG_MEMBERS, BIG_LATE),
    }
}

pub struct BigReport {
    pub label: String,
    /// Members declared in the room's `PUT`, and single-member `PUT`s after it.
    pub declared: usize,
    pub late: usize,
    /// Jobs the room's `PUT`s were answered with (the direct client: none).
    pub jobs: usize,
    pub calls: BTreeMap<String, f64>,
    /// First `PUT` (or first call) → every member invited.
    pub wall: Duration,
}

impl BigReport {
    pub fn total_calls(&self) -> f64 {
        self.calls.values().sum()
    }
}

/// The big room's runs: the warm-up, the daemon's on `backend`, the direct client's.
pub async fn big_runs(
    hs: &str,
    base: &DaemonConfig,
    backend: Backend,
    database: Option<String>,
    report: &mut Report,
) {
    let (declared, late) = big_size();
    let started = Instant::now();
    let members = register_many(hs, SERVER_NAME, "big-member", declared + late).await;
    eprintln!(
        "registered {} big-room members in {:.1} s",
        members.len(),
        started.elapsed().as_secs_f64()
    );
    let direct = Direct::new(hs, &base.tokens.as_token);
    let everyone: Vec<(String, &str)> = members
        .iter()
        .map(|user| (user.clone(), "participant"))
        .collect();
    let mut daemon = start_daemon(run_config(base, "bg", database, true)).await;
    let started = Instant::now();
    direct.one_room("bw0", 9_000, &everyone).await;
    eprintln!(
        "big-room warm-up: {} invites in {:.1} s",
        everyone.len(),
        started.elapsed().as_secs_f64()
    );
    wait_inbox_processed(&http_client(), &daemon).await;

    let run = daemon_run(&daemon, backend, &members, declared).await;
    report.big.push(run);
    wait_inbox_processed(&http_client(), &daemon).await;
    eprintln!("== direct client: one room of {} members", everyone.len());
    let (wall, calls) = direct.one_room("bd0", 9_001, &everyone).await;
    eprintln!("direct client: {:.1} s", wall.as_secs_f64());
    report.big.push(BigReport {
        label: "direct client".into(),
        declared,
        late,
        jobs: 0,
        calls,
        wall,
    });
    wait_inbox_processed(&http_client(), &daemon).await;
    daemon.stop();
}

async fn daemon_run(
    daemon: &crate::support::daemon::Daemon,
    backend: Backend,
    members: &[String],
    declared: usize,
) -> BigReport {
    let (declared, late) = members.split_at(declared);
    eprintln!(
        "== {} daemon: a room of {} members, then {} member PUTs",
        backend.name(),
        declared.len(),
        late.len()
    );
    let client = http_client();
    let tenant = &daemon.config.tenants[0].0;
    let token = daemon.config.tenant_token(tenant);
    let base = format!(
        "http://127.0.0.1:{}/v1/tenants/{tenant}/rooms/event/big-room",
        daemon.config.platform_port
    );
    let calls_before = calls_by_endpoint(&metrics_text(&client, daemon).await);

    let started = Instant::now();
    let body = json!({
        "name": "Big Room",
        "visibility": "private",
        "members": declared.iter().map(|user| json!({"user_id": user, "role": "participant"})).collect::<Vec<_>>(),
    });
    let mut jobs = BTreeSet::new();
    let (status, answer) = send_json(&client, Method::PUT, &base, Some(&token), Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    jobs.insert(answer["job"]["id"].as_i64().expect("a job id"));
    for user in late {
        let url = format!("{base}/members/{}", encode(user));
        let body = json!({"role": "participant"});
        let (status, answer) =
            send_json(&client, Method::PUT, &url, Some(&token), Some(&body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        jobs.insert(answer["job"]["id"].as_i64().expect("a job id"));
    }
    let origin = format!("http://127.0.0.1:{}", daemon.config.platform_port);
    for id in &jobs {
        loop {
            let url = format!("{origin}/v1/jobs/{id}");
            let (status, job) = send_json(&client, Method::GET, &url, Some(&token), None).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            match job["status"].as_str() {
                Some("succeeded") => break,
                Some("queued" | "running") => {}
                _ => panic!("job {id} ended {job}; see {}", daemon.log_path().display()),
            }
            assert!(
                started.elapsed() < RUN_TIMEOUT,
                "the big room did not converge in {RUN_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let wall = started.elapsed();
    let mut calls = calls_by_endpoint(&metrics_text(&client, daemon).await);
    for (endpoint, value) in &mut calls {
        *value -= calls_before.get(endpoint).copied().unwrap_or(0.0);
    }
    calls.retain(|_, value| *value > 0.0);
    let report = BigReport {
        label: format!("daemon ({})", backend.name()),
        declared: declared.len(),
        late: late.len(),
        jobs: jobs.len(),
        calls,
        wall,
    };
    eprintln!(
        "{}: {} jobs, {:.0} homeserver calls, {:.1} s",
        report.label,
        report.jobs,
        report.total_calls(),
        wall.as_secs_f64()
    );
    report
}

fn calls_by_endpoint(text: &str) -> BTreeMap<String, f64> {
    let mut calls = BTreeMap::new();
    for (labels, value) in samples(text, "openmeet_as_homeserver_requests_total") {
        let endpoint = label(&labels, "endpoint").unwrap_or("?").to_owned();
        *calls.entry(endpoint).or_default() += value;
    }
    calls
}
