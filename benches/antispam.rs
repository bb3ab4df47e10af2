//! Benchmark of the antispam callbacks (DESIGN §7.3, rules before send: "the daemon answers
//! within 50 ms p99"), with synapse-http-antispam's own client as the load.
//!
//! - the daemon: on SQLite and on PostgreSQL (`BENCH_BACKENDS`), with [`ROOMS`] declared event
//!   rooms of [`MEMBERS`] members each (on the fake homeserver: the rooms only need to exist in the
//!   daemon's database), [`BANNED`] users banned tenant-wide, and the tenant's rules (a dozen
//!   blocked words and domains, a rate limit no member reaches);
//! - the load: `benches/antispam_load.py` run by the test venv's python, which loads
//!   `synapse_http_antispam.HTTPAntispam` with Synapse's real `SimpleHttpClient` and sends
//!   [`REQUESTS`] callbacks, [`CONCURRENCY`] in flight: 80 % `check_event_for_spam`, 10 %
//!   `user_may_join_room`, 10 % `user_may_invite`, some of each refused;
//! - measured: each callback as the module sees it (request, the daemon's decision, answer),
//!   p50/p99/max in ms, and the daemon's own `openmeet_as_antispam_seconds` mean.
//!
//! Run it with `make bench BENCHES=antispam` (or `cargo bench --bench antispam`);
//! `OPENMEET_BENCH_REQUESTS=N` sends N callbacks per backend. The table goes to stdout and
//! `target/bench/antispam.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly by design

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use common::daemon::{Backend, backends};
use common::{row, table, write_report};
use support::daemon::{Daemon, DaemonConfig, Tokens};
use support::fake_homeserver::FakeHomeserver;

const SERVER: &str = "bench.openmeet.test";
const ROOMS: usize = 20;
const MEMBERS: usize = 20;
const BANNED: usize = 50;
const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;
const CALLBACKS: [&str; 3] = [
    "check_event_for_spam",
    "user_may_join_room",
    "user_may_invite",
];

/// The tenant's rules: lists of a realistic length, a rate limit no member reaches.
const RULES: &str = "{blocked_words: [casino, viagra, lottery, crypto giveaway, free money, \
    click here, winner, jackpot], blocked_link_domains: [spam.example, scam.example, \
    phish.example, bad.example], rate_limit: {messages: 10000, per_seconds: 1}}";

