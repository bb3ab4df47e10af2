//! Benchmark of the transaction push path: `PUT /_matrix/app/v1/transactions/{txnId}` on a
//! running daemon (release build), on SQLite and on PostgreSQL, side by side with a null server
//! measured in the same run.
//!
//! The null server is this benchmark's own binary started again with `--null-server`: one tokio
//! thread that reads each body and answers `{}` (nothing parsed, nothing stored) — the ceiling an
//! HTTP server on this machine reaches, so the daemon's numbers read as a ratio to it. For each
//! daemon, a fresh database, pointed at one real Synapse (so that `/health/ready` turns green):
//!
//! - start to ready (fresh database, then migrated) and idle RSS (VmRSS once ready, before load);
//! - for 100-event transactions one in flight (as Synapse sends them) and 16 in flight, and for
//!   1-event transactions: txn/s, events/s, client-side p50/p99 ack latency, the daemon's CPU
//!   seconds per 10k events (utime + stime from /proc, counted until the inbox processor has worked
//!   every event off) and the drain time (last acknowledgement to an empty inbox).
//!
//! Events are ~500 bytes, Synapse's client format: 4 messages to 1 member event over a few rooms.
//! The table goes to stdout and to `target/bench/transactions.md`.
//!
//! Run it with `make bench`, or:
//!
//! ```text
//! TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench transactions
//! ```
//!
//! `BENCH_BACKENDS=sqlite` measures one backend only. Without `TEST_POSTGRES_URL` PostgreSQL is an
//! embedded throwaway cluster. Under `cargo test` (no `--bench` argument) the binary does nothing.
//!
//! **Pinned mode** (`BENCH_PINNED=1`, or `make bench-pinned`): issue 24's measuring method, in
//! `transactions/pinned.rs`. The servers under measurement (a null server of its own and each
//! daemon) run on CPU 0, this process — the load generator — on CPU 1 (it needs 2 CPUs); 100-event
//! transactions of ~530-byte events, one in eight a membership, 1 and then 16 in flight, each
//! pushed for 10 s after a 6 s warm-up, the inbox's drain counted; the daemon's metrics sampled
//! every 100 ms for its longest stall; issue 24's targets next to the numbers. On PostgreSQL,
//! pgbench then runs the same insert in the same database for 10 s. On SQLite, unless
//! `BENCH_MEMORY=0`, a memory scenario: 2 M events into a fresh daemon, its RSS, then a restart
//! with 450,000 of them pending again, drained while 100×1 transactions are pushed for 10 s. The
//! table goes to `target/bench/transactions-pinned.md`:
//!
//! ```text
//! BENCH_PINNED=1 BENCH_BACKENDS=sqlite,postgres cargo bench --bench transactions
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly by design

#[path = "../tests/support/mod.rs"]
mod support;

mod common;
#[path = "transactions/pinned.rs"]
mod pinned;

use common::daemon::{Backend, SERVER_NAME, backends, fresh_copy, start_daemon, start_synapse};
use common::load::{Put, put_all};
use common::{cpu_seconds, mib, ms, percentile, proc_status_kib, row, table, write_report};

use std::fmt::Write as _;
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use support::daemon::{Daemon, DaemonConfig};
use support::events;
use support::matrix_client::http_client;

/// A measured load: (events per transaction, transactions in flight, transactions).
#[derive(Clone, Copy, PartialEq)]
struct Workload {
    events_per_txn: usize,
    in_flight: usize,
    txns: usize,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        events_per_txn: 100,
        in_flight: 1,
        txns: 4_000,
    },
    Workload {
        events_per_txn: 100,
        in_flight: 16,
        txns: 4_000,
    },
    Workload {
        events_per_txn: 1,
        in_flight: 1,
        txns: 10_000,
    },
];
/// A measured run is scaled down so that its pushes take about this long at most.
const MAX_RUN: Duration = Duration::from_secs(6);
const ROOMS: [&str; 5] = [
    "!KdJsQpLxRtvBnWmzYh:openmeet.test",
    "!aPqRsTuVwXyZbCdEfG:openmeet.test",
    "!hIjKlMnOpQrStUvWxY:openmeet.test",
    "!zAbCdEfGhIjKlMnOpQ:openmeet.test",
    "!rStUvWxYzAbCdEfGhI:openmeet.test",
];
const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

