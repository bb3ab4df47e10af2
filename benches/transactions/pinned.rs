//! The pinned mode (`BENCH_PINNED=1`, `make bench-pinned`): issue 24's measuring method.
//!
//! - The servers under measurement — a null server of this run's own and each daemon — run on
//!   [`SERVER_CPU`], spawned from a thread pinned there (as under `taskset -c 0`, so a daemon's
//!   runtime sees one CPU); this process, the load generator, is pinned to [`LOAD_CPU`] before it
//!   makes any thread, and with it what it starts (Synapse, idle here, and pgbench). PostgreSQL is
//!   a system service, not pinned.
//! - 100-event transactions of ~530-byte events, one in eight an `m.room.member` ([`MIX`]), 1 and
//!   then 16 in flight; each run pushes for [`RUN`] after a [`WARM_UP`] (then the inbox is drained
//!   first), and ends when the inbox is empty again. For a daemon its metrics are sampled every
//!   [`SAMPLE_EVERY`] meanwhile, for the longest time its processed counter stood still while
//!   events waited.
//! - PostgreSQL: pgbench in the daemon's database, the same insert for 10 s, one client.
//! - SQLite, unless `BENCH_MEMORY=0`: 2 M events into a fresh daemon and its RSS; then, stopped,
//!   the last 450,000 of them made pending again in its file, and while the restarted daemon
//!   drains them, 100×1 transactions for 10 s. `BENCH_MEMORY=only`: the null server and this, no
//!   daemon runs.
//!
//! The report goes to `target/bench/transactions-pinned.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::daemon::{Backend, backends, fresh_copy, start_daemon, start_synapse};
use crate::common::load::{Put, put_all};
use crate::common::metrics::{
    by_label, metrics_text, metrics_text_at, sum, wait_inbox_processed_within,
};
use crate::common::pin::{self, cpu_busy_seconds, on_cpu, placement};
use crate::common::{
    cpu_seconds, mib, ms, percentile, proc_status_kib, row, runtime, table, write_report,
};
use crate::support::daemon::{Daemon, DaemonConfig};
use crate::support::events;
use crate::support::matrix_client::http_client;
use crate::support::sqlite_beside;
use crate::{EventFactory, EventMix, Server, Target, start_null_server};

/// Where the servers under measurement run.
const SERVER_CPU: usize = 0;
/// Where this process, the load generator, runs.
const LOAD_CPU: usize = 1;
const WARM_UP: Duration = Duration::from_secs(6);
const RUN: Duration = Duration::from_secs(10);
/// How often the daemon's metrics are read during a run and its drain.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const EVENTS_PER_TXN: usize = 100;
const IN_FLIGHT: [usize; 2] = [1, 16];
/// ~530 bytes a event (7 messages of 216–295 characters to 1 membership).
const MIX: EventMix = EventMix {
    member_every: 8,
    shortest_body: 216,
};
/// Transactions made by the [`EventFactory`], of which every body pushed is a copy.
const TEMPLATES: usize = 8;
/// The longest a drain may take before the run fails.
const DRAIN_LIMIT: Duration = Duration::from_secs(600);
const MEMORY_EVENTS: u64 = 2_000_000;
/// Inbox rows made pending again before the restart of the memory scenario.
const MEMORY_BACKLOG: usize = 450_000;
const RECEIVED: &str = "openmeet_as_events_received_total";
const PROCESSED: &str = "openmeet_as_events_processed_total";

/// Whether `BENCH_PINNED` asks for this mode (set, and not `0`).
pub fn enabled() -> bool {
    std::env::var("BENCH_PINNED").is_ok_and(|value| !value.is_empty() && value != "0")
}

pub fn main() {
    pin::require_cpus([SERVER_CPU, LOAD_CPU]);
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    pin::pin_this_thread(LOAD_CPU);
    let load_before = loadavg();
    let (_synapse, base) = start_synapse();
    let runtime = runtime();
    let bodies = Arc::new(Bodies::new());

    let mut servers = vec![runtime.block_on(measure_null_server(&bodies))];
    let mut pgbench = None;
    let backends = backends();
    let memory_only = std::env::var("BENCH_MEMORY").ok().as_deref() == Some("only");
    for &backend in backends.iter().filter(|_| !memory_only) {
        let config = fresh_copy(&base, backend.fresh_database("bench_pinned"));
        let (runs, mut daemon) = runtime.block_on(measure_daemon(backend, config, &bodies));
        servers.push(runs);
        if backend == Backend::Postgres {
            // Before the daemon is dropped: that drops its database.
            daemon.stop();
            eprintln!("== pgbench");
            pgbench = Some(run_pgbench(&daemon.config.database_url, &daemon.config.dir));
        }
    }
    let memory = (backends.contains(&Backend::Sqlite)
        && std::env::var("BENCH_MEMORY").ok().as_deref() != Some("0"))
    .then(|| runtime.block_on(memory_scenario(fresh_copy(&base, None), &bodies)));
    let load_generator = placement(std::process::id(), LOAD_CPU).describe(LOAD_CPU);
    let context = Context {
        body_cost: bodies.cost,
        cpus,
        load_before,
        load_after: loadavg(),
        load_generator,
    };
    write_report(
        "transactions-pinned.md",
        &render(&context, &servers, pgbench.as_ref(), memory.as_ref()),
    );
}

/// Starts a daemon on [`SERVER_CPU`] and waits until it is ready.
fn start_pinned(config: DaemonConfig) -> Daemon {
    on_cpu(SERVER_CPU, || block_on_here(start_daemon(config)))
}

