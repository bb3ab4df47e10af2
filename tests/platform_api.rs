#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The platform API of the real daemon over HTTP, without a homeserver (jobs queue but do not run):
//! the answers that do not depend on Synapse. With Synapse: `tests/e2e/rooms.rs`.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Backend;
use support::daemon::{Daemon, DaemonConfig, ExtraHomeserver};

async fn daemon() -> Daemon {
    let mut config = DaemonConfig::new("platform", None);
    config.extra_yaml =
        "jobs:\n  enabled: false\nadmin_token: admin-token-for-the-status-route\n".into();
    Daemon::start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_a_code_even_an_oversized_body() {
    let daemon = daemon().await;
    let token = daemon.config.tenant_token("tenantA");
    let huge = json!({"name": "x".repeat(2 * 1024 * 1024), "visibility": "private"});
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            "/v1/tenants/tenantA/rooms/event/big",
            Some(&token),
            Some(huge),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")),
        "{answer}"
    );
    let (status, answer) = daemon
        .platform(Method::GET, "/v1/nothing", Some(&token), None)
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            "/v1/tenants/tenantA/rooms/event/x",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_body")),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declaration_is_stored_with_its_job_and_the_same_call_queues_nothing_new() {
    let daemon = daemon().await;
    let token = daemon.config.tenant_token("tenantA");
    let body = json!({"name": "Queued Chat", "visibility": "public", "members": [{"user_id": "@ann:test.openmeet.invalid", "role": "speaker"}]});
    let path = "/v1/tenants/tenantA/rooms/event/queued";
    let (status, first) = daemon
        .platform(Method::PUT, path, Some(&token), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(
        (
            first["job"]["kind"].as_str(),
            first["job"]["status"].as_str()
        ),
        (Some("ensure_room"), Some("queued"))
    );
    let (_, second) = daemon
        .platform(Method::PUT, path, Some(&token), Some(body))
        .await;
    assert_eq!(second["job"]["id"], first["job"]["id"]);
    let (_, room) = daemon.platform(Method::GET, path, Some(&token), None).await;
    assert_eq!(room["status"], "pending");
    assert_eq!(room["alias"], "#event-queued-tenantA:test.openmeet.invalid");
    assert_eq!(room["members"][0]["role"], "speaker");
    assert!(
        room["members"][0]["power_level"].is_null(),
        "nothing was applied yet"
    );

    let (status, status_body) = daemon
        .platform(
            Method::GET,
            "/v1/status",
            Some("admin-token-for-the-status-route"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{status_body}");
    let (status, _) = daemon
        .platform(Method::GET, "/v1/status", Some(&token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a tenant token reached the operators' route"
    );

    // The operator's tools see the same.
    let (code, stdout, stderr) = daemon
        .config
        .cli(&["rooms", "reconcile", "tenantA/event/queued"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"job\""), "{stdout}");
    let (code, _, stderr) = daemon
        .config
        .cli(&["rooms", "reconcile", "tenantA/event/nowhere"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("rooms list"), "no hint in: {stderr}");
    let (code, stdout, _) = daemon.config.cli(&["jobs", "list", "--status", "queued"]);
    assert_eq!((code, stdout.lines().count()), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_changes_while_the_rooms_job_waits_fold_into_that_job() {
    let daemon = daemon().await;
    let token = daemon.config.tenant_token("tenantA");
    let path = "/v1/tenants/tenantA/rooms/event/folded";
    let body = json!({"name": "Folded Chat", "visibility": "private"});
    let first = daemon.put_room("tenantA", "event", "folded", body).await;
    for (i, method) in [Method::PUT, Method::PUT, Method::DELETE]
        .into_iter()
        .enumerate()
    {
        let member = format!("{path}/members/%40guest-{i}%3Atest.openmeet.invalid");
        let body = (method == Method::PUT).then(|| json!({"role": "participant"}));
        let (status, answer) = daemon.platform(method, &member, Some(&token), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["job"]["id"], first, "{answer}");
    }
    let (_, room) = daemon.platform(Method::GET, path, Some(&token), None).await;
    assert_eq!(room["members"].as_array().map(Vec::len), Some(2), "{room}");
    let (code, stdout, _) = daemon.config.cli(&["jobs", "list", "--status", "queued"]);
    assert_eq!((code, stdout.lines().count()), (0, 1), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_the_router_cannot_read_answers_json() {
    let daemon = daemon().await;
    let token = daemon.config.tenant_token("tenantA");
    for path in ["/v1/jobs/abc", "/v1/jobs/99999999999999999999999"] {
        let (status, answer) = daemon.platform(Method::GET, path, Some(&token), None).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{path}: {answer}"
        );
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("could not be read"),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_users_are_not_members_a_put_or_delete_of_one_is_a_400() {
    let daemon = daemon().await;
    let token = daemon.config.tenant_token("tenantA");
    let path = "/v1/tenants/tenantA/rooms/event/ours";
    let body = json!({"name": "Ours", "visibility": "public"});
    let (status, answer) = daemon
        .platform(Method::PUT, path, Some(&token), Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    for user in [
        "@openmeet-bot-tenanta:test.openmeet.invalid",
        "@openmeet-bot:test.openmeet.invalid",
        "@openmeet-bot-othertenant:test.openmeet.invalid",
    ] {
        let member = format!("{path}/members/{user}");
        for (method, body) in [
            (Method::PUT, Some(json!({"role": "host"}))),
            (Method::DELETE, None),
        ] {
            let (status, answer) = daemon
                .platform(method.clone(), &member, Some(&token), body)
                .await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_input")),
                "{method} {user}: {answer}"
            );
            assert!(
                answer["error"]
                    .as_str()
                    .unwrap()
                    .contains("appservice's own users"),
                "{answer}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_on_another_homeserver_cannot_name_that_homeservers_own_users() {
    // Tenant B lives on a second homeserver (DESIGN §13), unreachable: no call here asks it.
    let mut config = DaemonConfig::new("platform_second", None);
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    let unreachable = format!("http://127.0.0.1:{}", support::python::free_port());
    let mut second = ExtraHomeserver::new("second", &unreachable, "second.openmeet.invalid");
    second.tenants.push("tenantB".into());
    config.homeservers.push(second);
    let daemon = Daemon::start(config).await;
    let token = daemon.config.tenant_token("tenantB");
    let path = "/v1/tenants/tenantB/rooms/event/ours";
    let body = json!({"name": "Ours", "visibility": "public"});
    let (status, answer) = daemon
        .platform(Method::PUT, path, Some(&token), Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let refused = |what: &str, status: StatusCode, answer: &serde_json::Value| {
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_input")),
            "{what}: {answer}"
        );
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("appservice's own users"),
            "{what}: {answer}"
        );
    };
    for user in [
        "@openmeet-bot-tenantb:second.openmeet.invalid",
        "@openmeet-bot:second.openmeet.invalid",
        "@openmeet-bot-othertenant:second.openmeet.invalid",
    ] {
        let (status, answer) = daemon
            .platform(
                Method::PUT,
                &format!("{path}/members/{user}"),
                Some(&token),
                Some(json!({"role": "host"})),
            )
            .await;
        refused(&format!("member {user}"), status, &answer);
        let body = json!({"name": "Ours", "visibility": "public",
                          "members": [{"user_id": user, "role": "participant"}]});
        let (status, answer) = daemon
            .platform(Method::PUT, path, Some(&token), Some(body))
            .await;
        refused(&format!("members[] {user}"), status, &answer);
        let (status, answer) = daemon
            .platform(
                Method::PUT,
                &format!("/v1/tenants/tenantB/bans/{user}"),
                Some(&token),
                Some(json!({"reason": "Spam"})),
            )
            .await;
        refused(&format!("ban {user}"), status, &answer);
    }
    // A human of the second homeserver is a member like any other.
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            &format!("{path}/members/@alice:second.openmeet.invalid"),
            Some(&token),
            Some(json!({"role": "host"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_rooms_earlier_slug_declared_again_makes_a_new_room() {
    let daemon = daemon().await;
    let token = daemon.config.tenant_token("tenantA");
    let (old, new) = (
        "/v1/tenants/tenantA/rooms/group/old-slug",
        "/v1/tenants/tenantA/rooms/group/new-slug",
    );
    let body = json!({"name": "Slugs", "visibility": "public"});
    let (status, answer) = daemon
        .platform(Method::PUT, old, Some(&token), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = daemon
        .platform(
            Method::POST,
            "/v1/tenants/tenantA/rooms/group/old-slug/rename",
            Some(&token),
            Some(json!({"new_slug": "new-slug"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = daemon
        .platform(Method::DELETE, new, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    let (status, answer) = daemon
        .platform(Method::PUT, old, Some(&token), Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (_, revived) = daemon.platform(Method::GET, old, Some(&token), None).await;
    assert_eq!(
        (revived["slug"].as_str(), revived["status"].as_str()),
        (Some("old-slug"), Some("pending")),
        "{revived}"
    );
    let (_, deleted) = daemon.platform(Method::GET, new, Some(&token), None).await;
    assert_eq!(
        deleted["status"], "deleted",
        "the deleted room came back: {deleted}"
    );
}

/// `POST …/messages` as `tenant`, with an `Idempotency-Key` when given.
async fn post_message(
    daemon: &Daemon,
    tenant: &str,
    slug: &str,
    body: &str,
    key: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let path = format!("/v1/tenants/{tenant}/rooms/event/{slug}/messages");
    let token = daemon.config.tenant_token(tenant);
    let headers: Vec<(&str, &str)> = key
        .map(|key| ("Idempotency-Key", key))
        .into_iter()
        .collect();
    daemon
        .platform_raw(
            Method::POST,
            &path,
            Some(&token),
            &headers,
            Some(body.to_owned()),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_bad_input_or_to_no_room_is_refused_with_a_sentence_and_queues_nothing() {
    let daemon = daemon().await;
    let token = daemon.config.tenant_token("tenantA");
    let room = "/v1/tenants/tenantA/rooms/event/notices";
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            room,
            Some(&token),
            Some(json!({"name": "Notices", "visibility": "public"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let too_long = json!({"body": "x".repeat(20_000), "html": "y".repeat(20_000)}).to_string();
    let cases = [
        (r#"{}"#, None, "bad_body", "body"),
        (
            r#"{"body": "hi", "colour": "red"}"#,
            None,
            "bad_body",
            "colour",
        ),
        (r#"{"body": "  "}"#, None, "invalid_input", "body is empty"),
        (
            r#"{"body": "hi", "html": ""}"#,
            None,
            "invalid_input",
            "html is empty",
        ),
        (too_long.as_str(), None, "invalid_input", "at most 32768"),
        (
            r#"{"body": "hi", "msgtype": "m.emote"}"#,
            None,
            "invalid_input",
            "m.notice (the default) or m.text",
        ),
        (
            r#"{"body": "hi", "mentions": {"user_ids": ["ann"]}}"#,
            None,
            "invalid_input",
            "not a Matrix user id",
        ),
        (
            r#"{"body": "hi"}"#,
            Some("k".repeat(256)),
            "invalid_input",
            "at most 255",
        ),
    ];
    for (body, key, code, sentence) in cases {
        let (status, answer) =
            post_message(&daemon, "tenantA", "notices", body, key.as_deref()).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}: {answer}"
        );
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(sentence), "{body}: {error}");
    }
    let (status, answer) =
        post_message(&daemon, "tenantA", "nowhere", r#"{"body": "hi"}"#, None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{answer}"
    );
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("PUT the room first"),
        "{answer}"
    );
    let (status, answer) = daemon
        .platform(Method::DELETE, room, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) =
        post_message(&daemon, "tenantA", "notices", r#"{"body": "hi"}"#, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a deleted room takes no messages: {answer}"
    );

    let (code, jobs, stderr) = daemon
        .config
        .cli(&["jobs", "list", "--kind", "send_message"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(jobs.trim(), "", "a refused message queued a job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_answers_with_the_first_job_within_its_tenant() {
    let mut config = DaemonConfig::new("platform", None);
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    let daemon = Daemon::start(config).await;
    for tenant in ["tenantA", "tenantB"] {
        let (status, answer) = daemon
            .platform(
                Method::PUT,
                &format!("/v1/tenants/{tenant}/rooms/event/news"),
                Some(&daemon.config.tenant_token(tenant)),
                Some(json!({"name": "News", "visibility": "public"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    let body = r#"{"body": "Doors open at 7"}"#;
    let post = |tenant, key| post_message(&daemon, tenant, "news", body, key);
    let (status, first) = post("tenantA", Some("news-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(
        (
            first["job"]["kind"].as_str(),
            first["job"]["status"].as_str()
        ),
        (Some("send_message"), Some("queued"))
    );
    let (_, again) = post("tenantA", Some("news-1")).await;
    assert_eq!(again["job"]["id"], first["job"]["id"], "{again}");
    let (_, other_key) = post("tenantA", Some("news-2")).await;
    let (_, no_key) = post("tenantA", None).await;
    let (_, other_tenant) = post("tenantB", Some("news-1")).await;
    let ids: std::collections::BTreeSet<i64> = [&first, &other_key, &no_key, &other_tenant]
        .iter()
        .map(|answer| answer["job"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "each of these is a message of its own");
    let (code, jobs, stderr) = daemon
        .config
        .cli(&["jobs", "list", "--kind", "send_message"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(jobs.lines().count(), 4, "{jobs}");
}

on_both_backends!(
    a_user_move_hands_every_declaration_to_the_new_id_once_with_one_entry_and_one_event,
    a_user_move_is_refused_with_a_sentence_and_writes_nothing,
);

const OLD: &str = "@alice:test.openmeet.invalid";
const NEW: &str = "@alice-new:test.openmeet.invalid";

/// A daemon whose jobs do not run, on `backend`, with tenants A and B.
async fn move_daemon(backend: Backend) -> Daemon {
    let name = "user_move";
    let mut config = DaemonConfig::new(name, backend.database_url(name));
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    Daemon::start(config).await
}

/// A tenant's call with `X-OpenMeet-Actor`.
async fn tenant_call(
    daemon: &Daemon,
    method: Method,
    tenant: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token(tenant);
    daemon
        .platform_raw(
            method,
            &format!("/v1/tenants/{tenant}/{path}"),
            Some(&token),
            &[("x-openmeet-actor", "admin-7")],
            Some(body.to_string()),
        )
        .await
}

async fn move_user(daemon: &Daemon, from: &str, body: Value) -> (StatusCode, Value) {
    tenant_call(
        daemon,
        Method::POST,
        "tenantA",
        &format!("users/{from}/move"),
        body,
    )
    .await
}

/// The room's declared members as `(user_id, role, banned reason, muted)`.
async fn declared(daemon: &Daemon, tenant: &str, slug: &str) -> Vec<(String, Value, Value, bool)> {
    let room = daemon.get_room(tenant, "event", slug).await;
    room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["role"].clone(),
                m["banned"]["reason"].clone(),
                !m["muted"].is_null(),
            )
        })
        .collect()
}

/// The tenant's audit log and `user.moved` events.
async fn move_records(daemon: &Daemon, tenant: &str) -> (Vec<Value>, Vec<Value>) {
    let (_, log) = tenant_call(daemon, Method::GET, tenant, "moderation", Value::Null).await;
    let (_, feed) = tenant_call(daemon, Method::GET, tenant, "events", Value::Null).await;
    let moved = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "user.moved")
        .cloned()
        .collect();
    (log["entries"].as_array().unwrap().clone(), moved)
}

async fn a_user_move_hands_every_declaration_to_the_new_id_once_with_one_entry_and_one_event(
    backend: Backend,
) {
    let daemon = move_daemon(backend).await;
    let room =
        |members: Value| json!({"name": "Chat", "visibility": "private", "members": members});
    let put = |tenant: &'static str, slug: &'static str, body: Value| {
        let daemon = &daemon;
        async move { daemon.put_room(tenant, "event", slug, body).await }
    };
    put(
        "tenantA",
        "move-a",
        room(json!([{"user_id": OLD, "role": "moderator"}])),
    )
    .await;
    // The new id already there with the same role: the two merge.
    put(
        "tenantA",
        "move-b",
        room(json!([{"user_id": OLD, "role": "participant"}, {"user_id": NEW, "role": "participant"}])),
    )
    .await;
    put("tenantA", "move-c", room(json!([]))).await;
    put(
        "tenantB",
        "move-other",
        room(json!([{"user_id": OLD, "role": "host"}])),
    )
    .await;
    let ban = json!({"reason": "Spam links", "expires_in_seconds": 3600});
    let (status, answer) = tenant_call(
        &daemon,
        Method::PUT,
        "tenantA",
        &format!("rooms/event/move-c/bans/{OLD}"),
        ban,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    let (status, answer) = move_user(&daemon, OLD, json!({"to": NEW})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = &answer["job"];
    assert_eq!(job["kind"], "converge_tenant", "{answer}");

    assert_eq!(
        declared(&daemon, "tenantA", "move-a").await,
        [(NEW.to_owned(), json!("moderator"), Value::Null, false)]
    );
    assert_eq!(
        declared(&daemon, "tenantA", "move-b").await,
        [(NEW.to_owned(), json!("participant"), Value::Null, false)]
    );
    // The ban is carried to the new id and stays on the old one.
    assert_eq!(
        declared(&daemon, "tenantA", "move-c").await,
        [
            (NEW.to_owned(), Value::Null, json!("Spam links"), false),
            (OLD.to_owned(), Value::Null, json!("Spam links"), false),
        ]
    );
    let room_c = daemon.get_room("tenantA", "event", "move-c").await;
    let expiries: Vec<&Value> = room_c["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["banned"]["expires_at"])
        .collect();
    assert!(
        expiries[0].is_string() && expiries[0] == expiries[1],
        "{room_c}"
    );
    // Another tenant's declarations are its own.
    assert_eq!(
        declared(&daemon, "tenantB", "move-other").await,
        [(OLD.to_owned(), json!("host"), Value::Null, false)]
    );

    let (entries, moved) = move_records(&daemon, "tenantA").await;
    let moves: Vec<&Value> = entries.iter().filter(|e| e["action"] == "move").collect();
    assert_eq!(moves.len(), 1, "{entries:?}");
    assert_eq!(moves[0]["user_id"], OLD);
    assert_eq!(moves[0]["reason"], format!("Matrix account moved to {NEW}"));
    assert_eq!(moves[0]["actor"], "admin-7");
    assert_eq!(moves[0]["room"], Value::Null);
    assert_eq!(moves[0]["job"], job["id"]);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0]["room"], Value::Null);
    assert_eq!(
        moved[0]["data"],
        json!({
            "from": OLD,
            "to": NEW,
            "rooms": [{"kind": "event", "slug": "move-a"}, {"kind": "event", "slug": "move-b"}],
            "carried": 1,
            "job": job["id"],
        })
    );

    // The same move again changes nothing and answers with the earlier job.
    let (status, again) = move_user(&daemon, OLD, json!({"to": NEW})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["job"]["id"], job["id"], "{again}");
    let (entries_after, moved_after) = move_records(&daemon, "tenantA").await;
    assert_eq!(entries_after, entries);
    assert_eq!(moved_after, moved);
    assert_eq!(
        move_records(&daemon, "tenantB").await.1,
        Vec::<Value>::new()
    );
}

async fn a_user_move_is_refused_with_a_sentence_and_writes_nothing(backend: Backend) {
    let daemon = move_daemon(backend).await;
    let members =
        json!([{"user_id": OLD, "role": "participant"}, {"user_id": NEW, "role": "host"}]);
    daemon
        .put_room(
            "tenantA",
            "event",
            "move-clash",
            json!({"name": "Chat", "visibility": "private", "members": members}),
        )
        .await;
    let bot = "@openmeet-bot-tenanta:test.openmeet.invalid";
    let refused = [
        (
            OLD,
            json!({}),
            400,
            "to: is required: give the user's new Matrix id",
        ),
        (OLD, json!({"to": "alice"}), 400, "to: "),
        (OLD, json!({"to": "@alice:elsewhere.example"}), 400, "to: "),
        (OLD, json!({"to": OLD}), 400, "the id being moved"),
        (OLD, json!({"to": NEW, "too": 1}), 400, "unknown field"),
        (
            OLD,
            json!({"to": bot}),
            400,
            "one of the appservice's own users",
        ),
        (
            bot,
            json!({"to": NEW}),
            400,
            "one of the appservice's own users",
        ),
        (
            "@nobody:test.openmeet.invalid",
            json!({"to": NEW}),
            404,
            "nothing in tenant tenantA names @nobody:test.openmeet.invalid",
        ),
        (
            OLD,
            json!({"to": NEW}),
            409,
            "event/move-clash (@alice-new:test.openmeet.invalid is host, @alice:test.openmeet.invalid is participant)",
        ),
    ];
    for (from, body, status, sentence) in refused {
        let (got, answer) = move_user(&daemon, from, body.clone()).await;
        assert_eq!(got.as_u16(), status, "{from} {body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(sentence), "{from} {body}: {answer}");
        let code = match status {
            400 if sentence == "unknown field" => "bad_body",
            400 => "invalid_input",
            404 => "not_found",
            _ => "conflict",
        };
        assert_eq!(answer["code"], code, "{answer}");
    }
    assert_eq!(
        declared(&daemon, "tenantA", "move-clash").await,
        [
            (NEW.to_owned(), json!("host"), Value::Null, false),
            (OLD.to_owned(), json!("participant"), Value::Null, false),
        ]
    );
    assert_eq!(move_records(&daemon, "tenantA").await, (vec![], vec![]));

    // Once the platform says which role is meant, the move goes through.
    let (status, answer) = tenant_call(
        &daemon,
        Method::PUT,
        "tenantA",
        &format!("rooms/event/move-clash/members/{NEW}"),
        json!({"role": "participant"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, answer) = move_user(&daemon, OLD, json!({"to": NEW})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
}
