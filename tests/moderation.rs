#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Redaction against the fake homeserver — the paths a real Synapse will not produce on demand: a
//! storm of `M_LIMIT_EXCEEDED` and a crash mid-way must not redact any event twice — and the
//! moderation audit log over HTTP and on the command line: its order, pages, filter, tenant
//! isolation, and the input that is refused with no entry. The happy path of redaction runs
//! against the real Synapse in `tests/e2e/redaction.rs`. And a ban or mute only records intent:
//! the call itself asks the homeserver nothing, so a user it has no profile for is accepted.

mod support;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openmeet_appservice::clock::rfc3339;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::daemon::{Daemon, DaemonConfig};
use support::fake_homeserver::{Endpoint, FakeHomeserver, Fault};

const SERVER: &str = "fake.openmeet.test";
const SPAMMER: &str = "@spammer:fake.openmeet.test";
const HOUR: u64 = 3_600_000;

/// A fake homeserver and a ready daemon on it with tenants A and B (v10 rooms: the fake has no
/// capabilities API).
async fn setup(timeout_seconds: u64) -> (FakeHomeserver, Daemon) {
    let mut config = DaemonConfig::new("moderation", None);
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.homeserver_timeout_seconds = timeout_seconds;
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    (fake, daemon)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Declares `tenant`'s event room `slug` and returns its Matrix room id.
async fn room(daemon: &Daemon, tenant: &str, slug: &str) -> String {
    let body = json!({"name": "Chat", "visibility": "public"});
    let job = daemon.declare(tenant, "event", slug, body).await;
    job["result"]["room_id"].as_str().unwrap().to_owned()
}

/// A platform call with an `X-OpenMeet-Actor` header.
async fn call_as(
    daemon: &Daemon,
    actor: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let headers = [("x-openmeet-actor", actor)];
    daemon
        .platform_raw(method, path, Some(token), &headers, Some(body.to_string()))
        .await
}

/// `GET moderation{query}` as `tenant`.
async fn log(daemon: &Daemon, tenant: &str, query: &str) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token(tenant);
    let path = format!("/v1/tenants/{tenant}/moderation{query}");
    daemon
        .platform(Method::GET, &path, Some(&token), None)
        .await
}

async fn redact(daemon: &Daemon, tenant: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token(tenant);
    let path = format!("/v1/tenants/{tenant}/{path}");
    daemon
        .platform(Method::POST, &path, Some(&token), Some(body))
        .await
}

/// Posts `count` messages by the spammer, an hour old and newer, and, around them, messages that
/// must stay: the spammer's from before `since` (two hours old), another user's, the bot's own.
/// Returns the ids of the spammer's recent messages and of the others.
fn timeline(fake: &FakeHomeserver, room_id: &str, count: usize) -> (Vec<String>, Vec<String>) {
    let bot = format!("@openmeet-bot-tenanta:{SERVER}");
    let other = format!("@bystander:{SERVER}");
    let now = now_ms();
    let mut keep = Vec::new();
    for i in 0..3 {
        keep.push(fake.post_message(room_id, SPAMMER, Some(now - 2 * HOUR + i)));
    }
    let mut recent = Vec::new();
    for i in 0..count as u64 {
        recent.push(fake.post_message(room_id, SPAMMER, Some(now - HOUR + 1000 + i)));
        if i % 10 == 0 {
            keep.push(fake.post_message(room_id, &other, Some(now - HOUR + 1000 + i)));
            keep.push(fake.post_message(room_id, &bot, Some(now - HOUR + 1000 + i)));
        }
    }
    (recent, keep)
}

/// Redact requests that reached the fake unfaulted, per target event, and the txnIds each used.
fn redact_requests(fake: &FakeHomeserver) -> HashMap<String, (usize, Vec<String>)> {
    let mut seen: HashMap<String, (usize, Vec<String>)> = HashMap::new();
    for request in fake.requests() {
        if request.endpoint != Endpoint::Redact {
            continue;
        }
        let segments: Vec<&str> = request.path.rsplitn(3, '/').collect();
        let (txn, event) = (segments[0].to_owned(), segments[1].to_owned());
        let entry = seen.entry(event).or_default();
        if request.fault.is_none() {
            entry.0 += 1;
        }
        if !entry.1.contains(&txn) {
            entry.1.push(txn);
        }
    }
    seen
}