/// Runs `future` on a runtime of the calling thread's own.
fn block_on_here<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The 1-, 5- and 15-minute load averages (/proc/loadavg).
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Transaction bodies made between the requests, fast enough to leave the load generator's core
/// to the pushes: each is a copy of one of [`TEMPLATES`] transactions made once by the
/// [`EventFactory`], with event ids of its own ([`write_event_id`]) written over theirs. (Building
/// and serialising 100 events anew takes ~1 ms; even the factory's SHA-256 ids, written over a
/// copy, took ~145 µs a body, and held the null server at 4,200 txn/s.)
struct Bodies {
    templates: Vec<Template>,
    /// What making one body took, on average over a thousand.
    cost: Duration,
}

struct Template {
    body: Vec<u8>,
    /// Where each event's id starts in `body`.
    id_offsets: Vec<usize>,
}

impl Bodies {
    fn new() -> Self {
        let mut factory = EventFactory::with_mix(MIX);
        let templates = (0..TEMPLATES)
            .map(|_| {
                let events: Vec<Value> = (0..EVENTS_PER_TXN).map(|_| factory.next()).collect();
                let body = events::transaction(&events);
                let id_offsets = events
                    .iter()
                    .map(|event| {
                        let id = event["event_id"].as_str().expect("an event id");
                        assert_eq!(id.len(), EVENT_ID_LEN, "an event id's length");
                        let key = format!("\"event_id\":\"{id}\"");
                        body.find(&key).expect("the event's id in the body") + key.len()
                            - id.len()
                            - 1
                    })
                    .collect();
                Template {
                    body: body.into_bytes(),
                    id_offsets,
                }
            })
            .collect();
        let mut bodies = Self {
            templates,
            cost: Duration::ZERO,
        };
        let started = Instant::now();
        for n in 0..1000 {
            std::hint::black_box(bodies.body(n));
        }
        bodies.cost = started.elapsed() / 1000;
        bodies
    }

    /// Transaction `n`'s body: its events numbered from `n` × 100, so every id is new.
    fn body(&self, n: u64) -> Bytes {
        let template = &self.templates[n as usize % self.templates.len()];
        let mut body = template.body.clone();
        for (i, &offset) in template.id_offsets.iter().enumerate() {
            let id = &mut body[offset..offset + EVENT_ID_LEN];
            write_event_id(n * EVENTS_PER_TXN as u64 + i as u64, id);
        }
        Bytes::from(body)
    }
}

/// `$` and 43 hexadecimal characters, like the [`EventFactory`]'s ids.
const EVENT_ID_LEN: usize = 44;

/// Writes event id number `n` into `out`: `$` and 43 hexadecimal characters from three rounds of
/// splitmix64, as unpredictable for an index as the factory's SHA-256 ids (and as Synapse's) at a
/// hundredth of the cost; unique, as the first round is a bijection of `n`.
fn write_event_id(n: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out[0] = b'$';
    for (round, chunk) in out[1..EVENT_ID_LEN].chunks_mut(16).enumerate() {
        let mut bits = splitmix64(n.wrapping_mul(3).wrapping_add(round as u64));
        for digit in chunk {
            *digit = HEX[(bits & 15) as usize];
            bits >>= 4;
        }
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// When a push stops.
#[derive(Clone, Copy)]
enum Until {
    Time(Instant),
    Txns(u64),
}

/// Pushes transactions at one server over keep-alive connections, as Synapse would, txnIds
/// counting up across its runs (and the daemon's restarts).
struct Pusher {
    client: reqwest::Client,
    url: String,
    token: String,
    bodies: Arc<Bodies>,
    next_txn: Arc<AtomicU64>,
}

impl Pusher {
    fn new(target: &Target<'_>, bodies: &Arc<Bodies>) -> Self {
        Self {
            client: http_client(),
            url: format!("{}/_matrix/app/v1/transactions/", target.base),
            token: target.token.clone(),
            bodies: bodies.clone(),
            next_txn: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Pushes `in_flight` at a time until `until`; returns each request's latency and the
    /// number of answers other than 200.
    async fn push(&self, in_flight: usize, until: Until) -> (Vec<Duration>, usize) {
        let (bodies, next_txn) = (self.bodies.clone(), self.next_txn.clone());
        let (url, token) = (self.url.clone(), self.token.clone());
        let last = match until {
            Until::Txns(count) => next_txn.load(Ordering::Relaxed) + count,
            Until::Time(_) => u64::MAX,
        };
        put_all(&self.client, in_flight, StatusCode::OK, move || {
            if let Until::Time(end) = until
                && Instant::now() >= end
            {
                return None;
            }
            let n = next_txn.fetch_add(1, Ordering::Relaxed);
            (n < last).then(|| Put {
                url: format!("{url}{n}"),
                token: token.clone(),
                body: bodies.body(n),
            })
        })
        .await
    }
}

/// One read of the daemon's metrics.
struct Sample {
    at: Instant,
    received: f64,
    processed: f64,
    /// The inbox processor's own part of `processed`: in this mix every message is settled (and
    /// counted) at its acknowledgement, every membership is the processor's.
    by_processor: f64,
}

impl Sample {
    fn of(text: &str) -> Self {
        Self {
            at: Instant::now(),
            received: sum(text, RECEIVED),
            processed: sum(text, PROCESSED),
            by_processor: by_label(text, PROCESSED, "type")
                .get("m.room.member")
                .copied()
                .unwrap_or(0.0),
        }
    }
}

/// Reads a daemon's metrics every [`SAMPLE_EVERY`] on a task of its own, until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start(metrics_port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let client = http_client();
            let mut ticks = tokio::time::interval(SAMPLE_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut samples = Vec::new();
            loop {
                ticks.tick().await;
                samples.push(Sample::of(&metrics_text_at(&client, metrics_port).await));
                if stopped.load(Ordering::Relaxed) {
                    return samples;
                }
            }
        });
        Self { stop, task }
    }

    /// Stops after one more sample; returns them all.
    async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the metrics sampler")
    }
}

