//! Benchmark of the cutover from OpenMeet's NestJS appservice (docs/migration.md): how fast
//! `rooms adopt` takes over rooms that appservice's sender made, against one real Synapse, side by
//! side with the limit — a minimal client making only the calls an adoption cannot do without.
//!
//! - seeding: [`ROOMS`] public rooms per run, made as the sender (`@openmeet-bot`) with the NestJS
//!   body and alias (`"{Name} Chat"`, `public_chat`, `#event-{slug}-{tenant}`), over four tenants,
//!   each run its own (so its own bots and aliases);
//! - the daemon: `rooms adopt --file rooms.jsonl --concurrency 16` against a daemon on SQLite,
//!   wall time from the command's start (process start included) to its end, when every room's
//!   job has succeeded: the bot brought in by the sender with power, the room read, its settings,
//!   aliases, directory listing and levels converged;
//! - the limit: per room, the sender reads the power levels, invites the tenant bot, the bot joins,
//!   the sender raises it to 100 — four calls, 16 rooms in flight.
//!
//! Run it with `make bench BENCHES=cutover` (or `cargo bench --bench cutover`);
//! `OPENMEET_BENCH_ROOMS=N` seeds N rooms per run. The table goes to stdout and
//! `target/bench/cutover.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails loudly by design

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use common::daemon::{SERVER_NAME, fresh_copy, start_daemon, start_synapse};
use support::matrix_client::{encode, register_as_appservice, request};

/// Rooms per run (`OPENMEET_BENCH_ROOMS` overrides).
const ROOMS: usize = 100;
/// Rooms in flight: `rooms adopt --concurrency`, and the limit's.
const IN_FLIGHT: usize = 16;

