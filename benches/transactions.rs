//! Benchmark of the transaction push path: `PUT /_matrix/app/v1/transactions/{txnId}` on a
//! running daemon (release build), on SQLite and on PostgreSQL.
//!
//! For each backend it starts a fresh daemon on a fresh database, pointed at one real Synapse (so
//! that `/health/ready` can turn green), and measures:
//!
//! - start to ready: spawn → `/health/ready` answers 200, once on the fresh database (migrations
//!   included) and once more on the migrated one; start to live (first answer) alongside;
//! - idle RSS (VmRSS once ready, before load) and peak RSS (VmHWM after all the load);
//! - for transactions of 1, 10 and 100 realistic events (~500 bytes, messages and member events
//!   across a few rooms, Synapse's client format), pushed serially as Synapse does and 16 at a
//!   time: txn/s, events/s, client-side p50/p99 ack latency, the daemon's own mean ack time (its
//!   `transaction_ack_seconds` histogram) and the daemon's CPU seconds per 10k events (utime +
//!   stime from /proc, including the inbox processor working the events off).
//!
//! The table goes to stdout and to `target/bench/transactions.md`.
//!
//! Run it with `make bench`, or:
//!
//! ```text
//! TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench transactions
//! ```
//!
//! Without `TEST_POSTGRES_URL` PostgreSQL is an embedded throwaway cluster. Under `cargo test` (no
//! `--bench` argument) the binary does nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly by design

#[path = "../tests/support/mod.rs"]
mod support;

mod common;
use common::{cpu_seconds, mib, ms, percentile, proc_status_kib, row, table};

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use support::daemon::{BIN, Daemon, DaemonConfig};
use support::events;
use support::matrix_client::http_client;
use support::synapse::Synapse;

const SERVER_NAME: &str = "openmeet.test";
/// (events per transaction, transactions per measured run).
const SIZES: [(usize, usize); 3] = [(1, 2_000), (10, 1_000), (100, 300)];
const CONCURRENCY: [usize; 2] = [1, 16];
/// A measured run is scaled down so that it takes about this long at most.
const MAX_RUN: Duration = Duration::from_secs(30);
const ROOMS: [&str; 5] = [
    "!KdJsQpLxRtvBnWmzYh:openmeet.test",
    "!aPqRsTuVwXyZbCdEfG:openmeet.test",
    "!hIjKlMnOpQrStUvWxY:openmeet.test",
    "!zAbCdEfGhIjKlMnOpQ:openmeet.test",
    "!rStUvWxYzAbCdEfGhI:openmeet.test",
];
const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("transactions: a benchmark; run it with `cargo bench --bench transactions`");
        return;
    }
    // Synapse loads the registration of this config; every daemon below is a copy of it.
    let mut base = DaemonConfig::new("bench", None);
    base.server_name = SERVER_NAME.into();
    base.log_level = "info".into();
    let synapse = Synapse::start(SERVER_NAME, &[base.registration()]);
    base.appservice_port_registered = true;
    base.homeserver_url = synapse.url.clone();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut reports = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let fresh = DaemonConfig::new("bench", None);
        let database_url = match backend {
            Backend::Sqlite => fresh.database_url,
            Backend::Postgres => support::postgres::fresh_database("bench_transactions"),
        };
        let config = DaemonConfig {
            dir: fresh.dir,
            database_url,
            ..base.clone()
        };
        reports.push(runtime.block_on(bench_backend(backend, config)));
    }

    let markdown = render(&reports);
    println!("\n{markdown}");
    let dir = support::python::repo_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    std::fs::write(dir.join("transactions.md"), &markdown).expect("write the report");
    println!("written to {}", dir.join("transactions.md").display());
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

    /// Target (p50, p99) for serial 100-event transactions.
    fn target_ms(self) -> (f64, f64) {
        match self {
            Self::Sqlite => (1.0, 5.0),
            Self::Postgres => (3.0, 10.0),
        }
    }
}