/// The longest time `progress` did not move while events waited (received > processed), from
/// consecutive samples.
fn longest_stall(samples: &[Sample], progress: fn(&Sample) -> f64) -> Duration {
    let mut longest = Duration::ZERO;
    let mut still_since = None;
    for pair in samples.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        if before.received > before.processed && progress(after) == progress(before) {
            let since = *still_since.get_or_insert(before.at);
            longest = longest.max(after.at - since);
        } else {
            still_since = None;
        }
    }
    longest
}

/// One measured run.
struct Run {
    in_flight: usize,
    txns: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// The server's utime + stime from the start of the pushes to an empty inbox.
    cpu_seconds: f64,
    errors: usize,
    /// VmRSS once drained, and VmHWM then.
    rss_kib: u64,
    peak_rss_kib: u64,
    /// A daemon's inbox; `None` for the null server.
    inbox: Option<Inbox>,
    /// The share of a core others took on [`SERVER_CPU`] and [`LOAD_CPU`] over the run: each
    /// one's busy time less the server's CPU (on the first) and this process's (on the second).
    other_share: [f64; 2],
}

struct Inbox {
    /// Last acknowledgement to an empty inbox.
    drain: Duration,
    /// Received − processed at the last acknowledgement.
    pending_at_last_ack: f64,
    /// The longest time the processed counter (all types) stood still while events waited.
    longest_stall: Duration,
    /// The same for the processor's own count (memberships only).
    processor_stall: Duration,
    /// SQLite: the longest holds of the one writer since the daemon started, read once drained:
    /// (seconds, kind, holder), longest first.
    longest_turns: Vec<(f64, String, String)>,
}

/// The series of `openmeet_as_sqlite_writer_longest_turn_seconds` in a scrape, longest first.
fn longest_turns(text: &str) -> Vec<(f64, String, String)> {
    let label = |labels: &str, name: &str| {
        let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
        let end = labels[start..].find('"')? + start;
        Some(labels[start..end].to_owned())
    };
    let mut turns: Vec<(f64, String, String)> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("openmeet_as_sqlite_writer_longest_turn_seconds{")?;
            let (labels, value) = rest.split_once("} ")?;
            Some((
                value.trim().parse().ok()?,
                label(labels, "kind")?,
                label(labels, "holder")?,
            ))
        })
        .collect();
    turns.sort_by(|a, b| b.0.total_cmp(&a.0));
    turns
}

impl Run {
    fn txns_per_second(&self) -> f64 {
        self.txns as f64 / self.wall.as_secs_f64()
    }

    fn events_per_second(&self) -> f64 {
        self.txns_per_second() * EVENTS_PER_TXN as f64
    }

    fn cpu_per_10k_events(&self) -> f64 {
        self.cpu_seconds * 10_000.0 / (self.txns * EVENTS_PER_TXN) as f64
    }

    /// Events pending at the last acknowledgement over the drain time; `None` when none were.
    fn drain_rate(&self) -> Option<f64> {
        let inbox = self.inbox.as_ref()?;
        (inbox.pending_at_last_ack > 0.0)
            .then(|| inbox.pending_at_last_ack / inbox.drain.as_secs_f64().max(1e-3))
    }
}

/// A server's runs.
struct ServerRuns {
    server: Server,
    runs: Vec<Run>,
    /// Where its threads were allowed to run after its runs.
    placement: String,
}

impl ServerRuns {
    fn run(&self, in_flight: usize) -> Option<&Run> {
        self.runs.iter().find(|run| run.in_flight == in_flight)
    }
}

async fn measure_null_server(bodies: &Arc<Bodies>) -> ServerRuns {
    eprintln!("== null server (pinned)");
    let (mut child, port) = on_cpu(SERVER_CPU, start_null_server);
    let target = Target {
        base: format!("http://127.0.0.1:{port}"),
        token: "null".into(),
        pid: child.id(),
        daemon: None,
    };
    let runs = measure_all(Server::Null, &target, bodies).await;
    let placement = placement(target.pid, SERVER_CPU).describe(SERVER_CPU);
    drop(child.stdin.take()); // the server exits when its stdin closes
    let _ = child.wait();
    ServerRuns {
        server: Server::Null,
        runs,
        placement,
    }
}

/// A daemon's runs; returns the daemon too, still running.
async fn measure_daemon(
    backend: Backend,
    config: DaemonConfig,
    bodies: &Arc<Bodies>,
) -> (ServerRuns, Daemon) {
    let server = Server::Daemon(backend);
    eprintln!("== {} (pinned)", server.name());
    let daemon = start_pinned(config);
    let target = daemon_target(&daemon);
    let runs = measure_all(server, &target, bodies).await;
    let placement = placement(target.pid, SERVER_CPU).describe(SERVER_CPU);
    let runs = ServerRuns {
        server,
        runs,
        placement,
    };
    (runs, daemon)
}

fn daemon_target(daemon: &Daemon) -> Target<'_> {
    Target {
        base: format!("http://127.0.0.1:{}", daemon.config.appservice_port),
        token: daemon.config.tokens.hs_token.clone(),
        pid: daemon.pid().expect("the daemon runs"),
        daemon: Some(daemon),
    }
}

