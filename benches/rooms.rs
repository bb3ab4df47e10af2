//! Benchmark of declared rooms: the platform API's `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}`
//! until every `ensure_room` job has succeeded against one real Synapse, compared with a minimal
//! client making the same Matrix calls directly; and how fast the platform API queues work.
//!
//! Against one Synapse started with the daemon's registration (as `tests/e2e/` does), it measures:
//!
//! - declared rooms to ready: [`ROOMS`] private event rooms of [`MEMBERS`] members each (one host,
//!   one moderator, participants), across [`TENANTS`] tenants, all `PUT` at once; wall time from
//!   the first `PUT` to every job `succeeded`, jobs/s, the daemon's CPU per job (utime + stime
//!   from /proc), its peak RSS (VmHWM), Synapse's CPU over the same time, and the Matrix calls the
//!   daemon made (its `homeserver_requests_total` and `homeserver_request_seconds`). On SQLite and
//!   on PostgreSQL, each on a fresh daemon and database with `jobs.max_parallel` 16 and
//!   `jobs.per_tenant` 4;
//! - the limit: the same calls per room made straight to Synapse by this benchmark, as the tenant
//!   bots through the as_token with identity assertion (`GET /capabilities` for the default room
//!   version, `createRoom` with the daemon's body, `GET /rooms/{id}/state`, one invite per member,
//!   and `m.room.power_levels` only when the state shows it differs from the declaration, as the
//!   daemon's reconcile decides), 16 rooms in flight and at most 4 per tenant; each bot is
//!   registered (`m.login.application_service`) and named once first, as the daemon does. The
//!   daemon's throughput is reported as a percentage of this;
//! - the platform API's enqueue rate: a daemon with `jobs.enabled: false`, [`ENQUEUE_CLIENTS`]
//!   concurrent keep-alive clients `PUT`ting distinct rooms for [`ENQUEUE_RUN`], without members
//!   and with [`MEMBERS`]; on PostgreSQL and on SQLite.
//!
//! Each measured run uses its own four tenants (so its own bots and aliases): a bot's display name
//! is set when a daemon starts, and Synapse then revisits the bot's membership in every room it is
//! in, which would charge one run for the rooms of the runs before it. The [`ROOMS`] × [`MEMBERS`]
//! member users are registered once beforehand, invited once each by a warm-up (Synapse's first
//! invite of a user costs more: cold caches), then once per run. The direct client runs three
//! times, taking turns with the daemon's runs (before SQLite, after SQLite, after PostgreSQL),
//! always while a daemon is up and idle, so that Synapse pushes the new rooms' events to an
//! appservice in every run alike. Synapse slows down as its database grows, so each daemon run is
//! judged against the mean of the direct runs just before and after it (the mean of all three is
//! shown too).
//!
//! The table goes to stdout and to `target/bench/rooms.md`.
//!
//! Run it with `make bench`, or:
//!
//! ```text
//! TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench rooms
//! ```
//!
//! `OPENMEET_BENCH_ROOMS=N` declares N rooms per run instead of [`ROOMS`] (a quick try-out);
//! `OPENMEET_BENCH_ONLY=enqueue` runs only the enqueue rate, with `OPENMEET_BENCH_CLIENTS=N` clients
//! instead of [`ENQUEUE_CLIENTS`]. The
//! daemon connects to PostgreSQL as the URL says: libpq's default `sslmode=prefer` means TLS when
//! the server offers it, also over loopback (the report says which); append `?sslmode=disable` to
//! `TEST_POSTGRES_URL` to measure without. Without `TEST_POSTGRES_URL` PostgreSQL is an embedded throwaway cluster. Under `cargo test` (no
//! `--bench` argument) the binary does nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly by design

#[path = "../tests/support/mod.rs"]
mod support;

mod common;
use common::{
    CLOCK_TICKS, cpu_seconds, mib, ms, percentile, proc_status_kib, row, table, try_cpu_seconds,
};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openmeet_appservice::rooms::{
    DeclaredRoom, RoleLevels, RoomKind, Visibility, Wanted, create_room_body, privileged_creators,
    reconcile,
};
use reqwest::{Method, StatusCode};
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use support::daemon::{Daemon, DaemonConfig};
use support::matrix_client::{encode, http_client};
use support::synapse::Synapse;