struct BackendReport {
    backend: Backend,
    fresh_start: Startup,
    migrated_start: Startup,
    idle_rss_kib: u64,
    /// The anonymous part of the idle RSS (the rest is the binary and shared libraries).
    idle_anon_kib: u64,
    peak_rss_kib: u64,
    runs: Vec<RunReport>,
    txn_id_resets: f64,
}

struct RunReport {
    events_per_txn: usize,
    concurrency: usize,
    txns: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    server_mean: Duration,
    cpu_seconds: f64,
    errors: usize,
}

#[derive(Clone, Copy)]
struct Startup {
    live: Duration,
    ready: Duration,
}

async fn bench_backend(backend: Backend, config: DaemonConfig) -> BackendReport {
    eprintln!("== {}", backend.name());
    let fresh_start = time_start(&config).await;
    let migrated_start = time_start(&config).await;
    let daemon = Daemon::start(config).await;
    let pid = daemon.pid().expect("the daemon runs");
    wait_ready(&daemon).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = proc_status_kib(pid, "VmRSS");
    let idle_anon_kib = proc_status_kib(pid, "RssAnon");

    let mut load = Load::new(&daemon);
    let mut runs = Vec::new();
    for (events_per_txn, txns) in SIZES {
        for concurrency in CONCURRENCY {
            let run = load.run(events_per_txn, txns, concurrency).await;
            eprintln!(
                "{} {events_per_txn:>3} events x {concurrency:>2}: {} txns, p50 {:.2} ms, p99 {:.2} ms",
                backend.name(),
                run.txns,
                ms(run.p50),
                ms(run.p99)
            );
            runs.push(run);
        }
    }
    BackendReport {
        backend,
        fresh_start,
        migrated_start,
        idle_rss_kib,
        idle_anon_kib,
        peak_rss_kib: proc_status_kib(pid, "VmHWM"),
        txn_id_resets: daemon
            .metric("openmeet_as_transaction_id_resets_total", "")
            .await,
        runs,
    }
}