fn main() {
    if std::env::args().any(|arg| arg == "--null-server") {
        null_server::serve();
        return;
    }
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("transactions: a benchmark; run it with `cargo bench --bench transactions`");
        return;
    }
    if pinned::enabled() {
        pinned::main();
        return;
    }
    let (_synapse, base) = start_synapse();

    let runtime = common::runtime();
    let mut reports = vec![runtime.block_on(bench_null_server())];
    for backend in backends() {
        let config = fresh_copy(&base, backend.fresh_database("bench_transactions"));
        reports.push(runtime.block_on(bench_backend(backend, config)));
    }

    write_report("transactions.md", &render(&reports));
}

/// What answered the pushes.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    Null,
    Daemon(Backend),
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Self::Null => "null server",
            Self::Daemon(Backend::Sqlite) => "daemon, SQLite",
            Self::Daemon(Backend::Postgres) => "daemon, PostgreSQL",
        }
    }
}

/// Issue 11's targets for a run, as (what, met) pairs.
fn targets(server: Server, run: &RunReport) -> Vec<(String, bool)> {
    let Server::Daemon(backend) = server else {
        return Vec::new();
    };
    let workload = run.workload;
    let (txn_s, p50, p99) = (run.txns_per_second(), ms(run.p50), ms(run.p99));
    let cpu = run.cpu_per_10k_events();
    let mut targets = Vec::new();
    let mut check = |what: String, met: bool| targets.push((what, met));
    match (backend, workload.events_per_txn, workload.in_flight) {
        (Backend::Sqlite, 100, 1) => {
            check("≥ 1500 txn/s".into(), txn_s >= 1500.0);
            check("p50 ≤ 0.7".into(), p50 <= 0.7);
            check("p99 ≤ 3".into(), p99 <= 3.0);
            check("CPU ≤ 0.07".into(), cpu <= 0.07);
        }
        (Backend::Postgres, 100, 1) => {
            check("≥ 800 txn/s".into(), txn_s >= 800.0);
            check("p99 ≤ 10".into(), p99 <= 10.0);
        }
        (Backend::Sqlite, 100, 16) => {
            check(
                "≥ 150k events/s".into(),
                run.events_per_second() >= 150_000.0,
            );
        }
        (Backend::Sqlite, 1, 1) => {
            check("≥ 2500 txn/s".into(), txn_s >= 2500.0);
            check("p50 ≤ 0.4".into(), p50 <= 0.4);
        }
        _ => {}
    }
    targets
}

struct ServerReport {
    server: Server,
    /// Start to ready: fresh database (migrations included), then migrated. None for the null server.
    starts: Option<(Duration, Duration)>,
    idle_rss_kib: u64,
    /// The anonymous part of the idle RSS (the rest is the binary and shared libraries).
    idle_anon_kib: u64,
    peak_rss_kib: u64,
    runs: Vec<RunReport>,
    txn_id_resets: f64,
}

struct RunReport {
    workload: Workload,
    txns: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    /// Last acknowledgement to an empty inbox.
    drain: Duration,
    cpu_seconds: f64,
    errors: usize,
}

impl RunReport {
    fn txns_per_second(&self) -> f64 {
        self.txns as f64 / self.wall.as_secs_f64()
    }

    fn events_per_second(&self) -> f64 {
        self.txns_per_second() * self.workload.events_per_txn as f64
    }

    fn cpu_per_10k_events(&self) -> f64 {
        self.cpu_seconds * 10_000.0 / (self.txns * self.workload.events_per_txn) as f64
    }
}

/// Starts this binary as `--null-server`; returns the process and the port it listens on. It
/// exits when its stdin (the `Child`'s) is closed.
fn start_null_server() -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().expect("the bench's own path"))
        .arg("--null-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the null server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("its stdout"))
        .read_line(&mut line)
        .expect("the null server's port");
    (child, line.trim().parse().expect("a port number"))
}

async fn bench_null_server() -> ServerReport {
    eprintln!("== null server");
    let (mut child, port) = start_null_server();
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_rss_kib = proc_status_kib(pid, "VmRSS");
    let idle_anon_kib = proc_status_kib(pid, "RssAnon");
    let target = Target {
        base: format!("http://127.0.0.1:{port}"),
        token: "null".into(),
        pid,
        daemon: None,
    };
    let runs = run_workloads(Server::Null, &target).await;
    let peak_rss_kib = proc_status_kib(pid, "VmHWM");
    drop(child.stdin.take()); // the server exits when its stdin closes
    let _ = child.wait();
    ServerReport {
        server: Server::Null,
        starts: None,
        idle_rss_kib,
        idle_anon_kib,
        peak_rss_kib,
        runs,
        txn_id_resets: 0.0,
    }
}