const SERVER_NAME: &str = "openmeet.test";
/// Rooms declared per run (`OPENMEET_BENCH_ROOMS` overrides).
const ROOMS: usize = 100;
/// Members per room: a host, a moderator, the rest participants.
const MEMBERS: usize = 5;
const TENANTS: usize = 4;
/// The daemon's job bounds (its defaults, written out), and the direct client's.
const MAX_PARALLEL: usize = 16;
const PER_TENANT: usize = 4;
/// `homeserver.timeout_seconds` of the daemons: the production default (tests use 10).
const HOMESERVER_TIMEOUT_SECONDS: u64 = 30;
/// Members per room of the warm-up, which invites every member user once before the measured runs.
const WARMUP_MEMBERS: usize = 25;
/// A run that takes longer than this has stalled.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);
const ENQUEUE_CLIENTS: usize = 32;
const ENQUEUE_RUN: Duration = Duration::from_secs(5);
const ENQUEUE_WARMUP: Duration = Duration::from_secs(1);
/// Targets: the daemon's throughput against the direct client's, and PostgreSQL's enqueue rate.
const TARGET_PERCENT: f64 = 95.0;
/// PUTs per second on PostgreSQL: without members, and with [`MEMBERS`].
const TARGET_ENQUEUE_PER_SECOND: [f64; 2] = [3_000.0, 2_000.0];
/// The calls of one room's `ensure_room`, as the daemon's metrics name them.
const ENDPOINTS: [&str; 7] = [
    "register",
    "set_display_name",
    "get_capabilities",
    "create_room",
    "get_state_events",
    "invite_user",
    "send_state_event",
];

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("rooms: a benchmark; run it with `cargo bench --bench rooms`");
        return;
    }
    let rooms = std::env::var("OPENMEET_BENCH_ROOMS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|rooms| *rooms > 0)
        .unwrap_or(ROOMS);
    // `OPENMEET_BENCH_ONLY=enqueue`: only the platform API's enqueue rate.
    let enqueue_only = std::env::var("OPENMEET_BENCH_ONLY").is_ok_and(|only| only == "enqueue");
    let bench_started = Instant::now();
    // Synapse loads the registration of this config; every daemon below is a copy of it. The
    // registration's namespaces cover every tenant's bot and alias, so each run has its own.
    let mut base = DaemonConfig::new("bench", None);
    base.server_name = SERVER_NAME.into();
    base.log_level = "info".into();
    base.homeserver_timeout_seconds = HOMESERVER_TIMEOUT_SECONDS;
    let synapse = Synapse::start(SERVER_NAME, &[base.registration()]);
    base.appservice_port_registered = true;
    base.homeserver_url = synapse.url.clone();
    let synapse_pid = synapse_pid(&synapse);
    // Created up front: `fresh_database` blocks.
    let postgres_rooms = support::postgres::fresh_database("bench_rooms");
    let postgres_enqueue = support::postgres::fresh_database("bench_rooms_enqueue");
    let postgres_info = postgres_server(&postgres_enqueue);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(async {
        let hs = synapse.url.clone();
        if enqueue_only {
            // The enqueue runs name members without Synapse knowing them.
            let members: Vec<String> = (0..50)
                .map(|i| format!("@bench-member-{i:03}:{SERVER_NAME}"))
                .collect();
            let mut enqueue = Vec::new();
            for (backend, database) in [
                (Backend::Postgres, Some(postgres_enqueue)),
                (Backend::Sqlite, None),
            ] {
                let config = run_config(&base, "eq", database, false);
                enqueue.extend(enqueue_runs(backend, config, &members, synapse_pid).await);
            }
            return Report {
                rooms: 0,
                postgres: postgres_info,
                declared: Vec::new(),
                directs: Vec::new(),
                enqueue,
                total: Duration::ZERO,
            };
        }
        let started = Instant::now();
        let members = register_members(&hs, rooms * MEMBERS).await;
        eprintln!(
            "registered {} member users in {:.1} s",
            members.len(),
            started.elapsed().as_secs_f64()
        );
        let direct = Direct::new(&hs, &base.tokens.as_token);
        let mut declared = Vec::new();
        let mut directs = Vec::new();

        let mut sqlite = start_daemon(run_config(&base, "sq", None, true)).await;
        // Every member invited once, so that no measured run pays for Synapse's cold caches.
        let warmup = Instant::now();
        let warmup_rooms = members.len().div_ceil(WARMUP_MEMBERS);
        direct
            .run(
                &tenants("wu"),
                &members,
                warmup_rooms,
                WARMUP_MEMBERS,
                synapse_pid,
            )
            .await;
        eprintln!(
            "warm-up: {warmup_rooms} rooms of {WARMUP_MEMBERS} members in {:.1} s",
            warmup.elapsed().as_secs_f64()
        );
        // The direct runs take turns with the daemon's, while a daemon (idle) takes Synapse's
        // pushes as in the daemon's own runs.
        directs.push(
            direct_run(
                &direct,
                "before SQLite",
                "da",
                &sqlite,
                &members,
                rooms,
                synapse_pid,
            )
            .await,
        );
        declared.push(declared_run(Backend::Sqlite, &sqlite, &members, rooms, synapse_pid).await);
        directs.push(
            direct_run(
                &direct,
                "after SQLite",
                "db",
                &sqlite,
                &members,
                rooms,
                synapse_pid,
            )
            .await,
        );
        wait_inbox_processed(&sqlite).await;
        sqlite.stop();
        let mut postgres = start_daemon(run_config(&base, "pg", Some(postgres_rooms), true)).await;
        declared
            .push(declared_run(Backend::Postgres, &postgres, &members, rooms, synapse_pid).await);
        directs.push(
            direct_run(
                &direct,
                "after PostgreSQL",
                "dc",
                &postgres,
                &members,
                rooms,
                synapse_pid,
            )
            .await,
        );
        wait_inbox_processed(&postgres).await;
        postgres.stop();

        let mut enqueue = Vec::new();
        for (backend, database) in [
            (Backend::Postgres, Some(postgres_enqueue)),
            (Backend::Sqlite, None),
        ] {
            let config = run_config(&base, "eq", database, false);
            enqueue.extend(enqueue_runs(backend, config, &members, synapse_pid).await);
        }
        Report {
            rooms,
            postgres: postgres_info,
            declared,
            directs,
            enqueue,
            total: Duration::ZERO,
        }
    });
    let report = Report {
        total: bench_started.elapsed(),
        ..report
    };

    let markdown = render(&report);
    println!("\n{markdown}");
    let dir = support::python::repo_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    std::fs::write(dir.join("rooms.md"), &markdown).expect("write the report");
    println!("written to {}", dir.join("rooms.md").display());
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

struct Report {
    rooms: usize,
    /// The PostgreSQL server's version and whether the connections use TLS.
    postgres: (String, bool),
    declared: Vec<DeclaredReport>,
    directs: Vec<DirectReport>,
    enqueue: Vec<EnqueueReport>,
    total: Duration,
}

/// The tenant ids of one run: `{prefix}0` … (lowercase, so bot and alias spell them alike).
fn tenants(prefix: &str) -> Vec<String> {
    (0..TENANTS).map(|i| format!("{prefix}{i}")).collect()
}

fn tenant_of(room: usize) -> usize {
    room % TENANTS
}

fn slug(room: usize) -> String {
    format!("room-{room:03}")
}

fn room_name(room: usize) -> String {
    format!("Bench Room {room:03}")
}

fn room_topic(room: usize) -> String {
    format!("Chat room for bench room {room:03}")
}

/// The role of a room's `index`-th member.
fn role(index: usize) -> &'static str {
    match index {
        0 => "host",
        1 => "moderator",
        _ => "participant",
    }
}

/// The level `role` gives in an event room, by the daemon's default role levels.
fn level(role: &str) -> i64 {
    RoleLevels::default()
        .level(RoomKind::Event, role)
        .expect("a default event role")
}