/// Spawns `serve` on `config`, polls `/health/ready` every millisecond until it answers 200, then
/// stops the process (SIGTERM).
async fn time_start(config: &DaemonConfig) -> Startup {
    let client = http_client();
    let url = format!("http://127.0.0.1:{}/health/ready", config.metrics_port);
    let config_path = config.write();
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(config.dir.join("startup.log"))
        .expect("open the startup log");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("-c")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log)
        .spawn()
        .expect("spawn openmeet-appservice serve");
    let mut live = None;
    let ready = loop {
        if let Ok(response) = client.get(&url).send().await {
            live.get_or_insert(started.elapsed());
            if response.status() == StatusCode::OK {
                break started.elapsed();
            }
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
    Startup {
        live: live.unwrap_or(ready),
        ready,
    }
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

async fn wait_ready(daemon: &Daemon) {
    let url = format!(
        "http://127.0.0.1:{}/health/ready",
        daemon.config.metrics_port
    );
    let client = http_client();
    support::eventually(
        "the daemon to be ready",
        Duration::from_secs(30),
        || async {
            let response = client.get(&url).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
}

/// Pushes transactions to one daemon through one keep-alive client, as Synapse would.
struct Load<'a> {
    daemon: &'a Daemon,
    client: reqwest::Client,
    events: EventFactory,
    next_txn: u64,
}

impl<'a> Load<'a> {
    fn new(daemon: &'a Daemon) -> Self {
        Self {
            daemon,
            client: http_client(),
            events: EventFactory::default(),
            next_txn: 1,
        }
    }

    /// A warm-up, then `txns` transactions of `events_per_txn` events, `concurrency` in flight
    /// (fewer transactions when they would take longer than [`MAX_RUN`]).
    async fn run(&mut self, events_per_txn: usize, txns: usize, concurrency: usize) -> RunReport {
        let warmup = (txns / 10).max(2 * concurrency);
        let bodies = self.bodies(warmup, events_per_txn);
        let started = Instant::now();
        self.push_all(bodies, concurrency).await;
        let per_txn = started.elapsed().as_secs_f64() / warmup as f64;
        let txns = txns.min((MAX_RUN.as_secs_f64() / per_txn) as usize).max(50);
        let bodies = self.bodies(txns, events_per_txn);
        self.wait_inbox_processed().await;

        let pid = self.daemon.pid().expect("the daemon runs");
        let (ack_sum, ack_count) = self.server_ack().await;
        let cpu_before = cpu_seconds(pid);
        let started = Instant::now();
        let (mut latencies, errors) = self.push_all(bodies, concurrency).await;
        let wall = started.elapsed();
        self.wait_inbox_processed().await;
        let cpu_seconds = cpu_seconds(pid) - cpu_before;
        let (ack_sum_after, ack_count_after) = self.server_ack().await;

        latencies.sort();
        RunReport {
            events_per_txn,
            concurrency,
            txns,
            wall,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            server_mean: Duration::from_secs_f64(
                (ack_sum_after - ack_sum) / (ack_count_after - ack_count).max(1.0),
            ),
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

    /// Sends every body, `concurrency` at a time; returns each request's latency and the number
    /// of answers other than 200.
    async fn push_all(
        &self,
        bodies: Vec<(String, Bytes)>,
        concurrency: usize,
    ) -> (Vec<Duration>, usize) {
        let queue = Arc::new(Mutex::new(bodies.into_iter()));
        let base = format!(
            "http://127.0.0.1:{}/_matrix/app/v1/transactions/",
            self.daemon.config.appservice_port
        );
        let token = self.daemon.config.tokens.hs_token.clone();
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (queue, client, base, token) = (
                queue.clone(),
                self.client.clone(),
                base.clone(),
                token.clone(),
            );
            workers.spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                loop {
                    let Some((txn_id, body)) = queue.lock().expect("queue lock").next() else {
                        break;
                    };
                    let started = Instant::now();
                    let response = client
                        .put(format!("{base}{txn_id}"))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match response {
                        Ok(response) => {
                            let status = response.status();
                            let _ = response.bytes().await;
                            status == StatusCode::OK
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
        while let Some(result) = workers.join_next().await {
            let (latencies, worker_errors) = result.expect("a load worker panicked");
            all.extend(latencies);
            errors += worker_errors;
        }
        (all, errors)
    }

    /// Waits until the inbox processor has worked off every stored event.
    async fn wait_inbox_processed(&self) {
        let daemon = self.daemon;
        support::eventually("the inbox to drain", Duration::from_secs(120), || async {
            let received = daemon.metric("openmeet_as_events_received_total", "").await;
            let processed = daemon
                .metric("openmeet_as_events_processed_total", "")
                .await;
            (processed >= received).then_some(())
        })
        .await;
    }

    /// (sum in seconds, count) of the daemon's own ack-time histogram.
    async fn server_ack(&self) -> (f64, f64) {
        let daemon = self.daemon;
        (
            daemon
                .metric("openmeet_as_transaction_ack_seconds_sum", "")
                .await,
            daemon
                .metric("openmeet_as_transaction_ack_seconds_count", "")
                .await,
        )
    }
}

/// Events as Synapse pushes them: ~500 bytes, 4 messages to 1 member event, unique ids.
#[derive(Default)]
struct EventFactory {
    count: u64,
}

impl EventFactory {
    fn next(&mut self) -> Value {
        let n = self.count;
        self.count += 1;
        let event_id = event_id(n);
        let room = ROOMS[n as usize % ROOMS.len()];
        let user = |i: u64| format!("@{}:{SERVER_NAME}", USERS[i as usize % USERS.len()]);
        let sender = user(n / 3);
        if n % 5 == 4 {
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
                        Bring snacks if you can; I will send the agenda and the slides before then.";
            let body = &text[..140 + (n as usize * 37) % 80];
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

fn render(reports: &[BackendReport]) -> String {
    let mut out = String::from("# Transaction push benchmark\n\n");
    let sample = (0..1000).map(|n| EventFactory { count: n }.next().to_string().len());
    let _ = writeln!(
        out,
        "`PUT /_matrix/app/v1/transactions/{{txnId}}` on the release build, log level info, \
         mean event size {} bytes. Latency is client-side per request; server mean is the daemon's \
         own `transaction_ack_seconds`; CPU is the daemon's utime+stime per 10k events, inbox \
         processing included.\n",
        sample.sum::<usize>() / 1000
    );
    let mut load = vec![row(&[
        "backend",
        "events/txn",
        "in flight",
        "txns",
        "txn/s",
        "events/s",
        "p50 ms",
        "p99 ms",
        "server mean ms",
        "CPU s/10k events",
        "errors",
        "target p50/p99",
    ])];
    for report in reports {
        for run in &report.runs {
            let target = if run.events_per_txn == 100 && run.concurrency == 1 {
                let (p50, p99) = report.backend.target_ms();
                let met = ms(run.p50) <= p50 && ms(run.p99) <= p99;
                format!(
                    "≤ {p50} / ≤ {p99} ms: {}",
                    if met { "met" } else { "MISSED" }
                )
            } else {
                String::new()
            };
            let seconds = run.wall.as_secs_f64();
            let events = (run.txns * run.events_per_txn) as f64;
            load.push(row(&[
                report.backend.name(),
                &run.events_per_txn.to_string(),
                &run.concurrency.to_string(),
                &run.txns.to_string(),
                &format!("{:.0}", run.txns as f64 / seconds),
                &format!("{:.0}", events / seconds),
                &format!("{:.2}", ms(run.p50)),
                &format!("{:.2}", ms(run.p99)),
                &format!("{:.2}", ms(run.server_mean)),
                &format!("{:.2}", run.cpu_seconds * 10_000.0 / events),
                &run.errors.to_string(),
                &target,
            ]));
        }
    }
    out.push_str(&table(&load));

    let mut process = vec![row(&[
        "backend",
        "start→live ms (fresh DB)",
        "start→ready ms (fresh DB, with migrations)",
        "start→live ms (migrated)",
        "start→ready ms (migrated)",
        "idle RSS MiB (anonymous)",
        "peak RSS MiB",
    ])];
    for report in reports {
        process.push(row(&[
            report.backend.name(),
            &format!("{:.0}", ms(report.fresh_start.live)),
            &format!("{:.0}", ms(report.fresh_start.ready)),
            &format!("{:.0}", ms(report.migrated_start.live)),
            &format!("{:.0}", ms(report.migrated_start.ready)),
            &format!(
                "{:.1} ({:.1})",
                mib(report.idle_rss_kib),
                mib(report.idle_anon_kib)
            ),
            &format!("{:.1}", mib(report.peak_rss_kib)),
        ]));
    }
    out.push('\n');
    out.push_str(&table(&process));
    let _ = writeln!(
        out,
        "\nTargets: serial 100-event transactions p50 ≤ 1 ms and p99 ≤ 5 ms on SQLite, ≤ 3 ms and \
         ≤ 10 ms on PostgreSQL; idle RSS ≤ 15 MiB; start to ready ≤ 100 ms plus migrations \
         (ready includes the preflight round trips to Synapse: whoami and the appservice ping)."
    );
    for report in reports {
        if report.txn_id_resets > 0.0 {
            let _ = writeln!(
                out,
                "\n{}: {} transactions arrived below the highest txnId seen (concurrent pushes \
                 commit out of order) and were logged as a counter reset.",
                report.backend.name(),
                report.txn_id_resets
            );
        }
    }
    out
}