/// Every recent event redacted by exactly one redaction event, every other untouched.
fn assert_each_redacted_once(fake: &FakeHomeserver, recent: &[String], keep: &[String]) {
    let redactions = fake.redactions();
    for event in recent {
        assert_eq!(redactions.get(event), Some(&1), "{event}: {redactions:?}");
    }
    for event in keep {
        assert_eq!(redactions.get(event), None, "{event} was redacted");
    }
    assert_eq!(redactions.len(), recent.len());
    for (event, (_, txns)) in redact_requests(fake) {
        assert_eq!(
            txns.len(),
            1,
            "{event} was sent with several txnIds: {txns:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_storm_is_waited_out_and_no_event_is_redacted_twice() {
    let (fake, daemon) = setup(10).await;
    let room_id = room(&daemon, "tenantA", "storm").await;
    // 60 recent messages: two `/messages` pages of 50.
    let (recent, keep) = timeline(&fake, &room_id, 60);
    let limited = Fault::RateLimited {
        retry_after_ms: 300,
    };
    fake.fail_next(Endpoint::Redact, 3, limited.clone());
    fake.fail_next(Endpoint::Redact, 5, Fault::Pass);
    fake.fail_next(Endpoint::Redact, 2, limited.clone());
    fake.fail_next(Endpoint::Redact, 49, Fault::Pass);
    fake.fail_next(Endpoint::Redact, 1, limited.clone());
    fake.fail_next(Endpoint::Messages, 1, limited);
    let since = rfc3339((now_ms() - HOUR) as i64);
    let (status, answer) = redact(
        &daemon,
        "tenantA",
        "rooms/event/storm/redactions",
        json!({"user_id": SPAMMER, "since": since, "reason": "spam"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["job"]["id"].as_i64().unwrap();
    let job = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    assert_eq!(job["result"], json!({"redacted": 60}));
    assert_eq!(job["attempts"], 1, "a rate limit must not spend an attempt");
    assert_each_redacted_once(&fake, &recent, &keep);
    let requests = redact_requests(&fake);
    for event in &recent {
        assert_eq!(requests[event].0, 1, "{event}: one unfaulted request");
    }
    let faulted = fake
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Redact && r.status == 429)
        .count();
    assert_eq!(faulted, 6);
    assert_eq!(
        daemon
            .metric("openmeet_as_redactions_total", "outcome=\"rate_limited\"")
            .await,
        6.0
    );
    assert_eq!(
        daemon
            .metric("openmeet_as_redactions_total", "outcome=\"redacted\"")
            .await,
        60.0
    );
    assert_eq!(
        daemon
            .metric("openmeet_as_rate_limit_waits_total", "")
            .await,
        7.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_redaction_continues_from_the_saved_progress() {
    let (fake, mut daemon) = setup(60).await;
    let room_id = room(&daemon, "tenantA", "crash").await;
    let (recent, keep) = timeline(&fake, &room_id, 30);
    // The 11th redaction is made, but its answer never comes back before the crash.
    fake.fail_next(Endpoint::Redact, 10, Fault::Pass);
    fake.fail_next(Endpoint::Redact, 1, Fault::Timeout(Duration::from_secs(30)));
    let (status, answer) = redact(
        &daemon,
        "tenantA",
        "rooms/event/crash/redactions",
        json!({"user_id": SPAMMER, "since": rfc3339((now_ms() - HOUR) as i64), "reason": "spam"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let id = answer["job"]["id"].as_i64().unwrap();
    support::eventually("the 11th redaction", Duration::from_secs(30), || async {
        (fake.count(Endpoint::Redact) == 11).then_some(())
    })
    .await;
    daemon.kill();
    daemon.restart().await;
    let job = daemon
        .wait_for_job(id, &daemon.config.tenant_token("tenantA"))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    assert_eq!(job["result"], json!({"redacted": 30}), "counted once each");
    assert_eq!(
        job["attempts"], 2,
        "one attempt before the crash, one after"
    );
    assert_each_redacted_once(&fake, &recent, &keep);
    assert_eq!(
        fake.count(Endpoint::Redact),
        30,
        "an event was asked for again: the one in flight at the crash shows redacted and is only counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_wide_redaction_covers_every_managed_room_of_the_tenant_only() {
    let (fake, daemon) = setup(10).await;
    let first = room(&daemon, "tenantA", "one").await;
    let second = room(&daemon, "tenantA", "two").await;
    let other_tenant = room(&daemon, "tenantB", "one").await;
    let (mut recent, mut keep) = timeline(&fake, &first, 4);
    let (more, kept) = timeline(&fake, &second, 3);
    recent.extend(more);
    keep.extend(kept);
    keep.extend(timeline(&fake, &other_tenant, 2).0);
    let (status, answer) = redact(
        &daemon,
        "tenantA",
        "redactions",
        json!({"user_id": SPAMMER, "since": rfc3339((now_ms() - HOUR) as i64), "reason": "spam"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let token = daemon.config.tenant_token("tenantA");
    let fan_out = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(fan_out["status"], "succeeded", "{fan_out}");
    let rooms = fan_out["result"]["rooms"].as_array().unwrap();
    let slugs: Vec<&str> = rooms.iter().map(|r| r["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["one", "two"], "{fan_out}");
    let mut redacted = Vec::new();
    for room in rooms {
        let job = daemon
            .wait_for_job(room["job"].as_i64().unwrap(), &token)
            .await;
        assert_eq!(job["status"], "succeeded", "{job}");
        redacted.push(job["result"]["redacted"].as_i64().unwrap());
    }
    assert_eq!(redacted, [4, 3]);
    assert_each_redacted_once(&fake, &recent, &keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_lists_redactions_oldest_first_by_tenant_and_refuses_bad_input() {
    let (_fake, daemon) = setup(10).await;
    room(&daemon, "tenantA", "audit").await;
    room(&daemon, "tenantB", "audit").await;
    let token_a = daemon.config.tenant_token("tenantA");
    let token_b = daemon.config.tenant_token("tenantB");
    let since = rfc3339((now_ms() - HOUR) as i64);
    let other = format!("@other:{SERVER}");

    // Refused: nothing queued, no entry.
    let refused = [
        (
            "rooms/event/audit/redactions",
            json!({"user_id": "spammer", "reason": "x"}),
            "user_id",
        ),
        (
            "rooms/event/audit/redactions",
            json!({"user_id": "@spammer:elsewhere.org", "reason": "x"}),
            "user_id",
        ),
        (
            "rooms/event/audit/redactions",
            json!({"user_id": format!("@openmeet-bot-tenanta:{SERVER}"), "reason": "x"}),
            "user_id",
        ),
        (
            "redactions",
            json!({"user_id": format!("@openmeet-bot:{SERVER}"), "reason": "x"}),
            "user_id",
        ),
        (
            "rooms/event/audit/redactions",
            json!({"user_id": SPAMMER, "since": "yesterday", "reason": "x"}),
            "since",
        ),
        (
            "redactions",
            json!({"user_id": SPAMMER, "since": rfc3339((now_ms() + HOUR) as i64), "reason": "x"}),
            "since",
        ),
        (
            "rooms/event/audit/redactions",
            json!({"user_id": SPAMMER, "reason": " "}),
            "reason",
        ),
        (
            "rooms/event/audit/redactions",
            json!({"user_id": SPAMMER}),
            "reason",
        ),
    ];
    for (path, body, field) in refused {
        let (status, answer) = redact(&daemon, "tenantA", path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{body}: {answer}"
        );
    }
    let (status, answer) = redact(
        &daemon,
        "tenantA",
        "rooms/event/nowhere/redactions",
        json!({"user_id": SPAMMER, "reason": "x"}),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(
        log(&daemon, "tenantA", "").await,
        (StatusCode::OK, json!({"entries": []}))
    );

    // Three calls by tenant A (one by a named actor), one by tenant B.
    let body =
        |user: &str, reason: &str| json!({"user_id": user, "since": since, "reason": reason});
    let path_a = "/v1/tenants/tenantA/rooms/event/audit/redactions";
    let (status, first) = call_as(
        &daemon,
        "platform-user-7",
        Method::POST,
        path_a,
        &token_a,
        body(SPAMMER, "spam"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (_, second) = redact(&daemon, "tenantA", "redactions", body(&other, "abuse")).await;
    let (_, third) = redact(
        &daemon,
        "tenantA",
        "rooms/event/audit/redactions",
        json!({"user_id": SPAMMER, "reason": "again"}),
    )
    .await;
    let (_, _) = redact(
        &daemon,
        "tenantB",
        "rooms/event/audit/redactions",
        body(SPAMMER, "b's"),
    )
    .await;

    let (status, all) = log(&daemon, "tenantA", "").await;
    assert_eq!(status, StatusCode::OK);
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{all}");
    let first_entry = &entries[0];
    assert_eq!(first_entry["action"], "redact");
    assert_eq!(first_entry["user_id"], SPAMMER);
    assert_eq!(
        first_entry["room"],
        json!({"kind": "event", "slug": "audit"})
    );
    assert_eq!(first_entry["reason"], "spam");
    assert_eq!(first_entry["actor"], "platform-user-7");
    assert_eq!(first_entry["expires_at"], Value::Null);
    assert_eq!(first_entry["job"], first["job"]["id"]);
    let at = first_entry["at"].as_str().unwrap();
    assert!(
        at.ends_with('Z') && at.len() == "2026-12-05T10:00:00.000Z".len(),
        "{at}"
    );
    assert_eq!(entries[1]["room"], Value::Null, "tenant-wide");
    assert_eq!(entries[1]["actor"], Value::Null);
    assert_eq!(entries[1]["job"], second["job"]["id"]);
    assert_eq!(entries[2]["job"], third["job"]["id"]);
    let ids: Vec<i64> = entries.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");

    // Pages, the user filter, and another tenant's token.
    let (_, page) = log(&daemon, "tenantA", "?limit=2").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let after = format!("?after={}&limit=2", page["entries"][1]["id"]);
    let path = format!("/v1/tenants/tenantA/moderation{after}");
    let (_, rest) = daemon
        .platform(Method::GET, &path, Some(&token_a), None)
        .await;
    assert_eq!(rest["entries"], json!([entries[2]]));
    let path = format!(
        "/v1/tenants/tenantA/moderation?user_id={}",
        other.replace('@', "%40").replace(':', "%3A")
    );
    let (_, only) = daemon
        .platform(Method::GET, &path, Some(&token_a), None)
        .await;
    assert_eq!(only["entries"], json!([entries[1]]));
    let (_, theirs) = log(&daemon, "tenantB", "").await;
    assert_eq!(theirs["entries"].as_array().unwrap().len(), 1, "{theirs}");
    assert_eq!(theirs["entries"][0]["reason"], "b's");
    let (status, _) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/moderation",
            Some(&token_b),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    for query in [
        "?limit=0",
        "?limit=1001",
        "?after=x",
        "?after=-1",
        "?user_id=nobody",
        "?page=2",
    ] {
        let (status, answer) = log(&daemon, "tenantA", query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["code"], "invalid_input", "{query}: {answer}");
    }

    // The operators' command prints the same entries, every tenant's, as JSON lines.
    let (code, stdout, stderr) = daemon.config.cli(&["moderation", "list"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[3]["tenant"], "tenantB");
    let mut line = lines[0].clone();
    line.as_object_mut().unwrap().remove("tenant");
    assert_eq!(line, entries[0]);
    let (code, stdout, _) = daemon.config.cli(&[
        "moderation",
        "list",
        "--tenant",
        "tenantA",
        "--user",
        &other,
    ]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let after = entries[0]["id"].to_string();
    let (_, stdout, _) =
        daemon
            .config
            .cli(&["moderation", "list", "--after", &after, "--limit", "1"]);
    let line: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["id"], entries[1]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_or_mute_call_asks_the_homeserver_nothing_and_takes_a_user_without_a_profile() {
    let mut config = DaemonConfig::new("moderation_intent", None);
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    // No job runs and no periodic check comes due: every request the fake sees from here on
    // would be one a platform call made.
    config.check_interval_seconds = 3600;
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    let body = json!({"name": "Chat", "visibility": "public"});
    daemon.put_room("tenantA", "event", "intent", body).await;
    let token = daemon.config.tenant_token("tenantA");
    // The fake has never seen this user: its profile is a 404, as Synapse's is for a user with
    // no display name and no avatar.
    let nobody = format!("@no-profile:{SERVER}");
    let calls = [
        (
            format!("/v1/tenants/tenantA/rooms/event/intent/bans/{nobody}"),
            json!({"reason": "Spam"}),
        ),
        (
            format!("/v1/tenants/tenantA/rooms/event/intent/mutes/{nobody}"),
            json!({}),
        ),
        (
            format!("/v1/tenants/tenantA/bans/{nobody}"),
            json!({"reason": "Spam"}),
        ),
        (format!("/v1/tenants/tenantA/mutes/{nobody}"), json!({})),
    ];
    let before = fake.requests().len();
    for (path, body) in calls {
        let (status, answer) = daemon
            .platform(Method::PUT, &path, Some(&token), Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{path}: {answer}");
        assert_eq!(answer["job"]["status"], "queued", "{path}: {answer}");
    }
    let made: Vec<String> = fake.requests()[before..]
        .iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect();
    assert!(made.is_empty(), "the calls asked the homeserver: {made:?}");
    let (status, entries) = log(&daemon, "tenantA", "").await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["ban", "mute", "ban", "mute"], "{entries}");
}