async fn measure_all(server: Server, target: &Target<'_>, bodies: &Arc<Bodies>) -> Vec<Run> {
    let pusher = Pusher::new(target, bodies);
    let mut runs = Vec::new();
    for in_flight in IN_FLIGHT {
        let run = measure(target, &pusher, in_flight).await;
        eprintln!(
            "{:<18} 100 events x {in_flight:>2}: {} txns, {:.0} txn/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, CPU {:.3} s/10k events, drain {} ms",
            server.name(),
            run.txns,
            run.txns_per_second(),
            ms(run.p50),
            ms(run.p99),
            ms(run.max),
            run.cpu_per_10k_events(),
            run.inbox
                .as_ref()
                .map_or("–".into(), |inbox| format!("{:.0}", ms(inbox.drain))),
        );
        runs.push(run);
    }
    runs
}

/// A warm-up, the inbox drained, then the measured pushes and their drain.
async fn measure(target: &Target<'_>, pusher: &Pusher, in_flight: usize) -> Run {
    let client = http_client();
    pusher
        .push(in_flight, Until::Time(Instant::now() + WARM_UP))
        .await;
    if let Some(daemon) = target.daemon {
        wait_inbox_processed_within(&client, daemon, DRAIN_LIMIT).await;
    }
    let sampler = target
        .daemon
        .map(|daemon| Sampler::start(daemon.config.metrics_port));
    let cpu_before = cpu_seconds(target.pid);
    let own_before = cpu_seconds(std::process::id());
    let busy_before = [cpu_busy_seconds(SERVER_CPU), cpu_busy_seconds(LOAD_CPU)];
    let started = Instant::now();
    let (mut latencies, errors) = pusher.push(in_flight, Until::Time(started + RUN)).await;
    let wall = started.elapsed();
    let mut inbox = None;
    if let (Some(daemon), Some(sampler)) = (target.daemon, sampler) {
        let text = metrics_text(&client, daemon).await;
        let pending_at_last_ack = sum(&text, RECEIVED) - sum(&text, PROCESSED);
        wait_inbox_processed_within(&client, daemon, DRAIN_LIMIT).await;
        let drain = started.elapsed() - wall;
        let samples = sampler.stop().await;
        inbox = Some(Inbox {
            drain,
            pending_at_last_ack,
            longest_stall: longest_stall(&samples, |sample| sample.processed),
            processor_stall: longest_stall(&samples, |sample| sample.by_processor),
            longest_turns: longest_turns(&metrics_text(&client, daemon).await),
        });
    }
    let cpu_seconds = cpu_seconds(target.pid) - cpu_before;
    let measured = started.elapsed().as_secs_f64();
    let own_seconds = crate::common::cpu_seconds(std::process::id()) - own_before;
    let busy = |cpu: usize, before: f64| cpu_busy_seconds(cpu) - before;
    let other_share = [
        (busy(SERVER_CPU, busy_before[0]) - cpu_seconds).max(0.0) / measured,
        (busy(LOAD_CPU, busy_before[1]) - own_seconds).max(0.0) / measured,
    ];
    latencies.sort();
    Run {
        in_flight,
        txns: latencies.len(),
        wall,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        cpu_seconds,
        errors,
        rss_kib: proc_status_kib(target.pid, "VmRSS"),
        peak_rss_kib: proc_status_kib(target.pid, "VmHWM"),
        inbox,
        other_share,
    }
}

/// pgbench's transactions per second, or why it did not run.
type Pgbench = Result<f64, String>;

/// The insert pgbench repeats: the daemon's statement for one transaction (`store/inbox_rows.rs`,
/// `RecordOnPostgres`) without its quarantine part — the previous numbered txnId read, one
/// `as_transactions` row, 100 `inbox_events` rows, in one statement — with the rows made in SQL
/// from [`MIX`]'s first events (stored in `bench_event_templates`) and random event ids instead of
/// bound arrays.
const PGBENCH_SCRIPT: &str = "\
WITH previous AS (SELECT txn_number FROM as_transactions WHERE homeserver = 'pgbench' \
AND txn_number IS NOT NULL ORDER BY id DESC LIMIT 1), \
txn AS (INSERT INTO as_transactions (homeserver, txn_id, fingerprint, txn_number, event_count, \
received_at) VALUES ('pgbench', md5(CAST(random() AS text)), md5(CAST(random() AS text)), \
CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS bigint), 100, \
CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint)) \
ON CONFLICT DO NOTHING RETURNING txn_id, received_at), \
events AS (INSERT INTO inbox_events (event_id, room_id, event_type, sender, state_key, \
event_json, homeserver, txn_id, received_at, processed_at, outcome) \
SELECT '$' || md5(CAST(random() AS text)) || left(md5(CAST(random() AS text)), 11), t.room_id, \
t.event_type, t.sender, t.state_key, t.event_json, 'pgbench', txn.txn_id, txn.received_at, \
CASE WHEN t.outcome IS NULL THEN NULL ELSE txn.received_at END, t.outcome \
FROM txn CROSS JOIN generate_series(0, 99) AS g(n) \
JOIN bench_event_templates AS t ON t.k = g.n % {EVERY} \
ORDER BY t.outcome IS NOT NULL, g.n ON CONFLICT (event_id) DO NOTHING RETURNING 1) \
SELECT (SELECT txn_number FROM previous), EXISTS (SELECT 1 FROM txn), \
(SELECT count(*) FROM events);\n";