async fn bench_backend(backend: Backend, config: DaemonConfig) -> ServerReport {
    let server = Server::Daemon(backend);
    eprintln!("== {}", server.name());
    let fresh_start = time_start(&config).await;
    let migrated_start = time_start(&config).await;
    let daemon = start_daemon(config).await;
    let pid = daemon.pid().expect("the daemon runs");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = proc_status_kib(pid, "VmRSS");
    let idle_anon_kib = proc_status_kib(pid, "RssAnon");
    let target = Target {
        base: format!("http://127.0.0.1:{}", daemon.config.appservice_port),
        token: daemon.config.tokens.hs_token.clone(),
        pid,
        daemon: Some(&daemon),
    };
    let runs = run_workloads(server, &target).await;
    ServerReport {
        server,
        starts: Some((fresh_start, migrated_start)),
        idle_rss_kib,
        idle_anon_kib,
        peak_rss_kib: proc_status_kib(pid, "VmHWM"),
        txn_id_resets: daemon
            .metric("openmeet_as_transaction_id_resets_total", "")
            .await,
        runs,
    }
}

async fn run_workloads(server: Server, target: &Target<'_>) -> Vec<RunReport> {
    let mut load = Load::new(target);
    let mut runs = Vec::new();
    for workload in WORKLOADS {
        let run = load.run(workload).await;
        eprintln!(
            "{:<18} {:>3} events x {:>2}: {} txns, {:.0} txn/s, p50 {:.2} ms, p99 {:.2} ms, CPU {:.3} s/10k events, drain {:.0} ms",
            server.name(),
            workload.events_per_txn,
            workload.in_flight,
            run.txns,
            run.txns_per_second(),
            ms(run.p50),
            ms(run.p99),
            run.cpu_per_10k_events(),
            ms(run.drain),
        );
        runs.push(run);
    }
    runs
}

/// Spawns `serve` on `config`, polls `/health/ready` every millisecond until it answers 200, then
/// stops the process (SIGTERM).
async fn time_start(config: &DaemonConfig) -> Duration {
    let client = http_client();
    let url = format!("http://127.0.0.1:{}/health/ready", config.metrics_port);
    let started = Instant::now();
    let mut child = config.spawn_serve(&config.dir.join("startup.log"));
    let ready = loop {
        if let Ok(response) = client.get(&url).send().await
            && response.status() == StatusCode::OK
        {
            break started.elapsed();
        }
        assert!(
            child.try_wait().expect("poll the daemon").is_none(),
            "the daemon exited at start; see {}",
            config.dir.join("startup.log").display()
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    terminate(&mut child);
    ready
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().expect("wait for the daemon");
    assert!(
        status.success(),
        "the daemon did not stop cleanly: {status}"
    );
}

/// Where the pushes go: the null server, or a daemon (whose inbox is then waited for).
struct Target<'a> {
    base: String,
    token: String,
    pid: u32,
    daemon: Option<&'a Daemon>,
}

/// Pushes transactions through one keep-alive client, as Synapse would.
struct Load<'a> {
    target: &'a Target<'a>,
    client: reqwest::Client,
    events: EventFactory,
    next_txn: u64,
}

impl<'a> Load<'a> {
    fn new(target: &'a Target<'a>) -> Self {
        Self {
            target,
            client: http_client(),
            events: EventFactory::default(),
            next_txn: 1,
        }
    }

    /// A warm-up, then the workload's transactions (fewer when they would take longer than
    /// [`MAX_RUN`]); CPU is counted until the inbox is empty again.
    async fn run(&mut self, workload: Workload) -> RunReport {
        let Workload {
            events_per_txn,
            in_flight,
            txns,
        } = workload;
        let warmup = (txns / 20).max(4 * in_flight);
        let bodies = self.bodies(warmup, events_per_txn);
        let started = Instant::now();
        self.push_all(bodies, in_flight).await;
        let per_txn = started.elapsed().as_secs_f64() / warmup as f64;
        let txns = txns.min((MAX_RUN.as_secs_f64() / per_txn) as usize).max(50);
        let bodies = self.bodies(txns, events_per_txn);
        self.wait_inbox_processed().await;

        let pid = self.target.pid;
        let cpu_before = cpu_seconds(pid);
        let started = Instant::now();
        let (mut latencies, errors) = self.push_all(bodies, in_flight).await;
        let wall = started.elapsed();
        self.wait_inbox_processed().await;
        let drain = started.elapsed() - wall;
        let cpu_seconds = cpu_seconds(pid) - cpu_before;

        latencies.sort();
        RunReport {
            workload,
            txns,
            wall,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            drain,
            cpu_seconds,
            errors,
        }
    }

