#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The platform API of the real daemon over HTTP, without a homeserver (jobs queue but do not run):
//! the answers that do not depend on Synapse. With Synapse: `tests/e2e/rooms.rs`.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;

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