/// pgbench for 10 s, one client, in `database_url` (the daemon's, once it has stopped): the
/// [`PGBENCH_SCRIPT`], prepared. It runs on the load generator's CPU, as a child of this process.
fn run_pgbench(database_url: &str, dir: &Path) -> Pgbench {
    let mut conn = PgConnection::establish(database_url).map_err(|e| e.to_string())?;
    conn.batch_execute(
        "DROP TABLE IF EXISTS bench_event_templates; \
         CREATE TABLE bench_event_templates (k INTEGER PRIMARY KEY, room_id TEXT NOT NULL, \
         event_type TEXT NOT NULL, sender TEXT NOT NULL, state_key TEXT, event_json TEXT NOT NULL, \
         outcome TEXT)",
    )
    .map_err(|e| e.to_string())?;
    let mut factory = EventFactory::with_mix(MIX);
    for k in 0..MIX.member_every {
        let event = factory.next();
        let field = |name: &str| event[name].as_str().map(str::to_owned);
        let member = event["type"] == "m.room.member";
        diesel::sql_query("INSERT INTO bench_event_templates VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind::<Integer, _>(k as i32)
            .bind::<Text, _>(field("room_id").unwrap_or_default())
            .bind::<Text, _>(field("type").unwrap_or_default())
            .bind::<Text, _>(field("sender").unwrap_or_default())
            .bind::<Nullable<Text>, _>(field("state_key"))
            .bind::<Text, _>(event.to_string())
            // As the acknowledgement settles a message (`inbox::classify::settled`).
            .bind::<Nullable<Text>, _>((!member).then_some("message"))
            .execute(&mut conn)
            .map_err(|e| e.to_string())?;
    }
    drop(conn);
    let script = dir.join("pgbench-inbox.sql");
    let text = PGBENCH_SCRIPT.replace("{EVERY}", &MIX.member_every.to_string());
    std::fs::write(&script, text).map_err(|e| e.to_string())?;
    let output = Command::new("pgbench")
        .args(["-n", "-T", "10", "-c", "1", "-M", "prepared", "-f"])
        .arg(&script)
        .arg(database_url)
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprintln!("{stdout}");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no tps in pgbench's output: {stdout}"))
}

/// The memory scenario's measurements.
struct Memory {
    events: u64,
    push_wall: Duration,
    push_errors: usize,
    /// From the first push to an empty inbox.
    processed_after: Duration,
    rss_kib: u64,
    peak_rss_kib: u64,
    /// Rows made pending again.
    backlog: usize,
    /// SIGTERM'd daemon started again to `/health/ready` answering 200 (polled every 5 ms).
    ready: Duration,
    txns: usize,
    first_ack: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: usize,
    /// From the restart until no row of the backlog is pending (polled every 100 ms).
    backlog_gone: Duration,
    /// From the restart until the inbox is empty, once the 10 s of pushes are over.
    drained: Duration,
    restarted_rss_kib: u64,
    restarted_peak_rss_kib: u64,
    placement: String,
}

async fn memory_scenario(config: DaemonConfig, bodies: &Arc<Bodies>) -> Memory {
    eprintln!("== memory: daemon, SQLite, {MEMORY_EVENTS} events (pinned)");
    let client = http_client();
    let mut daemon = start_pinned(config);
    let pusher = Pusher::new(&daemon_target(&daemon), bodies);
    let started = Instant::now();
    let txns = MEMORY_EVENTS / EVENTS_PER_TXN as u64;
    let (_, push_errors) = pusher.push(16, Until::Txns(txns)).await;
    let push_wall = started.elapsed();
    wait_inbox_processed_within(&client, &daemon, DRAIN_LIMIT).await;
    let processed_after = started.elapsed();
    let pid = daemon.pid().expect("the daemon runs");
    let (rss_kib, peak_rss_kib) = (proc_status_kib(pid, "VmRSS"), proc_status_kib(pid, "VmHWM"));
    eprintln!(
        "{MEMORY_EVENTS} events pushed in {:.1} s, processed after {:.1} s, RSS {:.1} MiB (peak {:.1})",
        push_wall.as_secs_f64(),
        processed_after.as_secs_f64(),
        mib(rss_kib),
        mib(peak_rss_kib)
    );

    daemon.stop();
    let path = daemon
        .config
        .database_url
        .strip_prefix("sqlite://")
        .expect("a SQLite daemon")
        .to_owned();
    let (backlog, last_backlog_id) = make_pending_again(&path, MEMORY_BACKLOG);
    let restarting = Instant::now();
    on_cpu(SERVER_CPU, || block_on_here(daemon.restart()));
    wait_ready_every_5_ms(&client, daemon.config.metrics_port).await;
    let ready = restarting.elapsed();

    let watch = BacklogWatch::start(path, last_backlog_id);
    let (latencies, errors) = pusher.push(1, Until::Time(Instant::now() + RUN)).await;
    let (backlog_gone, drained) = watch.drained().await;
    let first_ack = latencies.first().copied().unwrap_or_default();
    let mut latencies = latencies;
    latencies.sort();
    let pid = daemon.pid().expect("the daemon runs");
    Memory {
        events: txns * EVENTS_PER_TXN as u64,
        push_wall,
        push_errors,
        processed_after,
        rss_kib,
        peak_rss_kib,
        backlog,
        ready,
        txns: latencies.len(),
        first_ack,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        errors,
        backlog_gone: backlog_gone - restarting,
        drained: drained - restarting,
        restarted_rss_kib: proc_status_kib(pid, "VmRSS"),
        restarted_peak_rss_kib: proc_status_kib(pid, "VmHWM"),
        placement: placement(pid, SERVER_CPU).describe(SERVER_CPU),
    }
}

/// Makes the last `rows` rows of `inbox_events` pending again (`processed_at` and `outcome` NULL,
/// as they are stored before the processor's turn) in the stopped daemon's SQLite file; returns
/// how many rows changed and the highest id among them.
fn make_pending_again(path: &str, rows: usize) -> (usize, i64) {
    let mut conn = sqlite_beside(path);
    let changed = diesel::sql_query(format!(
        "UPDATE inbox_events SET processed_at = NULL, outcome = NULL WHERE id >= \
         (SELECT id FROM inbox_events ORDER BY id DESC LIMIT 1 OFFSET {})",
        rows - 1
    ))
    .execute(&mut conn)
    .expect("make the backlog pending");
    let last = first_id(
        &mut conn,
        "SELECT id FROM inbox_events ORDER BY id DESC LIMIT 1",
    )
    .expect("rows in the inbox");
    (changed, last)
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn first_id(conn: &mut SqliteConnection, sql: &str) -> Option<i64> {
    let rows: Vec<Id> = diesel::sql_query(sql)
        .load(conn)
        .unwrap_or_else(|e| panic!("`{sql}`: {e}"));
    rows.first().map(|row| row.id)
}

/// Watches the daemon's SQLite file (every 100 ms, the oldest pending row, through the partial
/// index the processor reads by) for the backlog to be worked off, then for the inbox to empty.
struct BacklogWatch {
    pushes_over: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Instant, Instant)>,
}

impl BacklogWatch {
    fn start(path: String, last_backlog_id: i64) -> Self {
        let pushes_over = Arc::new(AtomicBool::new(false));
        let over = pushes_over.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = sqlite_beside(&path);
            let deadline = Instant::now() + DRAIN_LIMIT;
            let mut backlog_gone = None;
            loop {
                let oldest = first_id(
                    &mut conn,
                    "SELECT id FROM inbox_events WHERE processed_at IS NULL ORDER BY id LIMIT 1",
                );
                let now = Instant::now();
                if oldest.is_none_or(|id| id > last_backlog_id) {
                    backlog_gone.get_or_insert(now);
                }
                if let (Some(gone), None, true) =
                    (backlog_gone, oldest, over.load(Ordering::Relaxed))
                {
                    return (gone, now);
                }
                assert!(
                    now < deadline,
                    "the backlog did not drain in {DRAIN_LIMIT:?}"
                );
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Self { pushes_over, task }
    }

    /// Once the pushes are over: when the backlog was gone, and when the inbox was empty.
    async fn drained(self) -> (Instant, Instant) {
        self.pushes_over.store(true, Ordering::Relaxed);
        self.task.await.expect("the backlog watch")
    }
}

async fn wait_ready_every_5_ms(client: &reqwest::Client, metrics_port: u16) {
    let url = format!("http://127.0.0.1:{metrics_port}/health/ready");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = client.get(&url).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "not ready in 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Issue 24's targets for a run, as (what, met: `None` when it does not apply).
fn targets(
    server: Server,
    run: &Run,
    null_txn_s: Option<f64>,
    pgbench: Option<&Pgbench>,
) -> Vec<(String, Option<bool>)> {
    let mut targets = Vec::new();
    let mut check = |what: &str, met: Option<bool>| targets.push((what.to_owned(), met));
    let p99 = ms(run.p99);
    match (server, run.in_flight) {
        (Server::Daemon(Backend::Sqlite), 1) => {
            check("p99 ≤ 5", Some(p99 <= 5.0));
            if let Some(null) = null_txn_s {
                check("≥ 40 % of null", Some(run.txns_per_second() >= 0.4 * null));
            }
            check("CPU ≤ 0.06", Some(run.cpu_per_10k_events() <= 0.06));
        }
        (Server::Daemon(Backend::Sqlite), 16) => {
            check("p99 ≤ 25", Some(p99 <= 25.0));
            check(
                "drain ≥ 100k events/s",
                run.drain_rate().map(|rate| rate >= 100_000.0),
            );
            if let Some(inbox) = &run.inbox {
                let second = Duration::from_secs(1);
                check("never still > 1 s", Some(inbox.longest_stall <= second));
                check(
                    "processor never still > 1 s",
                    Some(inbox.processor_stall <= second),
                );
            }
        }
        (Server::Daemon(Backend::Postgres), 1) => {
            if let Some(Ok(tps)) = pgbench {
                check(
                    "≥ 85 % of pgbench",
                    Some(run.txns_per_second() >= 0.85 * tps),
                );
            }
        }
        _ => {}
    }
    targets
}

fn verdict(what: &str, met: Option<bool>) -> String {
    match met {
        Some(true) => format!("{what} met"),
        Some(false) => format!("{what} MISSED"),
        None => format!("{what} n/a"),
    }
}

/// What the report says about the machine and this process.
struct Context {
    /// What making one transaction body took the load generator.
    body_cost: Duration,
    /// The CPUs this process could use before it pinned itself.
    cpus: usize,
    load_before: String,
    load_after: String,
    load_generator: String,
}

fn render(
    context: &Context,
    servers: &[ServerRuns],
    pgbench: Option<&Pgbench>,
    memory: Option<&Memory>,
) -> String {
    let mut out = String::from("# Transaction push benchmark, pinned (issue 24)\n\n");
    let _ = writeln!(
        out,
        "`PUT /_matrix/app/v1/transactions/{{txnId}}`, release build, log level info. The servers \
         under measurement (a null server — this benchmark's binary run with `--null-server`, one \
         thread that reads the body and answers `{{}}` — and each daemon) run on CPU {SERVER_CPU}: \
         they are spawned from a thread pinned there, as `taskset -c {SERVER_CPU}` would, so a \
         daemon's runtime sees one CPU. The load generator (this process, pinned before it made any \
         thread) runs on CPU {LOAD_CPU}, and with it the processes it starts: the idle Synapse the \
         daemons point at, and pgbench. PostgreSQL is a system service and is not pinned: its \
         backends run on either CPU. {cpus} CPUs; load average {before} before the run, {after} \
         after (another engineer's build may share the machine).\n\n\
         100-event transactions, mean event size {size} bytes, one in {every} an `m.room.member` \
         (the inbox processor's work; the messages are settled at the acknowledgement), each body \
         made between the requests by the load generator: a copy of one of {templates} \
         transactions with fresh event ids, {body_cost:.0} µs a body. Each run \
         pushes for {warm} s (warm-up), waits for the inbox to drain, then pushes for {run} s and \
         waits for the drain again. txn/s is over the {run} s pushes' wall time; latency is \
         client-side per request. CPU is the server's utime + stime per 10k events from the start \
         of the pushes to an empty inbox. Drain is the last acknowledgement to an empty inbox \
         (metrics read every 5 ms); drain events/s is the events pending then (received − \
         processed; the `openmeet_as_inbox_depth` gauge is refreshed only once a second while the \
         processor is busy) over the drain time, at 16 in flight. \"Still\" is the longest time, from the metrics \
         read every {sample} ms during the pushes and the drain, that the processed counter (summed \
         over types) did not move while events waited; the settled messages move it at every \
         acknowledgement, so \"processor still\" is the same for the processor's own count (type \
         `m.room.member`). RSS is VmRSS once drained, peak VmHWM then. \"Other on CPU 0 / 1\" is, \
         over the same time as CPU, each core's busy time (/proc/stat) less the server's CPU on \
         CPU 0 and the load generator's on CPU 1, in % of a core: other processes (PostgreSQL's \
         backends in the PostgreSQL runs), interrupts; more than a few % on CPU 0 means a \
         disturbed run. \"vs null\" is the daemon's txn/s over the null server's at the same \
         concurrency.\n",
        cpus = context.cpus,
        before = context.load_before,
        after = context.load_after,
        size = EventFactory::mean_size(MIX),
        every = MIX.member_every,
        templates = TEMPLATES,
        body_cost = context.body_cost.as_secs_f64() * 1e6,
        warm = WARM_UP.as_secs(),
        run = RUN.as_secs(),
        sample = SAMPLE_EVERY.as_millis(),
    );
    let mut rows = vec![row(&[
        "in flight",
        "server",
        "txns",
        "txn/s",
        "events/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "CPU s/10k events",
        "drain ms",
        "drain events/s",
        "still ms",
        "processor still ms",
        "RSS MiB",
        "peak RSS MiB",
        "other on CPU 0 / 1 %",
        "vs null",
        "errors",
        "targets (issue 24)",
    ])];
    let null = servers.iter().find(|server| server.server == Server::Null);
    for in_flight in IN_FLIGHT {
        let null_txn_s = null
            .and_then(|null| null.run(in_flight))
            .map(Run::txns_per_second);
        for server in servers {
            let Some(run) = server.run(in_flight) else {
                continue;
            };
            let inbox = |field: fn(&Inbox) -> String| run.inbox.as_ref().map_or("–".into(), field);
            let targets: Vec<String> = targets(server.server, run, null_txn_s, pgbench)
                .into_iter()
                .map(|(what, met)| verdict(&what, met))
                .collect();
            rows.push(row(&[
                &in_flight.to_string(),
                server.server.name(),
                &run.txns.to_string(),
                &format!("{:.0}", run.txns_per_second()),
                &format!("{:.0}", run.events_per_second()),
                &format!("{:.2}", ms(run.p50)),
                &format!("{:.2}", ms(run.p99)),
                &format!("{:.1}", ms(run.max)),
                &format!("{:.3}", run.cpu_per_10k_events()),
                &inbox(|inbox| format!("{:.0}", ms(inbox.drain))),
                // One transaction in flight leaves a dozen events at most: no rate to speak of.
                &match (&run.inbox, run.drain_rate()) {
                    (None, _) => "–".into(),
                    _ if run.in_flight == 1 => "–".into(),
                    (Some(_), None) => "none pending".into(),
                    (Some(inbox), Some(rate)) => {
                        format!("{rate:.0} ({:.0} pending)", inbox.pending_at_last_ack)
                    }
                },
                &inbox(|inbox| format!("{:.0}", ms(inbox.longest_stall))),
                &inbox(|inbox| format!("{:.0}", ms(inbox.processor_stall))),
                &format!("{:.1}", mib(run.rss_kib)),
                &format!("{:.1}", mib(run.peak_rss_kib)),
                &format!(
                    "{:.0} / {:.0}",
                    100.0 * run.other_share[0],
                    100.0 * run.other_share[1]
                ),
                &match (server.server, null_txn_s) {
                    (Server::Daemon(_), Some(null)) => {
                        format!("{:.0} %", 100.0 * run.txns_per_second() / null)
                    }
                    _ => String::new(),
                },
                &run.errors.to_string(),
                &targets.join(", "),
            ]));
        }
    }
    out.push_str(&table(&rows));

    out.push_str("\nWhere the threads were allowed to run, read after the runs:\n\n");
    for server in servers {
        let _ = writeln!(out, "- {}: {}", server.server.name(), server.placement);
    }
    if let Some(memory) = memory {
        let _ = writeln!(
            out,
            "- daemon, SQLite, memory scenario: {}",
            memory.placement
        );
    }
    let _ = writeln!(out, "- the load generator: {}", context.load_generator);

    out.push_str(
        "\nThe longest holds of SQLite's one writer since the daemon started, read after each run \
         (`openmeet_as_sqlite_writer_longest_turn_seconds`; the holder is the source location \
         that asked for the turn):\n\n",
    );
    for server in servers {
        for run in &server.runs {
            let Some(inbox) = &run.inbox else { continue };
            let turns: Vec<String> = (inbox.longest_turns.iter().take(3))
                .map(|(seconds, kind, holder)| {
                    format!("{:.1} ms {kind} `{holder}`", seconds * 1000.0)
                })
                .collect();
            if !turns.is_empty() {
                let _ = writeln!(
                    out,
                    "- {} after {} in flight: {}",
                    server.server.name(),
                    run.in_flight,
                    turns.join(", ")
                );
            }
        }
    }

    if let Some(pgbench) = pgbench {
        render_pgbench(&mut out, servers, pgbench);
    }
    if let Some(memory) = memory {
        render_memory(&mut out, memory);
    }
    out
}

fn render_pgbench(out: &mut String, servers: &[ServerRuns], pgbench: &Pgbench) {
    out.push_str("\n## PostgreSQL against pgbench\n\n");
    let tps = match pgbench {
        Ok(tps) => *tps,
        Err(why) => {
            let _ = writeln!(out, "pgbench did not run: {why}");
            return;
        }
    };
    let daemon = servers
        .iter()
        .find(|server| server.server == Server::Daemon(Backend::Postgres))
        .and_then(|server| server.run(1))
        .map(Run::txns_per_second);
    let _ = writeln!(
        out,
        "After the daemon's runs, in its database, pgbench for 10 s, one client (`pgbench -n -T 10 \
         -c 1 -M prepared -f pgbench-inbox.sql`), on the load generator's CPU; PostgreSQL itself \
         is not pinned. Its script is one statement a transaction, as the daemon's: the daemon's \
         statement (`store/inbox_rows.rs`, `RecordOnPostgres`) without its quarantine part — the \
         previous numbered txnId read, one `as_transactions` row and 100 `inbox_events` rows of the \
         same mix (memberships pending, messages settled) with random event ids — its rows made in \
         SQL from {every} stored events (two `md5(random())` a row for the event id, a join) rather \
         than bound as arrays: pgbench sends no event bodies where the daemon sends ~53 KB a \
         transaction, but PostgreSQL computes more. One 10 s sample each, PostgreSQL's backends \
         and pgbench sharing the machine with whatever else runs (\"other\" above).\n",
        every = MIX.member_every,
    );
    let ratio = daemon.map(|daemon| daemon / tps);
    let mut rows = vec![row(&[
        "pgbench tps",
        "daemon 100×1 txn/s",
        "daemon / pgbench",
        "target (issue 24)",
    ])];
    rows.push(row(&[
        &format!("{tps:.0}"),
        &daemon.map_or("–".into(), |daemon| format!("{daemon:.0}")),
        &ratio.map_or("–".into(), |ratio| format!("{:.0} %", 100.0 * ratio)),
        &verdict("≥ 85 %", ratio.map(|ratio| ratio >= 0.85)),
    ]));
    out.push_str(&table(&rows));
}

fn render_memory(out: &mut String, memory: &Memory) {
    let _ = writeln!(
        out,
        "\n## Memory (daemon, SQLite)\n\n\
         A fresh daemon (pinned as above) is pushed {events} events as 100-event transactions, 16 \
         in flight ({push:.1} s, {rate:.0} events/s, {errors} errors), and measured once its inbox \
         is empty ({processed:.1} s after the first push). Then it is stopped (SIGTERM), the last \
         {backlog} rows of `inbox_events` are made pending again in its file (`processed_at` and \
         `outcome` NULL), and it is started again: ready {ready:.0} ms after the restart (polled \
         every 5 ms). While it works that backlog off, 100×1 transactions are pushed for {run} s; \
         the backlog is gone when no row of it is pending any more (the file read every {sample} \
         ms), {backlog_gone:.1} s after the restart; the inbox was empty {drained:.1} s after it.\n",
        events = memory.events,
        push = memory.push_wall.as_secs_f64(),
        rate = memory.events as f64 / memory.push_wall.as_secs_f64(),
        errors = memory.push_errors,
        processed = memory.processed_after.as_secs_f64(),
        backlog = memory.backlog,
        ready = ms(memory.ready),
        run = RUN.as_secs(),
        sample = SAMPLE_EVERY.as_millis(),
        backlog_gone = memory.backlog_gone.as_secs_f64(),
        drained = memory.drained.as_secs_f64(),
    );
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    let rss_ok = mib(memory.rss_kib) <= 64.0;
    let p99_ok = ms(memory.p99) <= 10.0;
    let peak_ok = mib(memory.restarted_peak_rss_kib) <= 128.0;
    let mut rows = vec![row(&["measure", "value", "target (issue 24)"])];
    let mut add = |what: &str, value: String, target: String| {
        rows.push(row(&[what, &value, &target]));
    };
    add(
        &format!("RSS after {} events processed, MiB", memory.events),
        format!(
            "{:.1} (peak {:.1})",
            mib(memory.rss_kib),
            mib(memory.peak_rss_kib)
        ),
        format!("≤ 64 MiB {}", met(rss_ok)),
    );
    add(
        "restart → ready, ms",
        format!("{:.0}", ms(memory.ready)),
        String::new(),
    );
    add(
        "first acknowledgement after the restart, ms",
        format!("{:.1}", ms(memory.first_ack)),
        String::new(),
    );
    add(
        "100×1 during the drain: txns, p50 / p99 / max ms, errors",
        format!(
            "{}, {:.2} / {:.2} / {:.1}, {}",
            memory.txns,
            ms(memory.p50),
            ms(memory.p99),
            ms(memory.max),
            memory.errors
        ),
        format!("p99 ≤ 10 ms {}", met(p99_ok)),
    );
    add(
        "peak RSS (VmHWM) of the restarted daemon, MiB",
        format!(
            "{:.1} (RSS at the end {:.1})",
            mib(memory.restarted_peak_rss_kib),
            mib(memory.restarted_rss_kib)
        ),
        format!("≤ 128 MiB {}", met(peak_ok)),
    );
    add(
        &format!("restart → backlog of {} gone, s", memory.backlog),
        format!("{:.1}", memory.backlog_gone.as_secs_f64()),
        String::new(),
    );
    out.push_str(&table(&rows));
}
