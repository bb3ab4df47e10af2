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
//! - one big room ([`big`]): declared with 5,000 members, then 500 single-member `PUT`s; the
//!   homeserver calls per member, the jobs and the time to converge, against the direct client
//!   making the same invites; on the first backend measured, after the other runs;
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
//! instead of [`ENQUEUE_CLIENTS`]; `OPENMEET_BENCH_ONLY=big` only the big room ([`big`]); `BENCH_BACKENDS=sqlite` measures one backend only (the direct
//! client then runs twice). The daemon connects to PostgreSQL as the URL says, without TLS on
//! loopback unless it asks (the report says which); append `?sslmode=require` to
//! `TEST_POSTGRES_URL` to measure with. Without
//! `TEST_POSTGRES_URL` PostgreSQL is an embedded throwaway cluster. Under `cargo test` (no
//! `--bench` argument) the binary does nothing.
//!
//! The modules: [`plan`] (what each run declares), [`setup`] (member users, Synapse's and
//! PostgreSQL's processes), [`declared`] (the daemon's runs), [`direct`] (the direct client),
//! [`enqueue`] (the enqueue rate), [`measures`] (CPU, pushes and calls), [`turns`] (the order of the runs),
//! [`report`] (the tables).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly by design

#[path = "../../tests/support/mod.rs"]
mod support;

#[path = "../common/mod.rs"]
mod common;

mod big;
mod declared;
mod direct;
mod enqueue;
mod measures;
mod plan;
mod report;
mod setup;
mod turns;

use std::time::{Duration, Instant};

use common::daemon::{Backend, SERVER_NAME, backends, start_synapse};
use support::matrix_client::http_client;

use big::{BigReport, big_runs};
use declared::DeclaredReport;
use direct::{Direct, DirectReport};
use enqueue::{EnqueueReport, enqueue_runs};
use plan::run_config;
use setup::{postgres_server, register_members, synapse_pid};
use turns::Runs;

/// Rooms declared per run (`OPENMEET_BENCH_ROOMS` overrides).
pub const ROOMS: usize = 100;
/// Members per room: a host, a moderator, the rest participants.
pub const MEMBERS: usize = 5;
pub const TENANTS: usize = 4;
/// The daemon's job bounds (its defaults, written out), and the direct client's.
pub const MAX_PARALLEL: usize = 16;
pub const PER_TENANT: usize = 4;
/// `homeserver.timeout_seconds` of the daemons: the production default (tests use 10).
pub const HOMESERVER_TIMEOUT_SECONDS: u64 = 30;
/// Members per room of the warm-up, which invites every member user once before the measured runs.
pub const WARMUP_MEMBERS: usize = 25;
/// A run that takes longer than this has stalled.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(900);
pub const ENQUEUE_CLIENTS: usize = 32;
pub const ENQUEUE_RUN: Duration = Duration::from_secs(5);
pub const ENQUEUE_WARMUP: Duration = Duration::from_secs(1);
/// Targets: the daemon's throughput against the direct client's, and PostgreSQL's enqueue rate.
pub const TARGET_PERCENT: f64 = 95.0;
/// PUTs per second on PostgreSQL: without members, and with [`MEMBERS`].
pub const TARGET_ENQUEUE_PER_SECOND: [f64; 2] = [3_000.0, 2_000.0];
/// The calls of one room's `ensure_room`, as the daemon's metrics name them.
pub const ENDPOINTS: [&str; 7] = [
    "register",
    "set_display_name",
    "get_capabilities",
    "create_room",
    "get_state_events",
    "invite_user",
    "send_state_event",
];

pub struct Report {
    pub rooms: usize,
    /// The PostgreSQL server's version and whether the connections use TLS (when measured).
    pub postgres: Option<(String, bool)>,
    pub declared: Vec<DeclaredReport>,
    pub directs: Vec<DirectReport>,
    pub enqueue: Vec<EnqueueReport>,
    /// The big room's runs: the daemon's, the direct client's.
    pub big: Vec<BigReport>,
    pub total: Duration,
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("rooms: a benchmark; run it with `cargo bench --bench rooms`");
        return;
    }
    let rooms = common::rooms_from_env(ROOMS);
    // `OPENMEET_BENCH_ONLY=enqueue`: only the platform API's enqueue rate; `=big`: only the big
    // room.
    let only = std::env::var("OPENMEET_BENCH_ONLY").unwrap_or_default();
    let (enqueue_only, big_only) = (only == "enqueue", only == "big");
    let backends = backends();
    let bench_started = Instant::now();
    // The registration's namespaces cover every tenant's bot and alias, so each run has its own.
    let (synapse, mut base) = start_synapse();
    base.homeserver_timeout_seconds = HOMESERVER_TIMEOUT_SECONDS;
    let synapse_pid = synapse_pid(&synapse);
    // Created up front: `fresh_database` blocks. The enqueue runs go PostgreSQL first.
    let databases = |prefix: &str, order: &[Backend]| -> Vec<(Backend, Option<String>)> {
        order
            .iter()
            .filter(|backend| backends.contains(backend))
            .map(|backend| (*backend, backend.fresh_database(prefix)))
            .collect()
    };
    let declared_databases = databases("bench_rooms", &backends);
    let enqueue_databases = databases("bench_rooms_enqueue", &[Backend::Postgres, Backend::Sqlite]);
    // The big room on one backend: the first measured.
    let big_database = databases("bench_rooms_big", &backends[..1]).remove(0);
    let postgres = enqueue_databases
        .iter()
        .find_map(|(_, url)| url.as_deref())
        .map(postgres_server);

    let runtime = common::runtime();
    let report = runtime.block_on(async {
        let hs = synapse.url.clone();
        let mut report = Report {
            rooms: 0,
            postgres,
            declared: Vec::new(),
            directs: Vec::new(),
            enqueue: Vec::new(),
            big: Vec::new(),
            total: Duration::ZERO,
        };
        let members = if enqueue_only || big_only {
            // The enqueue runs name members without Synapse knowing them (the big room registers
            // its own).
            (0..50)
                .map(|i| format!("@bench-member-{i:03}:{SERVER_NAME}"))
                .collect()
        } else {
            report.rooms = rooms;
            let started = Instant::now();
            let members = register_members(&hs, rooms * MEMBERS).await;
            eprintln!(
                "registered {} member users in {:.1} s",
                members.len(),
                started.elapsed().as_secs_f64()
            );
            let direct = Direct::new(&hs, &base.tokens.as_token);
            let runs = Runs {
                direct: &direct,
                members: &members,
                rooms,
                synapse_pid,
                client: http_client(),
            };
            runs.alternate(&base, declared_databases, &mut report).await;
            members
        };
        for (backend, database) in enqueue_databases.into_iter().filter(|_| !big_only) {
            let config = run_config(&base, "eq", database, false);
            report
                .enqueue
                .extend(enqueue_runs(backend, config, &members, synapse_pid).await);
        }
        // Last: its 5,500 members and their invites grow Synapse's database.
        if !enqueue_only {
            let (backend, database) = big_database;
            big_runs(&hs, &base, backend, database, &mut report).await;
        }
        report
    });
    let report = Report {
        total: bench_started.elapsed(),
        ..report
    };
    common::write_report("rooms.md", &report::render(&report));
}