    /// `count` transaction bodies with their txnIds (increasing integers, like Synapse's).
    fn bodies(&mut self, count: usize, events_per_txn: usize) -> Vec<(String, Bytes)> {
        (0..count)
            .map(|_| {
                let events: Vec<Value> = (0..events_per_txn).map(|_| self.events.next()).collect();
                self.next_txn += 1;
                let body = events::transaction(&events);
                (self.next_txn.to_string(), Bytes::from(body))
            })
            .collect()
    }

    /// Sends every body, `in_flight` at a time; returns each request's latency and the number
    /// of answers other than 200.
    async fn push_all(
        &self,
        bodies: Vec<(String, Bytes)>,
        in_flight: usize,
    ) -> (Vec<Duration>, usize) {
        let queue = Mutex::new(bodies.into_iter());
        let base = format!("{}/_matrix/app/v1/transactions/", self.target.base);
        let token = self.target.token.clone();
        put_all(&self.client, in_flight, StatusCode::OK, move || {
            let (txn_id, body) = queue.lock().expect("queue lock").next()?;
            let (url, token) = (format!("{base}{txn_id}"), token.clone());
            Some(Put { url, token, body })
        })
        .await
    }

    /// Waits until the daemon's inbox processor has worked off every stored event (every 5 ms,
    /// one scrape of the metrics each time).
    async fn wait_inbox_processed(&self) {
        if let Some(daemon) = self.target.daemon {
            common::metrics::wait_inbox_processed(&self.client, daemon).await;
        }
    }
}

/// The ceiling: reads each body, answers `{}`, on one thread (run as `--null-server`; prints its
/// port, exits when its stdin closes).
mod null_server {
    use axum::Router;
    use axum::body::Bytes;
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::put;

    async fn transaction(
        body: Bytes,
    ) -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
        std::hint::black_box(body);
        ([(CONTENT_TYPE, "application/json")], "{}")
    }

    pub fn serve() {
        std::thread::spawn(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            std::process::exit(0);
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a port");
            println!("{}", listener.local_addr().expect("its address").port());
            let app =
                Router::new().route("/_matrix/app/v1/transactions/{txn_id}", put(transaction));
            axum::serve(listener, app).await.expect("the null server");
        });
    }
}

/// Which events an [`EventFactory`] makes.
#[derive(Clone, Copy)]
struct EventMix {
    /// One event in this many is an `m.room.member`, the rest are messages.
    member_every: u64,
    /// A message's body is this many characters long, or up to 79 more.
    shortest_body: usize,
}

/// The unpinned mode's events: ~470 bytes, 4 messages to 1 member event.
const UNPINNED_MIX: EventMix = EventMix {
    member_every: 5,
    shortest_body: 140,
};

/// Events as Synapse pushes them: unique ids, a few rooms and senders, [`UNPINNED_MIX`] unless
/// made [`EventFactory::with_mix`].
struct EventFactory {
    count: u64,
    mix: EventMix,
}

impl Default for EventFactory {
    fn default() -> Self {
        Self::with_mix(UNPINNED_MIX)
    }
}

impl EventFactory {
    fn with_mix(mix: EventMix) -> Self {
        Self { count: 0, mix }
    }

    /// The mean size of this mix's events in bytes (its first 1000, serialised).
    fn mean_size(mix: EventMix) -> usize {
        let mut factory = Self::with_mix(mix);
        (0..1000)
            .map(|_| factory.next().to_string().len())
            .sum::<usize>()
            / 1000
    }

    fn next(&mut self) -> Value {
        let n = self.count;
        self.count += 1;
        let EventMix {
            member_every,
            shortest_body,
        } = self.mix;
        let event_id = event_id(n);
        let room = ROOMS[n as usize % ROOMS.len()];
        let user = |i: u64| format!("@{}:{SERVER_NAME}", USERS[i as usize % USERS.len()]);
        let sender = user(n / 3);
        if n % member_every == member_every - 1 {
            let mut event = events::member(&event_id, room, &sender, &sender, "join");
            event["content"]["displayname"] = json!(format!("{} (OpenMeet)", USERS[0]));
            event["content"]["avatar_url"] = json!("mxc://openmeet.test/xYzAbCdEfGhIjKlMnOpQrStU");
            event["unsigned"]["replaces_state"] = json!(self::event_id(n + 1_000_000_000));
            event["unsigned"]["prev_content"] =
                json!({"membership": "invite", "displayname": USERS[0]});
            event["unsigned"]["prev_sender"] = json!(user(n + 1));
            event
        } else {
            let text = "Shall we move the meetup to the community hall on Thursday? The cafe is \
                        booked and the hall has a projector, chairs for forty people and a kitchen. \
                        Bring snacks if you can; I will send the agenda and the slides before then. \
                        Parking is free after six, and the number 12 bus stops right outside the door.";
            let body = &text[..shortest_body + (n as usize * 37) % 80];
            let mut event = events::message(&event_id, room, &sender, body);
            event["content"]["m.mentions"] = json!({});
            event["unsigned"]["age"] = json!(40 + n % 900);
            event
        }
    }
}

