#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The worker's bounds as a running daemon applies them, against the fake homeserver holding every
//! `createRoom` answer (so jobs stay running as long as the test needs): a SIGHUP that raises
//! `jobs.max_parallel` lets a waiting job start at once, and a tenant at its `per_tenant` bound
//! with a backlog does not hold up another tenant's first job (`store/jobs.rs` tests the claim
//! itself on both backends).

mod support;

use std::time::{Duration, Instant};

use support::daemon::{Daemon, DaemonConfig};
use support::eventually;
use support::fake_homeserver::{Endpoint, FakeHomeserver, Fault};

const SERVER: &str = "fake.openmeet.test";
/// How long the fake holds each createRoom answer: far longer than the waits below, so a job that
/// starts within them did not start because another one ended.
const HOLD: Duration = Duration::from_secs(20);
const WITHIN: Duration = Duration::from_secs(8);

async fn setup(name: &str, jobs_yaml: &str) -> (FakeHomeserver, Daemon) {
    let mut config = DaemonConfig::new(name, None);
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.homeserver_timeout_seconds = 60;
    config.tenants = vec![
        ("tenantA".into(), "Tenant A".into()),
        ("tenantB".into(), "Tenant B".into()),
    ];
    config.extra_yaml = jobs_yaml.into();
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    fake.fail_next(Endpoint::CreateRoom, 20, Fault::Timeout(HOLD));
    (fake, daemon)
}

async fn create_rooms_reach(fake: &FakeHomeserver, want: usize, within: Duration) {
    eventually(
        &format!("{want} createRoom calls in flight"),
        within,
        || async { (fake.count(Endpoint::CreateRoom) >= want).then_some(()) },
    )
    .await;
}

fn bot(tenant: &str) -> String {
    format!("@openmeet-bot-{tenant}:{SERVER}")
}

fn body() -> serde_json::Value {
    serde_json::json!({"name": "Chat", "visibility": "private"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_new_max_parallel_to_waiting_jobs() {
    let (fake, mut daemon) = setup("reload_parallel", "jobs:\n  max_parallel: 1\n").await;
    daemon.put_room("tenantA", "event", "first", body()).await;
    daemon.put_room("tenantA", "event", "second", body()).await;
    create_rooms_reach(&fake, 1, WITHIN).await;
    assert_eq!(
        fake.count(Endpoint::CreateRoom),
        1,
        "max_parallel 1 ran two jobs"
    );

    daemon.config.extra_yaml = "jobs:\n  max_parallel: 2\n".into();
    let reloaded = Instant::now();
    daemon.reload();
    create_rooms_reach(&fake, 2, WITHIN).await;
    println!(
        "the second job started {:?} after SIGHUP raised max_parallel (the first is held {HOLD:?})",
        reloaded.elapsed()
    );
    drop(fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_bound_does_not_hold_up_another_tenants_first_job() {
    let (fake, daemon) = setup("fair_worker", "jobs:\n  max_parallel: 2\n  per_tenant: 1\n").await;
    for i in 0..8 {
        daemon
            .put_room("tenantA", "event", &format!("a{i}"), body())
            .await;
    }
    create_rooms_reach(&fake, 1, WITHIN).await;
    let declared = Instant::now();
    daemon.put_room("tenantB", "event", "b", body()).await;
    create_rooms_reach(&fake, 2, WITHIN).await;
    println!(
        "tenant B's first job started {:?} after it was declared, behind 7 of A's queued",
        declared.elapsed()
    );
    // Not only two jobs at once: the second is B's. Without the per-tenant bound A's next queued
    // job would take the free slot (it is older than B's), and B would wait behind A's backlog.
    let creators: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|request| request.endpoint == Endpoint::CreateRoom)
        .map(|request| request.user_id.unwrap_or_default())
        .collect();
    assert_eq!(
        creators[..2],
        [bot("tenanta"), bot("tenantb")],
        "the first two createRoom calls, by whose bot"
    );
    let b = daemon.get_room("tenantB", "event", "b").await;
    assert_ne!(b["status"], "failed", "{b}");
    drop(fake);
}