/// As the appservice (`as_token`), acting as `user` (`None`: the sender); panics on an error.
async fn call(
    hs: &str,
    as_token: &str,
    user: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let separator = if path.contains('?') { '&' } else { '?' };
    let path = match user {
        Some(user) => format!("{path}{separator}user_id={}", encode(user)),
        None => path.to_owned(),
    };
    let (status, answer) = request(hs, Some(as_token), method.clone(), &path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

/// Makes `rooms` rooms as the NestJS appservice did, round robin over `tenants`; returns their
/// tenants and slugs.
async fn seed(hs: &str, as_token: &str, tenants: &[&str], rooms: usize) -> Vec<(String, String)> {
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for i in 0..rooms {
        let tenant = tenants[i % tenants.len()].to_owned();
        let (hs, as_token, limit) = (hs.to_owned(), as_token.to_owned(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let slug = format!("fair-{i:04}");
            let body = json!({"name": format!("Fair {i} Chat"), "preset": "public_chat",
                "visibility": "private", "room_alias_name": format!("event-{slug}-{tenant}")});
            let path = "/_matrix/client/v3/createRoom";
            call(&hs, &as_token, None, Method::POST, path, Some(body)).await;
            (tenant, slug)
        });
    }
    let mut seeded = Vec::new();
    while let Some(room) = tasks.join_next().await {
        seeded.push(room.unwrap());
    }
    seeded
}

fn bot(tenant: &str) -> String {
    format!("@openmeet-bot-{}:{SERVER_NAME}", tenant.to_lowercase())
}

/// The limit: per room, the four calls that bring the tenant bot in with power (the bots
/// registered first, as the daemon does).
async fn limit(hs: &str, as_token: &str, tenants: &[&str], rooms: &[(String, String)]) -> Duration {
    for tenant in tenants {
        register_as_appservice(hs, as_token, &bot(tenant)).await;
    }
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (tenant, slug) in rooms {
        let (hs, as_token, bot) = (hs.to_owned(), as_token.to_owned(), bot(tenant));
        let (limit, alias) = (
            limit.clone(),
            format!("#event-{slug}-{tenant}:{SERVER_NAME}"),
        );
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let path = format!("/_matrix/client/v3/directory/room/{}", encode(&alias));
            let resolved = call(&hs, &as_token, None, Method::GET, &path, None).await;
            let room = encode(resolved["room_id"].as_str().unwrap());
            let levels_path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/");
            let mut levels = call(&hs, &as_token, None, Method::GET, &levels_path, None).await;
            let invite = format!("/_matrix/client/v3/rooms/{room}/invite");
            call(
                &hs,
                &as_token,
                None,
                Method::POST,
                &invite,
                Some(json!({"user_id": bot})),
            )
            .await;
            let join = format!("/_matrix/client/v3/rooms/{room}/join");
            call(
                &hs,
                &as_token,
                Some(&bot),
                Method::POST,
                &join,
                Some(json!({})),
            )
            .await;
            levels["users"][bot.as_str()] = json!(100);
            call(
                &hs,
                &as_token,
                None,
                Method::PUT,
                &levels_path,
                Some(levels),
            )
            .await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    started.elapsed()
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("cutover: a benchmark; run it with `cargo bench --bench cutover`");
        return;
    }
    let rooms = common::rooms_from_env(ROOMS);
    let (synapse, mut base) = start_synapse();
    // Four tenants a run, as the rooms benchmark has: the daemon runs at most `jobs.per_tenant` (4)
    // jobs of a tenant at once, 16 in all.
    let daemon_tenants = ["cutA", "cutB", "cutC", "cutD"];
    let limit_tenants = ["limA", "limB", "limC", "limD"];
    base.tenants = (daemon_tenants.iter())
        .map(|t| ((*t).to_owned(), format!("Cutover {t}")))
        .collect();
    let runtime = common::runtime();
    let (daemon_wall, limit_wall, stdout) = runtime.block_on(async {
        let hs = synapse.url.clone();
        let as_token = base.tokens.as_token.clone();
        let started = Instant::now();
        let for_daemon = seed(&hs, &as_token, &daemon_tenants, rooms).await;
        let for_limit = seed(&hs, &as_token, &limit_tenants, rooms).await;
        eprintln!("seeded {} rooms in {:.1} s", 2 * rooms, started.elapsed().as_secs_f64());
        let limit_wall = limit(&hs, &as_token, &limit_tenants, &for_limit).await;
        eprintln!("limit: {rooms} rooms in {:.2} s", limit_wall.as_secs_f64());

        let daemon = start_daemon(fresh_copy(&base, None)).await;
        let lines: String = for_daemon
            .iter()
            .map(|(tenant, slug)| {
                let i: usize = slug.trim_start_matches("fair-").parse().unwrap();
                format!("{}\n", json!({"tenant": tenant, "kind": "event", "slug": slug, "name": format!("Fair {i} Chat"), "visibility": "public"}))
            })
            .collect();
        let file = daemon.config.dir.join("rooms.jsonl");
        std::fs::write(&file, lines).unwrap();
        let started = Instant::now();
        let concurrency = IN_FLIGHT.to_string();
        let (code, stdout, stderr) = daemon.config.cli(&["rooms", "adopt", "--file", file.to_str().unwrap(), "--concurrency", &concurrency]);
        let daemon_wall = started.elapsed();
        assert_eq!(code, 0, "{stderr}");
        (daemon_wall, limit_wall, stdout)
    });
    let adopted = stdout
        .lines()
        .filter(|line| line.contains("\"outcome\":\"adopted\""))
        .count();
    assert_eq!(adopted, rooms, "every room adopted:\n{stdout}");
    let rate = |wall: Duration| rooms as f64 / wall.as_secs_f64();
    let table = common::table(&[
        common::row(&["run", "rooms", "wall (s)", "rooms/s", "% of the limit"]),
        common::row(&[
            "limit: 4 calls a room",
            &rooms.to_string(),
            &format!("{:.2}", limit_wall.as_secs_f64()),
            &format!("{:.1}", rate(limit_wall)),
            "100",
        ]),
        common::row(&[
            "rooms adopt (SQLite)",
            &rooms.to_string(),
            &format!("{:.2}", daemon_wall.as_secs_f64()),
            &format!("{:.1}", rate(daemon_wall)),
            &format!("{:.0}", 100.0 * rate(daemon_wall) / rate(limit_wall)),
        ]),
    ]);
    common::write_report(
        "cutover.md",
        &format!(
            "# Cutover: rooms adopted from the NestJS appservice's sender\n\n{IN_FLIGHT} rooms in flight, one Synapse on this machine.\n\n{table}\n"
        ),
    );
}