/// Room `room`'s `per_room` members and roles: users `room * per_room ..`, all distinct within a
/// run.
fn room_members(members: &[String], room: usize, per_room: usize) -> Vec<(String, &'static str)> {
    (0..per_room)
        .map(|i| {
            (
                members[(room * per_room + i) % members.len()].clone(),
                role(i),
            )
        })
        .collect()
}

/// The `PUT` body declaring room `room` (private) with `members`; without `members` when none.
fn put_body(room: usize, members: &[(String, &str)]) -> Value {
    let mut body = json!({
        "name": room_name(room),
        "topic": room_topic(room),
        "visibility": "private",
    });
    if !members.is_empty() {
        body["members"] = members
            .iter()
            .map(|(user_id, role)| json!({"user_id": user_id, "role": role}))
            .collect();
    }
    body
}

/// The server's version, and whether a connection to `url` (as the daemon makes it) uses TLS:
/// libpq's default `sslmode=prefer` does whenever the server offers it, also over loopback.
fn postgres_server(url: &str) -> (String, bool) {
    use diesel::sql_types::{Bool, Text};
    use diesel::{Connection, PgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        version: String,
        #[diesel(sql_type = Bool)]
        tls: bool,
    }
    let mut conn = PgConnection::establish(url).expect("connect to the benchmark's database");
    let row: Row = diesel::sql_query(
        "SELECT current_setting('server_version') AS version, \
         coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS tls",
    )
    .get_result(&mut conn)
    .expect("read the server's version and TLS state");
    (row.version, row.tls)
}

/// A copy of the registered config on a fresh database, with this run's four tenants; with
/// `jobs_enabled: false` it only serves the APIs and queues jobs.
fn run_config(
    base: &DaemonConfig,
    prefix: &str,
    database_url: Option<String>,
    jobs_enabled: bool,
) -> DaemonConfig {
    let fresh = DaemonConfig::new("bench", database_url);
    DaemonConfig {
        dir: fresh.dir,
        database_url: fresh.database_url,
        tenants: tenants(prefix)
            .into_iter()
            .map(|id| {
                let name = format!("Bench {id}");
                (id, name)
            })
            .collect(),
        extra_yaml: format!(
            "jobs:\n  enabled: {jobs_enabled}\n  max_parallel: {MAX_PARALLEL}\n  per_tenant: {PER_TENANT}\n"
        ),
        ..base.clone()
    }
}

/// Registers `count` ordinary users (`bench-member-NNN`, no login) and returns their ids.
async fn register_members(hs: &str, count: usize) -> Vec<String> {
    let client = http_client();
    let limit = Arc::new(Semaphore::new(8));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let (client, limit, hs) = (client.clone(), limit.clone(), hs.to_owned());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("the semaphore is open");
            let localpart = format!("bench-member-{i:03}");
            register_member(&client, &hs, &localpart).await;
            (i, format!("@{localpart}:{SERVER_NAME}"))
        });
    }
    let mut users = vec![String::new(); count];
    while let Some(done) = tasks.join_next().await {
        let (i, user) = done.expect("a registration panicked");
        users[i] = user;
    }
    users
}

/// `POST /register` with the dummy stage (Synapse here needs no verification).
async fn register_member(client: &reqwest::Client, hs: &str, localpart: &str) {
    let url = format!("{hs}/_matrix/client/v3/register");
    let mut body = json!({
        "username": localpart,
        "password": format!("{localpart}-bench-password"),
        "inhibit_login": true,
        "auth": {"type": "m.login.dummy"},
    });
    for _ in 0..2 {
        let (status, answer) = send_json(client, Method::POST, &url, None, Some(&body)).await;
        if status.is_success() {
            return;
        }
        // An older flow: first a session, then the dummy stage within it.
        match answer["session"].as_str() {
            Some(session) if status == StatusCode::UNAUTHORIZED => {
                body["auth"]["session"] = json!(session);
            }
            _ => panic!("registering {localpart}: {status} {answer}"),
        }
    }
    panic!("registering {localpart}: the dummy stage did not complete");
}

