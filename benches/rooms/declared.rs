//! Declared rooms through the daemon: every room `PUT` at once, then waiting until every
//! `ensure_room` job has succeeded, with what the daemon's metrics and job table say about the run.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::common::daemon::Backend;
use crate::common::metrics::{by_label, label, metrics_text, samples, wait_inbox_processed};
use crate::common::{percentile, proc_status_kib};
use crate::measures::{EndpointStats, Pushed, Usage, UsageSnapshot, pushed};
use crate::plan::{put_body, room_members, slug, tenant_of};
use crate::setup::send_json;
use crate::support::daemon::Daemon;
use crate::support::matrix_client::http_client;
use crate::{MEMBERS, RUN_TIMEOUT};

pub struct DeclaredReport {
    pub backend: Backend,
    pub rooms: usize,
    /// First PUT → every PUT answered.
    pub enqueued: Duration,
    /// First PUT → every job succeeded.
    pub wall: Duration,
    /// Job latency (queued → succeeded), per the job table.
    pub job_p50: Duration,
    pub job_max: Duration,
    /// Attempts beyond the first, over all jobs; and the attempts that ended other than succeeded.
    pub extra_attempts: i64,
    pub unsuccessful_attempts: BTreeMap<String, f64>,
    /// Σ job_seconds / wall: how many jobs ran at once on average.
    pub mean_in_flight: f64,
    pub usage: Usage,
    pub peak_rss_kib: u64,
    pub endpoints: BTreeMap<String, EndpointStats>,
    /// Jobs in the table after the run, by kind (repairs would show here).
    pub jobs_by_kind: BTreeMap<String, usize>,
    /// What Synapse pushed to the daemon for the run.
    pub pushed: Pushed,
}

