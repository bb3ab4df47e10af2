//! `migrate-db` (DESIGN §14): a daemon's SQLite database with rooms, members, jobs done and due,
//! inbox, outbox and moderation is moved to PostgreSQL and back; each time the counts and checksums
//! are equal on both sides, and a daemon on the copy carries on: a transaction Synapse retries is
//! still a duplicate, a due unmute fires, and the events feed continues after its last id.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::environment::{environment, fresh_config, port_turn, ready_daemon_with};
use crate::support::daemon::Daemon;
use crate::support::events::{message, transaction};
use crate::support::eventually;
use crate::support::matrix_client::register_user;
use crate::support::postgres;
use crate::support::webhook_receiver::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn platform(daemon: &Daemon, method: Method, path: &str, body: Option<Value>) -> Value {
    let token = daemon.config.tenant_token("tenantA");
    let (status, answer) = daemon
        .platform(
            method,
            &format!("/v1/tenants/tenantA/{path}"),
            Some(&token),
            body,
        )
        .await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

async fn feed_ids(daemon: &Daemon, after: i64) -> Vec<i64> {
    let page = platform(daemon, Method::GET, &format!("events?after={after}"), None).await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

/// `migrate-db`'s table: table → rows.
fn counts(stdout: &str) -> Vec<(String, u64)> {
    stdout
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.parse().ok()?))
        })
        .collect()
}

async fn level(
    viewer: &crate::support::matrix_client::TestUser,
    room_id: &str,
    user: &str,
) -> Option<i64> {
    let levels = viewer
        .state_event(
            environment().synapse.url.as_str(),
            room_id,
            "m.room.power_levels",
            "",
        )
        .await
        .expect("power levels");
    levels["users"][user].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_db_moves_a_daemon_to_postgres_and_back_and_it_carries_on() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let receiver = Receiver::start().await;
    let mut config = fresh_config();
    config.webhooks = vec![("tenantA".into(), receiver.url.clone(), SECRET.into())];
    let mut daemon = ready_daemon_with(config).await;
    let host = register_user(hs, "port-host").await;
    let speaker = register_user(hs, "port-speaker").await;
    let members = json!([{"user_id": host.user_id, "role": "host"}, {"user_id": speaker.user_id, "role": "speaker"}]);
    let job = daemon
        .declare(
            "tenantA",
            "event",
            "ported",
            json!({"name": "Ported Chat", "visibility": "private", "members": members}),
        )
        .await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &room_id).await;
    speaker.join(hs, &room_id).await;
    let started = Instant::now();
    let mute = json!({"reason": "Cool down", "expires_in_seconds": 20});
    let answer = platform(
        &daemon,
        Method::PUT,
        &format!("rooms/event/ported/mutes/{}", speaker.user_id),
        Some(mute),
    )
    .await;
    let token = daemon.config.tenant_token("tenantA");
    let muted = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(muted["status"], "succeeded", "{muted}");
    assert_eq!(level(&host, &room_id, &speaker.user_id).await, Some(-1));
    let retried = transaction(&[message(
        "$port-1",
        &room_id,
        &host.user_id,
        "before the port",
    )]);
    daemon.push_ok("port-txn-1", retried.clone()).await;
    let inbox_before = daemon.inbox_events().len();
    let feed_before = feed_ids(&daemon, 0).await;
    let last = *feed_before.last().expect("events so far");
    // The webhook's cursor is part of what moves: every event so far delivered before the stop.
    (receiver)
        .wait_for_acknowledged("tenantA", feed_before.len(), Duration::from_secs(30))
        .await;

    // With the daemon running, the port is refused.
    let sqlite = daemon.config.database_url.clone();
    let target = postgres::fresh_database("port");
    let (code, _, stderr) = daemon
        .config
        .cli(&["migrate-db", "--from", &sqlite, "--to", &target]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("a daemon is running on the sqlite file"),
        "{stderr}"
    );
    daemon.config.assert_no_secret_in("migrate-db", &stderr);

    daemon.stop();
    let (code, stdout, stderr) =
        daemon
            .config
            .cli(&["migrate-db", "--from", &sqlite, "--to", &target]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let to_postgres = counts(&stdout);
    for table in [
        "webhook_deliveries",
        "rooms",
        "room_members",
        "jobs",
        "moderation",
        "moderation_log",
        "inbox_events",
        "outbox_events",
        "as_transactions",
    ] {
        assert!(
            to_postgres.iter().any(|(t, n)| t == table && *n > 0),
            "{table} copied: {stdout}"
        );
    }
    assert!(
        !stderr.contains("postgres://"),
        "a URL reached the output: {stderr}"
    );
    // A second port into the same database is refused: it is not empty any more.
    let (code, _, stderr) = daemon
        .config
        .cli(&["migrate-db", "--from", &sqlite, "--to", &target]);
    assert_ne!(code, 0);
    assert!(stderr.contains("is not empty"), "{stderr}");

    // The daemon on PostgreSQL carries on.
    daemon.config.database_url = target.clone();
    daemon.restart().await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    daemon.push_ok("port-txn-1", retried).await;
    assert_eq!(
        daemon.inbox_events().len(),
        inbox_before,
        "the retried transaction is a duplicate"
    );
    eventually(
        "the due unmute to fire on PostgreSQL",
        Duration::from_secs(40).saturating_sub(started.elapsed()),
        || async { (level(&host, &room_id, &speaker.user_id).await == Some(25)).then_some(()) },
    )
    .await;
    let answer = platform(
        &daemon,
        Method::POST,
        "rooms/event/ported/messages",
        Some(json!({"body": "after the port"})),
    )
    .await;
    let sent = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(sent["status"], "succeeded", "{sent}");
    let after = feed_ids(&daemon, last).await;
    assert!(
        !after.is_empty() && after.iter().all(|id| *id > last),
        "the feed continues after {last}: {after:?}"
    );
    assert_eq!(
        feed_ids(&daemon, 0).await[..feed_before.len()],
        feed_before[..],
        "earlier ids kept"
    );
    // The webhook carries on from its cursor: the new events, none of the old ones again.
    let total = feed_before.len() + after.len();
    (receiver)
        .wait_for_acknowledged("tenantA", total, Duration::from_secs(30))
        .await;
    let delivered = receiver.acknowledged("tenantA");
    let unique: std::collections::BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "delivered twice: {delivered:?}"
    );

    // And back to SQLite.
    daemon.stop();
    let back = format!("sqlite://{}", daemon.config.dir.join("back.db").display());
    let (code, stdout, stderr) =
        daemon
            .config
            .cli(&["migrate-db", "--from", &target, "--to", &back]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let to_sqlite = counts(&stdout);
    assert_eq!(to_sqlite.len(), to_postgres.len(), "{stdout}");
    assert!(
        to_sqlite
            .iter()
            .any(|(t, n)| t == "outbox_events" && *n as usize >= feed_before.len() + after.len()),
        "{stdout}"
    );
    postgres::drop_database(&target);
}