fn main() {
    let requests = std::env::var("OPENMEET_BENCH_REQUESTS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(REQUESTS);
    let mut rows = vec![row(&[
        "database",
        "callback",
        "count",
        "allowed",
        "refused",
        "failed",
        "p50 ms",
        "p99 ms",
        "max ms",
        "daemon mean ms",
        "daemon p99 ≤ ms",
    ])];
    let mut throughput = Vec::new();
    for backend in backends() {
        let database = backend.fresh_database("bench_antispam");
        let (report, daemon_means) = common::runtime().block_on(run(backend, database, requests));
        for name in CALLBACKS.iter().chain(["all"].iter()) {
            let stats = if *name == "all" {
                &report["all"]
            } else {
                &report["callbacks"][name]
            };
            let count = |key: &str| stats[key].as_u64().map_or("".into(), |n| n.to_string());
            let ms = |key: &str| format!("{:.2}", stats[key].as_f64().unwrap_or(0.0));
            let daemon = daemon_means.iter().find(|(callback, _)| callback == name);
            let mean = daemon.map_or(String::new(), |(_, (mean, _))| format!("{mean:.2}"));
            let p99 = daemon.map_or(String::new(), |(_, (_, p99))| format!("{p99}"));
            rows.push(vec![
                backend.name().to_owned(),
                (*name).to_owned(),
                count("count"),
                count("allowed"),
                count("refused"),
                count("failed"),
                ms("p50_ms"),
                ms("p99_ms"),
                ms("max_ms"),
                mean,
                p99,
            ]);
        }
        let seconds = report["seconds"].as_f64().unwrap_or(1.0);
        throughput.push(format!(
            "{}: {requests} callbacks in {seconds:.1} s ({:.0}/s)",
            backend.name(),
            requests as f64 / seconds
        ));
    }
    let markdown = format!(
        "# Antispam callbacks (synapse-http-antispam's client, {CONCURRENCY} in flight)\n\n{}\n{}\n",
        table(&rows),
        throughput.join("; ")
    );
    write_report("antispam.md", &markdown);
}

/// One backend: the daemon set up, the load run; the load's report and, per callback, the
/// daemon's own mean and p99 bound (ms).
async fn run(
    backend: Backend,
    database: Option<String>,
    requests: usize,
) -> (Value, Vec<(String, (f64, f64))>) {
    let mut config = DaemonConfig::new("bench-antispam", database);
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.log_level = "warn".into();
    let token = format!("antispam{}", Tokens::fresh().as_token);
    config.antispam_token = Some(token.clone());
    config.rules = vec![("tenantA".into(), RULES.into())];
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(60)).await;
    let tenant_token = daemon.config.tenant_token("tenantA");

    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        let members: Vec<String> = (0..MEMBERS)
            .map(|m| format!("@r{r}m{m}:{SERVER}"))
            .collect();
        let declared: Vec<Value> = members
            .iter()
            .enumerate()
            .map(|(m, user)| json!({"user_id": user, "role": if m == 0 { "moderator" } else { "participant" }}))
            .collect();
        let body =
            json!({"name": format!("Room {r}"), "visibility": "public", "members": declared});
        let job = daemon
            .declare("tenantA", "event", &format!("room{r}"), body)
            .await;
        let room_id = job["result"]["room_id"].as_str().expect("the room's id");
        rooms.push(json!({"room_id": room_id, "members": members}));
    }
    let banned: Vec<String> = (0..BANNED)
        .map(|b| format!("@banned{b}:{SERVER}"))
        .collect();
    for user in &banned {
        let path = format!("/v1/tenants/tenantA/bans/{user}");
        let (status, answer) = daemon
            .platform(
                reqwest::Method::PUT,
                &path,
                Some(&tenant_token),
                Some(json!({"reason": "bench"})),
            )
            .await;
        assert!(status.is_success(), "{answer}");
    }
    let token_file = daemon.config.dir.join("antispam_token");
    std::fs::write(&token_file, &token).expect("write the token file");
    let plan = json!({
        "base_url": format!("http://127.0.0.1:{}/_openmeet/antispam", daemon.config.listening_appservice_port()),
        "token_file": token_file,
        "requests": requests,
        "concurrency": CONCURRENCY,
        "rooms": rooms,
        "banned": banned,
    });
    let report = tokio::task::spawn_blocking(move || load(&plan))
        .await
        .expect("the load's thread");
    let metrics = daemon.metrics_text().await;
    let means = CALLBACKS
        .iter()
        .map(|callback| {
            let sum_count = |suffix: &str| -> f64 {
                metrics
                    .lines()
                    .filter(|line| {
                        line.starts_with(&format!(
                            "openmeet_as_antispam_seconds_{suffix}{{callback=\"{callback}\""
                        ))
                    })
                    .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum()
            };
            let count = sum_count("count");
            let mean = sum_count("sum") / count.max(1.0) * 1000.0;
            (
                (*callback).to_owned(),
                (mean, p99_bound(&metrics, callback, count)),
            )
        })
        .collect();
    eprintln!("{}: {report}", backend.name());
    drop(fake);
    (report, means)
}

/// The daemon's own p99 for `callback`, as the upper bound of the histogram bucket it falls in
/// (outcomes summed), in ms.
fn p99_bound(metrics: &str, callback: &str, count: f64) -> f64 {
    let prefix = format!("openmeet_as_antispam_seconds_bucket{{callback=\"{callback}\"");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in metrics.lines().filter(|line| line.starts_with(&prefix)) {
        let Some(le) = line
            .split("le=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let (Ok(le), Some(Ok(n))) = (
            le.parse::<f64>(),
            line.rsplit(' ').next().map(str::parse::<f64>),
        ) else {
            continue;
        };
        match buckets.iter_mut().find(|(bound, _)| *bound == le) {
            Some((_, total)) => *total += n,
            None => buckets.push((le, n)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    (buckets.iter())
        .find(|(_, cumulative)| *cumulative >= 0.99 * count)
        .map_or(f64::NAN, |(bound, _)| bound * 1000.0)
}

/// Runs `benches/antispam_load.py` with the test venv's python on `plan`; its JSON report.
fn load(plan: &Value) -> Value {
    let script = support::python::repo_root()
        .join("benches")
        .join("antispam_load.py");
    let mut child = Command::new(support::python::venv_python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the load with the venv's python");
    child
        .stdin
        .take()
        .expect("the load's stdin")
        .write_all(plan.to_string().as_bytes())
        .expect("write the plan");
    let output = child.wait_with_output().expect("the load's output");
    assert!(
        output.status.success(),
        "the load failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the load's report is JSON")
}
