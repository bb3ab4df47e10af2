//! A fuzz pass of mutated bodies on both APIs: no 5xx, every error answer JSON.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{ALICE, ROOM, SEED, config};
use crate::support::Backend;
use crate::support::daemon::Daemon;
use crate::support::events::{member, message, transaction};
use crate::support::fuzz::{Rng, mutate};

crate::on_both_backends!(fuzzed_bodies_get_json_answers_and_never_5xx);

/// A request of the fuzz pass and what came back.
struct Fuzzed {
    api: &'static str,
    method: reqwest::Method,
    path: String,
    mutation: String,
    body: Vec<u8>,
}

/// Mutated bodies against both APIs with valid tokens: never a 5xx (the database is up), and
/// every answer JSON — `{}` or `{errcode, error}` to Synapse, `{error, code}` on platform errors.
async fn fuzzed_bodies_get_json_answers_and_never_5xx(backend: Backend) {
    const PER_ROUTE: usize = 500;
    let daemon = Daemon::start(config("fuzz", backend)).await;
    let hs_token = daemon.config.tokens.hs_token.clone();
    let tenant_token = daemon.config.tenant_token("tenantA");
    let mut rng = Rng::new(SEED);

    let transaction_base = transaction(&[
        message("$fz1", ROOM, ALICE, "hello"),
        member("$fz2", ROOM, ALICE, "@bob:fake.openmeet.test", "invite"),
        json!({"type": "m.room.power_levels", "event_id": "$fz3", "room_id": ROOM, "sender": ALICE,
               "state_key": "", "origin_server_ts": 1_764_000_000_000u64,
               "content": {"users": {ALICE: 100}, "users_default": 0}}),
        json!({"type": "m.room.tombstone", "event_id": "$fz4", "room_id": ROOM, "sender": ALICE,
               "state_key": "", "origin_server_ts": 1_764_000_000_000u64,
               "content": {"body": "moved", "replacement_room": "!new:fake.openmeet.test"}}),
    ]);
    let room_base =
        json!({"name": "Fuzz Chat", "topic": "Chat room for Fuzz", "visibility": "private",
        "members": [{"user_id": "@host:fake.openmeet.test", "role": "host"},
                    {"user_id": "@guest:fake.openmeet.test", "role": "participant"}]})
        .to_string();
    let member_base = json!({"role": "moderator"}).to_string();
    let rename_base = json!({"new_slug": "fuzz-renamed"}).to_string();
    let reason_base = json!({"reason": "left the event"}).to_string();
    let room = "/v1/tenants/tenantA/rooms/event";

    use reqwest::Method;
    let routes: Vec<(&'static str, Method, &str, String)> = vec![
        (
            "appservice",
            Method::PUT,
            transaction_base.as_str(),
            "transaction".into(),
        ),
        ("platform", Method::PUT, room_base.as_str(), "room".into()),
        (
            "platform",
            Method::PUT,
            member_base.as_str(),
            "member".into(),
        ),
        (
            "platform",
            Method::POST,
            rename_base.as_str(),
            "rename".into(),
        ),
        (
            "platform",
            Method::DELETE,
            reason_base.as_str(),
            "unmember".into(),
        ),
        (
            "platform",
            Method::DELETE,
            reason_base.as_str(),
            "unroom".into(),
        ),
    ];
    let mut requests = Vec::new();
    for (api, method, base, route) in &routes {
        for i in 0..PER_ROUTE {
            let (body, mutation) = mutate(&mut rng, base.as_bytes());
            let slug = format!("fuzz-{}", i % 40);
            let path = match route.as_str() {
                "transaction" => format!("/_matrix/app/v1/transactions/fuzz{i}"),
                "room" | "unroom" => format!("{room}/{slug}"),
                "member" | "unmember" => {
                    format!("{room}/{slug}/members/@user{}:fake.openmeet.test", i % 7)
                }
                _ => format!("{room}/{slug}/rename"),
            };
            requests.push(Fuzzed {
                api,
                method: method.clone(),
                path,
                mutation,
                body,
            });
        }
    }

    // Path segments no client of ours sends: not UTF-8, NUL, overlong, not a number.
    let long = "x".repeat(300);
    let mut odd_paths: Vec<(&'static str, Method, String, &str)> = Vec::new();
    for segment in [
        "%FF",
        "%00",
        "a%00b",
        "%C3%28",
        &long,
        "%2E%2E",
        "%2F",
        "-1",
        "%E2%80%AE",
    ] {
        let path = format!("/_matrix/app/v1/transactions/{segment}");
        odd_paths.push(("appservice", Method::PUT, path, &transaction_base));
    }
    for path in [
        "/_matrix/app/v1/users/%FF",
        "/_matrix/app/v1/users/%40a%00:fake.openmeet.test",
        "/_matrix/app/v1/rooms/%FF",
        "/_matrix/app/v1/rooms/%23event-a%00-tenantA:fake.openmeet.test",
        "/_matrix/app/v1/thirdparty/protocol/%FF",
    ] {
        odd_paths.push(("appservice", Method::GET, path.into(), ""));
    }
    for id in ["abc", "-1", "99999999999999999999", "%FF", "1.5"] {
        odd_paths.push(("platform", Method::GET, format!("/v1/jobs/{id}"), ""));
    }
    let no_body = String::new();
    for (method, path, body) in [
        (Method::PUT, format!("{room}/%FF"), &room_base),
        (Method::PUT, format!("{room}/a%00b"), &room_base),
        (Method::PUT, format!("{room}/{long}"), &room_base),
        (
            Method::PUT,
            "/v1/tenants/%FF/rooms/event/x".into(),
            &room_base,
        ),
        (
            Method::PUT,
            "/v1/tenants/tenantA/rooms/%FF/x".into(),
            &room_base,
        ),
        (Method::GET, format!("{room}/%FF"), &no_body),
        (Method::PUT, format!("{room}/x/members/%FF"), &member_base),
        (
            Method::PUT,
            format!("{room}/x/members/%40a%00:fake.openmeet.test"),
            &member_base,
        ),
        (Method::POST, format!("{room}/%FF/rename"), &rename_base),
        (Method::DELETE, format!("{room}/%FF"), &no_body),
    ] {
        odd_paths.push(("platform", method, path, body.as_str()));
    }
    for (api, method, path, body) in odd_paths {
        requests.push(Fuzzed {
            api,
            method,
            path,
            mutation: "odd path".into(),
            body: body.as_bytes().to_vec(),
        });
    }

    // A connection per request: the server closes one whose body it did not read (DELETE of a
    // room takes none), and a pooled client may race that close.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut problems = Vec::new();
    for request in &requests {
        let (port, token) = match request.api {
            "appservice" => (daemon.config.appservice_port, &hs_token),
            _ => (daemon.config.platform_port, &tenant_token),
        };
        let response = client
            .request(
                request.method.clone(),
                format!("http://127.0.0.1:{port}{}", request.path),
            )
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(request.body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", request.method, request.path));
        let status = response.status();
        let text = response.bytes().await.unwrap();
        *by_status.entry(status.as_u16()).or_default() += 1;
        let answer = serde_json::from_slice::<Value>(&text).ok();
        let well_formed = match (request.api, &answer) {
            (_, None) => false,
            ("appservice", Some(answer)) if status == StatusCode::OK => *answer == json!({}),
            ("appservice", Some(answer)) => {
                answer["errcode"].is_string() && answer["error"].is_string()
            }
            (_, Some(answer)) if status.is_success() => answer.is_object(),
            (_, Some(answer)) => answer["error"].is_string() && answer["code"].is_string(),
        };
        if status.is_server_error() || !well_formed {
            let shown: String = String::from_utf8_lossy(&request.body)
                .chars()
                .take(300)
                .collect();
            problems.push(format!(
                "{} {} ({}): {status} {:?}\n  body: {shown:?}",
                request.method,
                request.path,
                request.mutation,
                String::from_utf8_lossy(&text)
            ));
        }
    }
    let took = started.elapsed();
    // The daemon is still well: an ordinary transaction is acknowledged.
    daemon
        .push_ok(
            "after-fuzz",
            transaction(&[message("$after-fuzz", ROOM, ALICE, "ok")]),
        )
        .await;
    eprintln!(
        "fuzz ({backend:?}, seed {SEED:#x}): {} mutated bodies ({PER_ROUTE} per route: \
         transactions, PUT room, PUT member, rename, DELETE member, DELETE room) and {} odd \
         paths in {:.1} s; answers by status: {by_status:?}; {} problems",
        6 * PER_ROUTE,
        requests.len() - 6 * PER_ROUTE,
        took.as_secs_f64(),
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{} answers were 5xx or not the API's JSON:\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