/// `$` and 43 hexadecimal characters, as unpredictable as Synapse's (which index alike).
fn event_id(n: u64) -> String {
    let digest = Sha256::digest(n.to_le_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("${}", &hex[..43])
}

fn render(reports: &[ServerReport]) -> String {
    let mut out = String::from("# Transaction push benchmark\n\n");
    let _ = writeln!(
        out,
        "`PUT /_matrix/app/v1/transactions/{{txnId}}`, release build, log level info, mean event \
         size {} bytes, {} cores shared by the load generator, the servers, PostgreSQL and an idle \
         Synapse. Latency is client-side per request. CPU is the server's utime + stime per 10k \
         events, counted until its inbox is empty again (processing included); drain is the last \
         acknowledgement to an empty inbox. \"vs null\" is the daemon's txn/s over the null \
         server's (reads the body, answers `{{}}`) in the same run.\n",
        EventFactory::mean_size(UNPINNED_MIX),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    let null_runs = reports
        .iter()
        .find(|report| report.server == Server::Null)
        .map(|report| &report.runs);
    let mut load = vec![row(&[
        "events/txn",
        "in flight",
        "server",
        "txns",
        "txn/s",
        "events/s",
        "p50 ms",
        "p99 ms",
        "CPU s/10k events",
        "drain ms",
        "vs null",
        "errors",
        "targets (issue 11)",
    ])];
    for workload in WORKLOADS {
        let null = null_runs
            .and_then(|runs| runs.iter().find(|run| run.workload == workload))
            .map(RunReport::txns_per_second);
        for report in reports {
            let Some(run) = report.runs.iter().find(|run| run.workload == workload) else {
                continue;
            };
            let targets: Vec<String> = targets(report.server, run)
                .into_iter()
                .map(|(what, met)| format!("{what} {}", if met { "met" } else { "MISSED" }))
                .collect();
            load.push(row(&[
                &workload.events_per_txn.to_string(),
                &workload.in_flight.to_string(),
                report.server.name(),
                &run.txns.to_string(),
                &format!("{:.0}", run.txns_per_second()),
                &format!("{:.0}", run.events_per_second()),
                &format!("{:.2}", ms(run.p50)),
                &format!("{:.2}", ms(run.p99)),
                &format!("{:.3}", run.cpu_per_10k_events()),
                &format!("{:.0}", ms(run.drain)),
                &null.map_or(String::new(), |null| {
                    format!("{:.0} %", 100.0 * run.txns_per_second() / null)
                }),
                &run.errors.to_string(),
                &targets.join(", "),
            ]));
        }
    }
    out.push_str(&table(&load));

    let mut process = vec![row(&[
        "server",
        "start→ready ms (fresh DB, migrations)",
        "start→ready ms (migrated)",
        "idle RSS MiB (anonymous)",
        "peak RSS MiB",
        "target",
    ])];
    for report in reports {
        let start = |pick: fn(&(Duration, Duration)) -> Duration| {
            report
                .starts
                .as_ref()
                .map_or(String::new(), |starts| format!("{:.0}", ms(pick(starts))))
        };
        let rss_target = match report.server {
            Server::Null => String::new(),
            Server::Daemon(_) => format!(
                "idle RSS ≤ 20 MiB {}",
                if mib(report.idle_rss_kib) <= 20.0 {
                    "met"
                } else {
                    "MISSED"
                }
            ),
        };
        process.push(row(&[
            report.server.name(),
            &start(|starts| starts.0),
            &start(|starts| starts.1),
            &format!(
                "{:.1} ({:.1})",
                mib(report.idle_rss_kib),
                mib(report.idle_anon_kib)
            ),
            &format!("{:.1}", mib(report.peak_rss_kib)),
            &rss_target,
        ]));
    }
    out.push('\n');
    out.push_str(&table(&process));
    for report in reports {
        if report.txn_id_resets > 0.0 {
            let _ = writeln!(
                out,
                "\n{}: {} transactions arrived below the highest txnId seen (concurrent pushes \
                 commit out of order) and were logged as a counter reset.",
                report.server.name(),
                report.txn_id_resets
            );
        }
    }
    out
}