/// One HTTP call with a JSON body and answer (`Value::Null` when the answer is not JSON).
async fn send_json(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method.clone(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("a JSON body"));
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .unwrap_or_else(|error| panic!("{method} {url}: reading the answer: {error}"));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

// ---------------------------------------------------------------------------------------------
// Declared rooms through the daemon

struct DeclaredReport {
    backend: Backend,
    rooms: usize,
    /// First PUT → every PUT answered.
    enqueued: Duration,
    /// First PUT → every job succeeded.
    wall: Duration,
    /// Job latency (queued → succeeded), per the job table.
    job_p50: Duration,
    job_max: Duration,
    /// Attempts beyond the first, over all jobs; and the attempts that ended other than succeeded.
    extra_attempts: i64,
    unsuccessful_attempts: BTreeMap<String, f64>,
    /// Σ job_seconds / wall: how many jobs ran at once on average.
    mean_in_flight: f64,
    usage: Usage,
    peak_rss_kib: u64,
    endpoints: BTreeMap<String, EndpointStats>,
    /// Jobs in the table after the run, by kind (repairs would show here).
    jobs_by_kind: BTreeMap<String, usize>,
    /// What Synapse pushed to the daemon for the run.
    pushed: Pushed,
}

#[derive(Clone, Copy, Default)]
struct EndpointStats {
    calls: f64,
    errors: f64,
    seconds: f64,
}

impl EndpointStats {
    fn mean_ms(&self) -> f64 {
        self.seconds * 1000.0 / self.calls.max(1.0)
    }
}

/// Starts a daemon on `config` and waits until it is ready.
async fn start_daemon(config: DaemonConfig) -> Daemon {
    let daemon = Daemon::start(config).await;
    wait_ready(&daemon).await;
    daemon
}

/// Declares `rooms` rooms on `daemon` at once and waits until every job has succeeded.
async fn declared_run(
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
    let ids: std::collections::HashSet<i64> = jobs.iter().map(|(id, _, _)| *id).collect();
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

    wait_inbox_processed(daemon).await;
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

async fn wait_ready(daemon: &Daemon) {
    let url = format!(
        "http://127.0.0.1:{}/health/ready",
        daemon.config.metrics_port
    );
    let client = http_client();
    support::eventually(
        "the daemon to be ready",
        Duration::from_secs(60),
        || async {
            let response = client.get(&url).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
}

/// Waits until the inbox processor has worked off every event Synapse pushed.
async fn wait_inbox_processed(daemon: &Daemon) {
    support::eventually("the inbox to drain", Duration::from_secs(120), || async {
        let received = daemon.metric("openmeet_as_events_received_total", "").await;
        let processed = daemon
            .metric("openmeet_as_events_processed_total", "")
            .await;
        (processed >= received).then_some(())
    })
    .await;
}

async fn metrics_text(client: &reqwest::Client, daemon: &Daemon) -> String {
    client
        .get(format!(
            "http://127.0.0.1:{}/metrics",
            daemon.config.metrics_port
        ))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body")
}

/// The samples of metric `name` in Prometheus' text format: (labels between the braces, value).
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            Some((labels.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The value of label `key` in a sample's label string.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let end = labels[start..].find('"')? + start;
    Some(&labels[start..end])
}

/// Metric `name` summed by the value of label `key`.
fn by_label(text: &str, name: &str, key: &str) -> HashMap<String, f64> {
    let mut sums = HashMap::new();
    for (labels, value) in samples(text, name) {
        *sums
            .entry(label(&labels, key).unwrap_or("").to_owned())
            .or_default() += value;
    }
    sums
}

// ---------------------------------------------------------------------------------------------
// The same Matrix calls, made directly

/// One measured run of the direct client, on its own tenants `{prefix}0` ….
/// `daemon` is up and idle: Synapse pushes the rooms' events to it.
async fn direct_run(
    direct: &Direct,
    label: &'static str,
    prefix: &str,
    daemon: &Daemon,
    members: &[String],
    rooms: usize,
    synapse_pid: u32,
) -> DirectReport {
    eprintln!("== direct client ({label}): {rooms} rooms");
    let pushed_before = pushed(daemon).await;
    let report = direct
        .run(&tenants(prefix), members, rooms, MEMBERS, synapse_pid)
        .await;
    wait_inbox_processed(daemon).await;
    let pushed_after = pushed(daemon).await;
    eprintln!(
        "direct: {rooms} rooms in {:.1} s ({:.2} rooms/s)",
        report.wall.as_secs_f64(),
        rooms as f64 / report.wall.as_secs_f64()
    );
    DirectReport {
        label,
        pushed: pushed_after.since(&pushed_before),
        ..report
    }
}

/// What Synapse has pushed to `daemon` so far.
async fn pushed(daemon: &Daemon) -> Pushed {
    Pushed {
        transactions: daemon
            .metric("openmeet_as_transactions_received_total", "")
            .await,
        events: daemon.metric("openmeet_as_events_received_total", "").await,
        ack_seconds: daemon
            .metric("openmeet_as_transaction_ack_seconds_sum", "")
            .await,
    }
}

/// Appservice transactions Synapse pushed, their events, and the daemon's time to acknowledge.
#[derive(Clone, Copy, Default)]
struct Pushed {
    transactions: f64,
    events: f64,
    ack_seconds: f64,
}

impl Pushed {
    fn since(&self, before: &Self) -> Self {
        Self {
            transactions: self.transactions - before.transactions,
            events: self.events - before.events,
            ack_seconds: self.ack_seconds - before.ack_seconds,
        }
    }

    fn cell(&self) -> String {
        format!(
            "{} ({}), ack {:.1} ms",
            self.transactions,
            self.events,
            self.ack_seconds * 1000.0 / self.transactions.max(1.0)
        )
    }
}

/// A minimal appservice client: the as_token, identity assertion with `?user_id=`.
#[derive(Clone)]
struct Direct {
    client: reqwest::Client,
    hs: String,
    as_token: String,
    calls: Arc<Mutex<BTreeMap<&'static str, EndpointStats>>>,
}

struct DirectReport {
    label: &'static str,
    rooms: usize,
    /// What Synapse pushed to the appservice for the run.
    pushed: Pushed,
    wall: Duration,
    mean_in_flight: f64,
    usage: Usage,
    endpoints: BTreeMap<String, EndpointStats>,
}

impl Direct {
    fn new(hs: &str, as_token: &str) -> Self {
        Self {
            client: http_client(),
            hs: hs.trim_end_matches('/').to_owned(),
            as_token: as_token.to_owned(),
            calls: Arc::default(),
        }
    }

    /// One call as `acting_as` (the appservice's sender when `None`); panics unless it succeeds
    /// or its errcode is `tolerated`.
    async fn call(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &str,
        acting_as: Option<&str>,
        body: Option<&Value>,
        tolerated: Option<&str>,
    ) -> Value {
        let mut url = format!("{}{path}", self.hs);
        if let Some(user) = acting_as {
            url.push_str(if path.contains('?') { "&" } else { "?" });
            let _ = write!(url, "user_id={}", encode(user));
        }
        let started = Instant::now();
        let (status, answer) =
            send_json(&self.client, method, &url, Some(&self.as_token), body).await;
        let seconds = started.elapsed().as_secs_f64();
        let ok = status.is_success();
        {
            let mut calls = self.calls.lock().expect("calls lock");
            let stats = calls.entry(endpoint).or_default();
            stats.calls += 1.0;
            stats.seconds += seconds;
            stats.errors += f64::from(u8::from(!ok));
        }
        if !ok && (tolerated.is_none() || answer["errcode"].as_str() != tolerated) {
            panic!("{endpoint} {path}: {status} {answer}");
        }
        answer
    }

    /// `rooms` rooms of `per_room` members over `tenants` (room r to tenant r % 4),
    /// [`PER_TENANT`] at a time per tenant, so [`MAX_PARALLEL`] in flight in all.
    async fn run(
        &self,
        tenants: &[String],
        members: &[String],
        rooms: usize,
        per_room: usize,
        synapse_pid: u32,
    ) -> DirectReport {
        self.calls.lock().expect("calls lock").clear();
        let before = UsageSnapshot::take(None, synapse_pid);
        let started = Instant::now();
        let busy = Arc::new(Mutex::new(Duration::ZERO));
        let mut tenant_tasks = JoinSet::new();
        for (t, tenant) in tenants.iter().enumerate() {
            let queue: Vec<usize> = (0..rooms).filter(|room| tenant_of(*room) == t).collect();
            let queue = Arc::new(Mutex::new(queue.into_iter()));
            let (direct, tenant, members, busy) =
                (self.clone(), tenant.clone(), members.to_vec(), busy.clone());
            tenant_tasks.spawn(async move {
                let bot = format!("@openmeet-bot-{tenant}:{SERVER_NAME}");
                direct.ensure_bot(&bot, &tenant).await;
                let members = Arc::new(members);
                let mut workers = JoinSet::new();
                for _ in 0..PER_TENANT {
                    let (direct, tenant, bot, members, queue, busy) = (
                        direct.clone(),
                        tenant.clone(),
                        bot.clone(),
                        members.clone(),
                        queue.clone(),
                        busy.clone(),
                    );
                    workers.spawn(async move {
                        loop {
                            let Some(room) = queue.lock().expect("queue lock").next() else {
                                break;
                            };
                            let room_started = Instant::now();
                            direct
                                .ensure_room(
                                    &tenant,
                                    &bot,
                                    room,
                                    &room_members(&members, room, per_room),
                                )
                                .await;
                            *busy.lock().expect("busy lock") += room_started.elapsed();
                        }
                    });
                }
                while let Some(done) = workers.join_next().await {
                    done.expect("a direct worker panicked");
                }
            });
        }
        while let Some(done) = tenant_tasks.join_next().await {
            done.expect("a direct tenant panicked");
        }
        let wall = started.elapsed();
        let usage = UsageSnapshot::take(None, synapse_pid).since(&before);
        let busy = *busy.lock().expect("busy lock");
        DirectReport {
            label: "",
            pushed: Pushed::default(),
            rooms,
            wall,
            mean_in_flight: busy.as_secs_f64() / wall.as_secs_f64(),
            usage,
            endpoints: self
                .calls
                .lock()
                .expect("calls lock")
                .iter()
                .map(|(endpoint, stats)| ((*endpoint).to_owned(), *stats))
                .collect(),
        }
    }

    /// As the daemon's `ensure_bot`: register the bot (already registered is fine), name it.
    async fn ensure_bot(&self, bot: &str, tenant: &str) {
        let localpart = bot
            .strip_prefix('@')
            .and_then(|rest| rest.split(':').next())
            .expect("a user id");
        let body = json!({
            "type": "m.login.application_service",
            "username": localpart,
            "inhibit_login": true,
        });
        self.call(
            "register",
            Method::POST,
            "/_matrix/client/v3/register",
            None,
            Some(&body),
            Some("M_USER_IN_USE"),
        )
        .await;
        let path = format!("/_matrix/client/v3/profile/{}/displayname", encode(bot));
        let body = json!({"displayname": format!("OpenMeet (Bench {tenant})")});
        self.call(
            "set_display_name",
            Method::PUT,
            &path,
            Some(bot),
            Some(&body),
            None,
        )
        .await;
    }

    /// What one `ensure_room` job of a new room does in Synapse.
    async fn ensure_room(&self, tenant: &str, bot: &str, room: usize, members: &[(String, &str)]) {
        let capabilities = self
            .call(
                "get_capabilities",
                Method::GET,
                "/_matrix/client/v3/capabilities",
                Some(bot),
                None,
                None,
            )
            .await;
        let version = capabilities["capabilities"]["m.room_versions"]["default"]
            .as_str()
            .expect("a default room version")
            .to_owned();
        let bot_id = UserId::parse(bot).expect("the bot's user id");
        let desired: BTreeMap<OwnedUserId, i64> = members
            .iter()
            .map(|(user, role)| {
                (
                    UserId::parse(user.as_str()).expect("a member's user id"),
                    level(role),
                )
            })
            .collect();
        let declared = DeclaredRoom {
            kind: RoomKind::Event,
            slug: slug(room),
            tenant: tenant.to_owned(),
            name: room_name(room),
            topic: Some(room_topic(room)),
            visibility: Visibility::Private,
        };
        let body = create_room_body(&declared, &bot_id, &version, &desired);
        let created = self
            .call(
                "create_room",
                Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(bot),
                Some(&body),
                None,
            )
            .await;
        let room_id = created["room_id"].as_str().expect("a room id").to_owned();
        let state = self
            .call(
                "get_state_events",
                Method::GET,
                &format!("/_matrix/client/v3/rooms/{}/state", encode(&room_id)),
                Some(bot),
                None,
                None,
            )
            .await;
        let events = state.as_array().cloned().unwrap_or_default();
        let membership = |user: &str| {
            events
                .iter()
                .find(|e| e["type"] == "m.room.member" && e["state_key"] == user)
                .and_then(|e| e["content"]["membership"].as_str())
                .map(str::to_owned)
        };
        for (user, _) in members {
            if !matches!(membership(user).as_deref(), Some("join" | "invite")) {
                self.call(
                    "invite_user",
                    Method::POST,
                    &format!("/_matrix/client/v3/rooms/{}/invite", encode(&room_id)),
                    Some(bot),
                    Some(&json!({"user_id": user})),
                    None,
                )
                .await;
            }
        }
        // The daemon's reconcile: write the power levels only when the declared ones are not in.
        let state_event = |event_type: &str| {
            events
                .iter()
                .find(|e| e["type"] == event_type && e["state_key"] == "")
        };
        let current = state_event("m.room.power_levels")
            .map(|e| e["content"].clone())
            .unwrap_or_else(|| json!({}));
        let creators = state_event("m.room.create")
            .map(|e| {
                let sender = UserId::parse(e["sender"].as_str().expect("a sender"))
                    .expect("the creator's user id");
                privileged_creators(&version, &sender, &e["content"])
            })
            .unwrap_or_default();
        let wanted = Wanted {
            desired: &desired,
            muted: &BTreeSet::new(),
            owned: &BTreeSet::new(),
        };
        if let Some(wanted) = reconcile(&current, wanted, &bot_id, &creators).content {
            self.call(
                "send_state_event",
                Method::PUT,
                &format!(
                    "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/",
                    encode(&room_id)
                ),
                Some(bot),
                Some(&wanted),
                None,
            )
            .await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The platform API's enqueue rate

/// [`ENQUEUE_CLIENTS`], or `OPENMEET_BENCH_CLIENTS`.
fn enqueue_clients() -> usize {
    std::env::var("OPENMEET_BENCH_CLIENTS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|clients| *clients > 0)
        .unwrap_or(ENQUEUE_CLIENTS)
}

struct EnqueueReport {
    backend: Backend,
    members: usize,
    calls: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    errors: usize,
    usage: Usage,
    peak_rss_kib: u64,
}

async fn enqueue_runs(
    backend: Backend,
    config: DaemonConfig,
    members: &[String],
    synapse_pid: u32,
) -> Vec<EnqueueReport> {
    eprintln!("== {} enqueue rate (jobs disabled)", backend.name());
    let tenant_ids: Vec<String> = config.tenants.iter().map(|(id, _)| id.clone()).collect();
    let mut daemon = Daemon::start(config).await;
    wait_ready(&daemon).await;
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
        let mut workers = JoinSet::new();
        for _ in 0..enqueue_clients() {
            let (client, base, tenants, members, member_count, next) = (
                self.client.clone(),
                self.base.clone(),
                self.tenants.clone(),
                self.members.clone(),
                self.member_count,
                self.next.clone(),
            );
            workers.spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let (tenant, token) = &tenants[n % tenants.len()];
                    let url = format!("{base}/v1/tenants/{tenant}/rooms/event/enqueue-{n:07}");
                    let body = put_body(n, &room_members(&members, n, member_count));
                    let body = serde_json::to_vec(&body).expect("a JSON body");
                    let started = Instant::now();
                    let response = client
                        .put(&url)
                        .bearer_auth(token)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match response {
                        Ok(response) => {
                            let status = response.status();
                            let _ = response.bytes().await;
                            status == StatusCode::ACCEPTED
                        }
                        Err(_) => false,
                    };
                    latencies.push(started.elapsed());
                    errors += usize::from(!ok);
                }
                (latencies, errors)
            });
        }
        let mut all = Vec::new();
        let mut errors = 0;
        while let Some(done) = workers.join_next().await {
            let (latencies, worker_errors) = done.expect("an enqueue worker panicked");
            all.extend(latencies);
            errors += worker_errors;
        }
        (all, errors)
    }
}

// ---------------------------------------------------------------------------------------------
// Processes and the machine

/// Synapse's own process (synapse.py's child): the one whose command line names its config.
fn synapse_pid(synapse: &Synapse) -> u32 {
    let config = synapse
        .workdir
        .join("homeserver.yaml")
        .display()
        .to_string();
    let entries = std::fs::read_dir("/proc").expect("read /proc");
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.contains(&b"synapse.app.homeserver".as_slice())
                    && args.contains(&config.as_bytes())
            })
        })
        .unwrap_or_else(|| panic!("no Synapse process runs with {config}"))
}

#[derive(Clone, Copy)]
struct UsageSnapshot {
    daemon: f64,
    synapse: f64,
    /// Every `postgres` process of the machine (the server and its backends).
    postgres: f64,
    /// This process: the load generator, or the direct client.
    own: f64,
    /// (busy, total) jiffies of all CPUs, from /proc/stat.
    machine: (u64, u64),
}

/// CPU seconds over a run, by process, and how busy the whole machine was.
#[derive(Clone, Copy, Default)]
struct Usage {
    daemon_cpu_seconds: f64,
    synapse_cpu_seconds: f64,
    postgres_cpu_seconds: f64,
    own_cpu_seconds: f64,
    machine_busy_percent: f64,
    /// CPU seconds of every other process: the machine's busy time less the above.
    other_cpu_seconds: f64,
}

impl UsageSnapshot {
    /// `daemon`: the daemon's pid (or, for the direct client, none).
    fn take(daemon: Option<u32>, synapse_pid: u32) -> Self {
        Self {
            daemon: daemon.map_or(0.0, cpu_seconds),
            synapse: cpu_seconds(synapse_pid),
            postgres: postgres_cpu_seconds(),
            own: cpu_seconds(std::process::id()),
            machine: machine_jiffies(),
        }
    }

    fn since(&self, before: &Self) -> Usage {
        let busy = self.machine.0.saturating_sub(before.machine.0) as f64;
        let total = self.machine.1.saturating_sub(before.machine.1).max(1) as f64;
        let mut usage = Usage {
            daemon_cpu_seconds: self.daemon - before.daemon,
            synapse_cpu_seconds: self.synapse - before.synapse,
            postgres_cpu_seconds: self.postgres - before.postgres,
            own_cpu_seconds: self.own - before.own,
            machine_busy_percent: busy * 100.0 / total,
            other_cpu_seconds: 0.0,
        };
        usage.other_cpu_seconds = (busy / CLOCK_TICKS
            - usage.daemon_cpu_seconds
            - usage.synapse_cpu_seconds
            - usage.postgres_cpu_seconds
            - usage.own_cpu_seconds)
            .max(0.0);
        usage
    }
}

/// utime + stime of every process named `postgres`, in seconds (backends that exit between two
/// readings are missed; the daemon's pooled connections live for the whole run).
fn postgres_cpu_seconds() -> f64 {
    let entries = std::fs::read_dir("/proc").expect("read /proc");
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .filter_map(try_cpu_seconds)
        .sum()
}

/// (busy, total) jiffies summed over all CPUs (the `cpu` line of /proc/stat; idle and iowait
/// are not busy).
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let line = stat.lines().next().expect("a cpu line");
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().expect("a jiffies count"))
        .collect();
    let total: u64 = values.iter().sum();
    let idle = values[3] + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