/// Declares `rooms` rooms on `daemon` at once and waits until every job has succeeded.
pub async fn declared_run(
    backend: Backend,
    daemon: &Daemon,
    members: &[String],
    rooms: usize,
    synapse_pid: u32,
) -> DeclaredReport {
    eprintln!("== {} daemon: {rooms} declared rooms", backend.name());
    let tenant_ids: Vec<String> = daemon
        .config
        .tenants
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    let pid = daemon.pid().expect("the daemon runs");
    let client = http_client();
    let base = format!("http://127.0.0.1:{}", daemon.config.platform_port);
    let metrics_before = metrics_text(&client, daemon).await;

    let pushed_before = pushed(daemon).await;
    let before = UsageSnapshot::take(Some(pid), synapse_pid);
    let started = Instant::now();
    let mut puts = JoinSet::new();
    for room in 0..rooms {
        let tenant = tenant_ids[tenant_of(room)].clone();
        let token = daemon.config.tenant_token(&tenant);
        let url = format!("{base}/v1/tenants/{tenant}/rooms/event/{}", slug(room));
        let body = put_body(room, &room_members(members, room, MEMBERS));
        let client = client.clone();
        puts.spawn(async move {
            let (status, answer) =
                send_json(&client, Method::PUT, &url, Some(&token), Some(&body)).await;
            assert_eq!(status, StatusCode::ACCEPTED, "PUT {url}: {answer}");
            (
                answer["job"]["id"].as_i64().expect("a job id"),
                tenant,
                token,
            )
        });
    }
    let mut jobs = Vec::new();
    while let Some(done) = puts.join_next().await {
        jobs.push(done.expect("a PUT panicked"));
    }
    let enqueued = started.elapsed();

    let mut last_progress = (0.0, Instant::now());
    let wall = loop {
        let text = metrics_text(&client, daemon).await;
        let outcomes = by_label(&text, "openmeet_as_jobs_total", "outcome");
        let succeeded = outcomes.get("succeeded").copied().unwrap_or(0.0);
        for fatal in ["failed", "dead"] {
            assert!(
                outcomes.get(fatal).copied().unwrap_or(0.0) == 0.0,
                "a job ended {fatal}; see {}",
                daemon.log_path().display()
            );
        }
        if succeeded >= rooms as f64 {
            break started.elapsed();
        }
        if succeeded > last_progress.0 {
            last_progress = (succeeded, Instant::now());
        }
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "{succeeded} of {rooms} jobs succeeded in {RUN_TIMEOUT:?}; see {}",
            daemon.log_path().display()
        );
        if last_progress.1.elapsed() > Duration::from_secs(10) {
            eprintln!("  … {succeeded} of {rooms} jobs succeeded so far");
            last_progress.1 = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let after = UsageSnapshot::take(Some(pid), synapse_pid);
    let usage = after.since(&before);
    let peak_rss_kib = proc_status_kib(pid, "VmHWM");
    let metrics_after = metrics_text(&client, daemon).await;
    eprintln!(
        "{}: {rooms} rooms ready in {:.1} s ({:.2} jobs/s)",
        backend.name(),
        wall.as_secs_f64(),
        rooms as f64 / wall.as_secs_f64()
    );

    // Every job succeeded (the platform's view), and what the job table says about each.
    let mut extra_attempts = 0;
    for (id, _tenant, token) in &jobs {
        let (status, job) = send_json(
            &client,
            Method::GET,
            &format!("{base}/v1/jobs/{id}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        assert_eq!(job["status"], "succeeded", "{job}");
        extra_attempts += job["attempts"].as_i64().unwrap_or(1) - 1;
    }
    let (code, listed, stderr) =
        daemon
            .config
            .cli(&["jobs", "list", "--limit", &(rooms * 10).to_string()]);
    assert_eq!(code, 0, "jobs list: {stderr}");
    let listed: Vec<Value> = listed
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let mut jobs_by_kind = BTreeMap::new();
    for job in &listed {
        *jobs_by_kind
            .entry(job["kind"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let ids: HashSet<i64> = jobs.iter().map(|(id, _, _)| *id).collect();
    let mut latencies: Vec<Duration> = listed
        .iter()
        .filter(|job| job["id"].as_i64().is_some_and(|id| ids.contains(&id)))
        .map(|job| {
            let ms = job["updated_at"].as_i64().expect("updated_at")
                - job["created_at"].as_i64().expect("created_at");
            Duration::from_millis(ms.max(0) as u64)
        })
        .collect();
    latencies.sort();
    assert_eq!(latencies.len(), rooms, "the job table lacks some jobs");

    let delta = |name: &str, label: &str| {
        let after = by_label(&metrics_after, name, label);
        let before = by_label(&metrics_before, name, label);
        after
            .into_iter()
            .map(|(key, value)| {
                let value = value - before.get(&key).copied().unwrap_or(0.0);
                (key, value)
            })
            .filter(|(_, value)| *value > 0.0)
            .collect::<BTreeMap<String, f64>>()
    };
    let mut endpoints: BTreeMap<String, EndpointStats> = BTreeMap::new();
    for (labels, value) in samples(&metrics_after, "openmeet_as_homeserver_requests_total") {
        let before = samples(&metrics_before, "openmeet_as_homeserver_requests_total")
            .into_iter()
            .find(|(l, _)| *l == labels)
            .map_or(0.0, |(_, v)| v);
        let calls = value - before;
        if calls <= 0.0 {
            continue;
        }
        let endpoint = label(&labels, "endpoint").unwrap_or("?").to_owned();
        let stats = endpoints.entry(endpoint).or_default();
        stats.calls += calls;
        if label(&labels, "errcode") != Some("ok") {
            stats.errors += calls;
        }
    }
    for (endpoint, seconds) in delta("openmeet_as_homeserver_request_seconds_sum", "endpoint") {
        endpoints.entry(endpoint).or_default().seconds = seconds;
    }
    let job_seconds: f64 = delta("openmeet_as_job_seconds_sum", "kind").values().sum();
    let mut unsuccessful_attempts = delta("openmeet_as_jobs_total", "outcome");
    unsuccessful_attempts.remove("succeeded");

    wait_inbox_processed(&client, daemon).await;
    let pushed_after = pushed(daemon).await;
    DeclaredReport {
        pushed: pushed_after.since(&pushed_before),
        backend,
        rooms,
        enqueued,
        wall,
        job_p50: percentile(&latencies, 0.50),
        job_max: latencies.last().copied().unwrap_or_default(),
        extra_attempts,
        unsuccessful_attempts,
        mean_in_flight: job_seconds / wall.as_secs_f64(),
        usage,
        peak_rss_kib,
        endpoints,
        jobs_by_kind,
    }
}
