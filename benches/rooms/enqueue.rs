//! The platform API's enqueue rate: concurrent keep-alive clients `PUT`ting new rooms on a daemon
//! that runs no jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::common::daemon::{Backend, start_daemon};
use crate::common::load::{Put, put_all};
use crate::common::{ms, percentile, proc_status_kib};
use crate::measures::{Usage, UsageSnapshot};
use crate::plan::{put_body, room_members};
use crate::support::daemon::DaemonConfig;
use crate::support::matrix_client::http_client;
use crate::{ENQUEUE_CLIENTS, ENQUEUE_RUN, ENQUEUE_WARMUP, MEMBERS};

/// [`ENQUEUE_CLIENTS`], or `OPENMEET_BENCH_CLIENTS`.
pub fn enqueue_clients() -> usize {
    std::env::var("OPENMEET_BENCH_CLIENTS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|clients| *clients > 0)
        .unwrap_or(ENQUEUE_CLIENTS)
}

pub struct EnqueueReport {
    pub backend: Backend,
    pub members: usize,
    pub calls: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: usize,
    pub usage: Usage,
    pub peak_rss_kib: u64,
}

pub async fn enqueue_runs(
    backend: Backend,
    config: DaemonConfig,
    members: &[String],
    synapse_pid: u32,
) -> Vec<EnqueueReport> {
    eprintln!("== {} enqueue rate (jobs disabled)", backend.name());
    let tenant_ids: Vec<String> = config.tenants.iter().map(|(id, _)| id.clone()).collect();
    let mut daemon = start_daemon(config).await;
    let pid = daemon.pid().expect("the daemon runs");
    let client = http_client();
    let next = Arc::new(AtomicUsize::new(0));
    let mut reports = Vec::new();
    for member_count in [0, MEMBERS] {
        let members: Arc<Vec<String>> = Arc::new(members.iter().take(50).cloned().collect());
        let load = EnqueueLoad {
            client: client.clone(),
            base: format!("http://127.0.0.1:{}", daemon.config.platform_port),
            tenants: tenant_ids
                .iter()
                .map(|id| (id.clone(), daemon.config.tenant_token(id)))
                .collect(),
            members,
            member_count,
            next: next.clone(),
        };
        load.run(ENQUEUE_WARMUP).await;
        let before = UsageSnapshot::take(Some(pid), synapse_pid);
        let started = Instant::now();
        let (mut latencies, errors) = load.run(ENQUEUE_RUN).await;
        let wall = started.elapsed();
        let usage = UsageSnapshot::take(Some(pid), synapse_pid).since(&before);
        latencies.sort();
        let report = EnqueueReport {
            backend,
            members: member_count,
            calls: latencies.len(),
            wall,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            errors,
            usage,
            peak_rss_kib: proc_status_kib(pid, "VmHWM"),
        };
        eprintln!(
            "{} {member_count} members: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, {errors} errors",
            backend.name(),
            report.calls as f64 / wall.as_secs_f64(),
            ms(report.p50),
            ms(report.p99)
        );
        reports.push(report);
    }
    daemon.stop();
    reports
}

struct EnqueueLoad {
    client: reqwest::Client,
    base: String,
    /// (tenant id, its api_token)
    tenants: Vec<(String, String)>,
    members: Arc<Vec<String>>,
    member_count: usize,
    /// Numbers the slugs, so that every PUT declares a new room.
    next: Arc<AtomicUsize>,
}

impl EnqueueLoad {
    /// [`ENQUEUE_CLIENTS`] clients `PUT`ting new rooms for `duration`; each call's latency and the
    /// number of answers other than 202.
    async fn run(&self, duration: Duration) -> (Vec<Duration>, usize) {
        let deadline = Instant::now() + duration;
        let (base, tenants, members, member_count, next) = (
            self.base.clone(),
            self.tenants.clone(),
            self.members.clone(),
            self.member_count,
            self.next.clone(),
        );
        put_all(
            &self.client,
            enqueue_clients(),
            StatusCode::ACCEPTED,
            move || {
                if Instant::now() >= deadline {
                    return None;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                let (tenant, token) = &tenants[n % tenants.len()];
                let url = format!("{base}/v1/tenants/{tenant}/rooms/event/enqueue-{n:07}");
                let body = put_body(n, &room_members(&members, n, member_count));
                let body = serde_json::to_vec(&body).expect("a JSON body").into();
                let token = token.clone();
                Some(Put { url, token, body })
            },
        )
        .await
    }
}