// ---------------------------------------------------------------------------------------------
// The report

fn render(report: &Report) -> String {
    let rooms = report.rooms;
    let rate_of = |rooms: usize, wall: Duration| rooms as f64 / wall.as_secs_f64();
    let direct_rate = report
        .directs
        .iter()
        .map(|run| rate_of(run.rooms, run.wall))
        .sum::<f64>()
        / report.directs.len().max(1) as f64;
    let mut out = String::from("# Declared rooms benchmark\n\n");
    let _ = writeln!(
        out,
        "One Synapse 1.163 (SQLite, single process) and the daemon (release build, log level info) \
         on this {}-core machine. {rooms} private event rooms of {MEMBERS} members each (host, \
         moderator, {} participants; {} distinct registered users per run), over {TENANTS} tenants, \
         declared with one `PUT` each, all at once. Jobs: max_parallel {MAX_PARALLEL}, per_tenant \
         {PER_TENANT}; homeserver timeout {HOMESERVER_TIMEOUT_SECONDS} s. The direct client makes \
         the same Matrix calls as the tenant bots with {MAX_PARALLEL} rooms in flight, at most \
         {PER_TENANT} per tenant. PostgreSQL {} on the same machine, connections {}. Whole \
         benchmark: {:.0} s.\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        MEMBERS - 2,
        rooms * MEMBERS,
        report.postgres.0,
        if report.postgres.1 {
            "over TLS (libpq's default sslmode=prefer; `?sslmode=disable` in TEST_POSTGRES_URL turns it off)"
        } else {
            "without TLS"
        },
        report.total.as_secs_f64()
    );

    let _ = writeln!(out, "## Declared rooms to ready\n");
    let mut table_rows = vec![row(&[
        "run",
        "rooms",
        "wall s",
        "rooms/s",
        "% of direct: neighbours; all",
        "all PUTs answered ms",
        "job p50 / max s",
        "mean in flight",
        "retries",
        "daemon CPU ms/job",
        "Synapse CPU s (per room)",
        "Synapse CPU % of a core",
        "machine busy %",
        "Synapse pushed: txns (events), mean ack",
        "peak RSS MiB",
    ])];
    for (k, run) in report.declared.iter().enumerate() {
        let rate = run.rooms as f64 / run.wall.as_secs_f64();
        // The direct runs just before and after this one (they alternate).
        let neighbours: Vec<f64> = report.directs[k.min(report.directs.len())..]
            .iter()
            .take(2)
            .map(|direct| rate_of(direct.rooms, direct.wall))
            .collect();
        let limit = if neighbours.is_empty() {
            direct_rate
        } else {
            neighbours.iter().sum::<f64>() / neighbours.len() as f64
        };
        let percent = rate * 100.0 / limit;
        let wall = run.wall.as_secs_f64();
        let retries = if run.unsuccessful_attempts.is_empty() {
            run.extra_attempts.to_string()
        } else {
            let outcomes: Vec<String> = run
                .unsuccessful_attempts
                .iter()
                .map(|(outcome, count)| format!("{count} {outcome}"))
                .collect();
            format!("{} ({})", run.extra_attempts, outcomes.join(", "))
        };
        table_rows.push(row(&[
            &format!("daemon, {}", run.backend.name()),
            &run.rooms.to_string(),
            &format!("{wall:.1}"),
            &format!("{rate:.2}"),
            &format!(
                "{percent:.0} % of {limit:.2} ({}); {:.0} % of {direct_rate:.2}",
                if percent >= TARGET_PERCENT {
                    "met"
                } else {
                    "MISSED"
                },
                rate * 100.0 / direct_rate
            ),
            &format!("{:.0}", ms(run.enqueued)),
            &format!(
                "{:.1} / {:.1}",
                run.job_p50.as_secs_f64(),
                run.job_max.as_secs_f64()
            ),
            &format!("{:.1}", run.mean_in_flight),
            &retries,
            &format!(
                "{:.1}",
                run.usage.daemon_cpu_seconds * 1000.0 / run.rooms as f64
            ),
            &format!(
                "{:.1} ({:.3})",
                run.usage.synapse_cpu_seconds,
                run.usage.synapse_cpu_seconds / run.rooms as f64
            ),
            &format!("{:.0}", run.usage.synapse_cpu_seconds * 100.0 / wall),
            &format!("{:.0}", run.usage.machine_busy_percent),
            &run.pushed.cell(),
            &format!("{:.1}", mib(run.peak_rss_kib)),
        ]));
    }
    for direct in &report.directs {
        let wall = direct.wall.as_secs_f64();
        let rate = rate_of(direct.rooms, direct.wall);
        table_rows.push(row(&[
            &format!("direct client, {}", direct.label),
            &direct.rooms.to_string(),
            &format!("{wall:.1}"),
            &format!("{rate:.2}"),
            &format!("{:.0} % of all", rate * 100.0 / direct_rate),
            "",
            "",
            &format!("{:.1}", direct.mean_in_flight),
            "0",
            &format!(
                "({:.1}: the bench client)",
                direct.usage.own_cpu_seconds * 1000.0 / direct.rooms as f64
            ),
            &format!(
                "{:.1} ({:.3})",
                direct.usage.synapse_cpu_seconds,
                direct.usage.synapse_cpu_seconds / direct.rooms as f64
            ),
            &format!("{:.0}", direct.usage.synapse_cpu_seconds * 100.0 / wall),
            &format!("{:.0}", direct.usage.machine_busy_percent),
            &direct.pushed.cell(),
            "",
        ]));
    }
    out.push_str(&table(&table_rows));
    let _ = writeln!(
        out,
        "\nWall: first `PUT` until every job `succeeded` (the daemon's `jobs_total`, polled every \
         50 ms); job latency: queued → succeeded per the job table; mean in flight: Σ job_seconds \
         (direct: Σ room time) ÷ wall; retries: attempts beyond the first; CPU: utime + stime \
         from /proc over the wall time (daemon CPU includes answering the `PUT`s and Synapse's \
         transaction pushes); machine busy: all cores, from /proc/stat. Target: the daemon at ≥ \
         {TARGET_PERCENT} % of the direct client's rooms/s. The direct client runs {} times, taking \
         turns with the daemon; Synapse slows down as its database grows, so each daemon run is \
         compared with the mean of the direct runs just before and after it (neighbours), and with \
         the mean of all ({direct_rate:.2} rooms/s). Synapse pushed: the appservice transactions \
         (and events) Synapse sent for the run's rooms, and the daemon's mean time to acknowledge \
         one.\n",
        report.directs.len()
    );

    let mut disturbed: Vec<String> = Vec::new();
    let mut check = |run: String, usage: &Usage, wall: Duration| {
        let share = usage.other_cpu_seconds / wall.as_secs_f64();
        if share > 0.1 {
            disturbed.push(format!("{run} ({:.0} % of a core)", share * 100.0));
        }
    };
    for run in &report.declared {
        check(
            format!("daemon, {}", run.backend.name()),
            &run.usage,
            run.wall,
        );
    }
    for run in &report.directs {
        check(
            format!("direct client, {}", run.label),
            &run.usage,
            run.wall,
        );
    }
    for run in &report.enqueue {
        check(
            format!(
                "enqueue, {} with {} members",
                run.backend.name(),
                run.members
            ),
            &run.usage,
            run.wall,
        );
    }
    if !disturbed.is_empty() {
        let _ = writeln!(
            out,
            "**Other processes used the CPU during** {}: those numbers are disturbed; run the \
             benchmark on an otherwise idle machine.\n",
            disturbed.join(", ")
        );
    }

    let _ = writeln!(out, "## Matrix calls per run\n");
    let mut header = vec!["endpoint".to_owned()];
    for run in &report.declared {
        header.push(format!("daemon {}: calls", run.backend.name()));
        header.push("mean ms".to_owned());
    }
    header.push("direct, per run: calls".to_owned());
    header.push("mean ms".to_owned());
    let mut calls_rows = vec![header];
    let mut endpoints: Vec<String> = ENDPOINTS.iter().map(|e| (*e).to_owned()).collect();
    for run in &report.declared {
        for endpoint in run.endpoints.keys() {
            if !endpoints.contains(endpoint) {
                endpoints.push(endpoint.clone());
            }
        }
    }
    let cell = |stats: Option<&EndpointStats>| match stats {
        Some(stats) if stats.calls > 0.0 => {
            let errors = if stats.errors > 0.0 {
                format!(" ({} errors)", stats.errors)
            } else {
                String::new()
            };
            (
                format!("{}{errors}", stats.calls),
                format!("{:.0}", stats.mean_ms()),
            )
        }
        _ => ("0".to_owned(), String::new()),
    };
    for endpoint in &endpoints {
        let mut cells = vec![endpoint.clone()];
        for run in &report.declared {
            let (calls, mean) = cell(run.endpoints.get(endpoint));
            cells.push(calls);
            cells.push(mean);
        }
        let mut direct = EndpointStats::default();
        for run in &report.directs {
            if let Some(stats) = run.endpoints.get(endpoint) {
                direct.calls += stats.calls;
                direct.errors += stats.errors;
                direct.seconds += stats.seconds;
            }
        }
        let runs = report.directs.len().max(1) as f64;
        direct.calls /= runs;
        direct.errors /= runs;
        direct.seconds /= runs;
        let (calls, mean) = cell(Some(&direct));
        cells.push(calls);
        cells.push(mean);
        calls_rows.push(cells);
    }
    out.push_str(&table(&calls_rows));
    let kinds: Vec<String> = report
        .declared
        .iter()
        .map(|run| {
            let kinds: Vec<String> = run
                .jobs_by_kind
                .iter()
                .map(|(kind, count)| format!("{count} {kind}"))
                .collect();
            format!("{}: {}", run.backend.name(), kinds.join(", "))
        })
        .collect();
    let _ = writeln!(
        out,
        "\nMean ms: the call's latency as the caller saw it (the daemon's \
         `homeserver_request_seconds`). `register` answers `M_USER_IN_USE` when the bot exists \
         (counted as errors). Jobs in the table after each run: {}.\n",
        kinds.join("; ")
    );

    let _ = writeln!(out, "## Platform API enqueue rate\n");
    let mut enqueue_rows = vec![row(&[
        "backend",
        "members",
        "clients",
        "calls",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "daemon CPU µs/call",
        "PostgreSQL server CPU µs/call",
        "load generator CPU µs/call",
        "machine busy %",
        "peak RSS MiB",
        "target",
    ])];
    for run in &report.enqueue {
        let rate = run.calls as f64 / run.wall.as_secs_f64();
        let per_call = |seconds: f64| format!("{:.0}", seconds * 1e6 / run.calls.max(1) as f64);
        let target = if run.backend == Backend::Postgres {
            let wanted = TARGET_ENQUEUE_PER_SECOND[usize::from(run.members > 0)];
            format!(
                "≥ {wanted:.0}/s: {}",
                if rate >= wanted { "met" } else { "MISSED" }
            )
        } else {
            String::new()
        };
        enqueue_rows.push(row(&[
            run.backend.name(),
            &run.members.to_string(),
            &enqueue_clients().to_string(),
            &run.calls.to_string(),
            &format!("{rate:.0}"),
            &format!("{:.2}", ms(run.p50)),
            &format!("{:.2}", ms(run.p99)),
            &run.errors.to_string(),
            &per_call(run.usage.daemon_cpu_seconds),
            &per_call(run.usage.postgres_cpu_seconds),
            &per_call(run.usage.own_cpu_seconds),
            &format!("{:.0}", run.usage.machine_busy_percent),
            &format!("{:.1}", mib(run.peak_rss_kib)),
            &target,
        ]));
    }
    out.push_str(&table(&enqueue_rows));
    let _ = writeln!(
        out,
        "\n`PUT /v1/tenants/{{tenant}}/rooms/event/{{slug}}`, a new slug each call, over {TENANTS} \
         tenants, on a daemon with `jobs.enabled: false`; {} keep-alive clients for {} s after \
         a {} s warm-up. The load generator runs on the same cores.",
        enqueue_clients(),
        ENQUEUE_RUN.as_secs(),
        ENQUEUE_WARMUP.as_secs()
    );
    out
}
