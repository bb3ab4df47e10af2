#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Faults the daemon must come through without losing or doubling an acknowledged event, each
//! test printing what it measured:
//!
//! - clients that give up while their transaction waits to be written (a burst of concurrent
//!   100-event transactions whose connections close after a few milliseconds): the inbox still
//!   drains, jobs still run, SIGTERM still ends the process;
//! - kill -9 during serial transactions, then Synapse's retry of the unanswered one;
//! - the database away (PostgreSQL cut off behind a proxy; SQLite on a full volume): 503 with a
//!   Matrix error, nothing lost, recovery without a restart; after the cut only the first use of
//!   a dead pooled connection fails, the others are tested and replaced;
//! - a fuzz pass of mutated bodies on both APIs: no 5xx, every error answer JSON.
//!
//! One binary, a module per fault; the transactions and daemons they share are below.

mod support;

#[path = "faults/abandoned.rs"]
mod abandoned;
#[path = "faults/fuzzed.rs"]
mod fuzzed;
#[path = "faults/kill_9.rs"]
mod kill_9;
#[path = "faults/outage.rs"]
mod outage;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::daemon::{Daemon, DaemonConfig};
use crate::support::events::{message, transaction};
use crate::support::fake_homeserver::FakeHomeserver;
use crate::support::{Backend, inbox_rows};

const SERVER: &str = "fake.openmeet.test";
const ROOM: &str = "!faults:fake.openmeet.test";
const ALICE: &str = "@alice:fake.openmeet.test";
/// Every pseudo-random choice below comes from this seed: a failure replays.
const SEED: u64 = 0x6f70_656e_6d65_6574;

fn config(name: &str, backend: Backend) -> DaemonConfig {
    let mut config = DaemonConfig::new(name, backend.database_url(name));
    config.server_name = SERVER.into();
    config
}

/// A ready daemon whose homeserver is the fake (v10 rooms: the fake has no capabilities API), so
/// that jobs run.
async fn daemon_with_fake_homeserver(config: DaemonConfig) -> (FakeHomeserver, Daemon) {
    let mut config = config;
    config.room_version = Some("10".into());
    config.check_interval_seconds = 1;
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    (fake, daemon)
}

/// One transaction as Synapse would send it: `count` ~450-byte messages with ids from `tag`.
#[derive(Clone)]
struct Txn {
    id: String,
    event_ids: Vec<String>,
    body: String,
}

impl Txn {
    fn new(tag: &str, count: usize) -> Self {
        let event_ids: Vec<String> = (0..count).map(|i| format!("${tag}-{i}")).collect();
        let text = "a line of chat, as long as a real one tends to be ".repeat(4);
        let events: Vec<Value> = event_ids
            .iter()
            .map(|id| message(id, ROOM, ALICE, &text))
            .collect();
        Self {
            id: tag.to_owned(),
            event_ids,
            body: transaction(&events),
        }
    }

    fn path(&self) -> String {
        format!("/_matrix/app/v1/transactions/{}", self.id)
    }
}

/// Waits until no stored event is pending; returns how long that took.
async fn drained(daemon: &Daemon, within: Duration) -> Duration {
    let started = Instant::now();
    let url = daemon.config.database_url.clone();
    let mut last = 0;
    let outcome = tokio::time::timeout(within, async {
        loop {
            let url = url.clone();
            last = tokio::task::spawn_blocking(move || inbox_rows::pending(&url))
                .await
                .unwrap();
            if last == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "the inbox did not drain within {within:?}: {last} events still pending\n{}",
        tail(&daemon.logs())
    );
    started.elapsed()
}

/// The last lines of a log (without the HTTP client's own chatter), for failure messages.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.contains("hyper_util")).collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Stored copies of each event id, read from the database.
fn stored_counts(real_url: &str) -> std::collections::BTreeMap<String, i64> {
    tokio::task::block_in_place(|| inbox_rows::events_by_id(real_url))
}

/// A push as Synapse makes it: `Err` when the connection failed (`true`: never connected).
async fn push_raw(
    client: &reqwest::Client,
    port: u16,
    token: &str,
    txn: &Txn,
) -> Result<(StatusCode, String), bool> {
    let response = client
        .put(format!("http://127.0.0.1:{port}{}", txn.path()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(txn.body.clone())
        .send()
        .await
        .map_err(|error| error.is_connect())?;
    let status = response.status();
    let text = response.text().await.map_err(|_| false)?;
    Ok((status, text))
}
