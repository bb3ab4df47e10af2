#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The calls "across the tenant" (DESIGN §7.3) over HTTP on both databases, without a homeserver
//! (jobs queue but do not run): tenant staff (stored, listed, audited, refused with a sentence)
//! and bot direct messages (one row and job per POST, an `Idempotency-Key` answered with the first
//! job, bad users refused). With Synapse: `tests/e2e/staff.rs`, `tests/e2e/direct_messages.rs`.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Backend;
use support::daemon::{Daemon, DaemonConfig};

const ANN: &str = "@ann:test.openmeet.invalid";

on_both_backends!(
    staff_are_stored_listed_audited_and_bad_input_is_refused_with_a_sentence,
    a_direct_message_queues_one_job_per_key_and_refuses_our_own_users,
);

async fn daemon(backend: Backend, name: &str) -> Daemon {
    let mut config = DaemonConfig::new(name, backend.database_url(name));
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    Daemon::start(config).await
}

async fn call(
    daemon: &Daemon,
    method: Method,
    tenant: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let token = daemon.config.tenant_token(tenant);
    daemon
        .platform_raw(
            method,
            &format!("/v1/tenants/{tenant}/{path}"),
            Some(&token),
            headers,
            body.map(|b| b.to_string()),
        )
        .await
}

async fn staff_are_stored_listed_audited_and_bad_input_is_refused_with_a_sentence(
    backend: Backend,
) {
    let daemon = daemon(backend, "staff").await;
    let actor = [("x-openmeet-actor", "admin-7")];
    let path = format!("staff/{ANN}");
    let (status, put) = call(
        &daemon,
        Method::PUT,
        "tenantA",
        &path,
        &actor,
        Some(json!({"role": "moderator"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{put}");
    assert_eq!(put["job"]["kind"], "converge_tenant", "{put}");
    // The same again changes nothing: the same fan-out answers.
    let (_, again) = call(
        &daemon,
        Method::PUT,
        "tenantA",
        &path,
        &actor,
        Some(json!({"role": "moderator"})),
    )
    .await;
    assert_eq!(again["job"]["id"], put["job"]["id"], "{again}");
    let (_, admin) = call(
        &daemon,
        Method::PUT,
        "tenantA",
        &path,
        &actor,
        Some(json!({"role": "admin"})),
    )
    .await;
    let (status, one) = call(&daemon, Method::GET, "tenantA", &path, &[], None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        (
            one["role"].as_str(),
            one["level"].as_i64(),
            one["actor"].as_str()
        ),
        (Some("admin"), Some(75), Some("admin-7"))
    );
    let (_, list) = call(&daemon, Method::GET, "tenantA", "staff", &[], None).await;
    assert_eq!(list["staff"].as_array().unwrap().len(), 1, "{list}");
    let (_, other) = call(&daemon, Method::GET, "tenantB", "staff", &[], None).await;
    assert_eq!(
        other["staff"],
        json!([]),
        "another tenant's staff are its own"
    );

    let refused = [
        (json!({"role": "owner"}), "admin, moderator"),
        (json!({}), "admin, moderator"),
        (json!({"role": "admin", "level": 90}), "unknown field"),
    ];
    for (body, sentence) in refused {
        let (status, answer) = call(
            &daemon,
            Method::PUT,
            "tenantA",
            &path,
            &[],
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(sentence),
            "{body}: {answer}"
        );
    }
    let bot = "@openmeet-bot-tenanta:test.openmeet.invalid";
    for user in [
        bot,
        "@openmeet-bot:test.openmeet.invalid",
        "ann",
        "@ann:elsewhere.example",
    ] {
        let (status, answer) = call(
            &daemon,
            Method::PUT,
            "tenantA",
            &format!("staff/{user}"),
            &[],
            Some(json!({"role": "admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{user}: {answer}");
        assert_eq!(answer["code"], "invalid_input", "{user}: {answer}");
    }

    let (status, removed) = call(&daemon, Method::DELETE, "tenantA", &path, &actor, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{removed}");
    let (status, _) = call(&daemon, Method::GET, "tenantA", &path, &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, log) = call(&daemon, Method::GET, "tenantA", "moderation", &[], None).await;
    let entries: Vec<(&str, Option<&str>, &str)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["reason"].as_str(),
                e["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("staff", Some("moderator"), "admin-7"),
            ("staff", Some("moderator"), "admin-7"),
            ("staff", Some("admin"), "admin-7"),
            ("unstaff", None, "admin-7"),
        ],
        "one entry per accepted call, none for a refused one"
    );
    // Jobs do not run here: a changed role folds into the fan-out still waiting (it reads the
    // staff when it runs).
    assert_eq!(admin["job"]["id"], put["job"]["id"], "{admin}");
    assert_eq!(admin["job"]["status"], "queued", "{admin}");
}

async fn a_direct_message_queues_one_job_per_key_and_refuses_our_own_users(backend: Backend) {
    let daemon = daemon(backend, "direct").await;
    let path = format!("users/{ANN}/messages");
    let key = [("Idempotency-Key", "welcome-1")];
    let body = json!({"body": "Welcome"});
    let (status, first) = call(
        &daemon,
        Method::POST,
        "tenantA",
        &path,
        &key,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["job"]["kind"], "send_direct_message", "{first}");
    let (_, again) = call(
        &daemon,
        Method::POST,
        "tenantA",
        &path,
        &key,
        Some(body.clone()),
    )
    .await;
    assert_eq!(again["job"]["id"], first["job"]["id"], "{again}");
    let (_, unkeyed) = call(
        &daemon,
        Method::POST,
        "tenantA",
        &path,
        &[],
        Some(body.clone()),
    )
    .await;
    let (_, other_tenant) = call(
        &daemon,
        Method::POST,
        "tenantB",
        &path,
        &key,
        Some(body.clone()),
    )
    .await;
    assert_ne!(unkeyed["job"]["id"], first["job"]["id"]);
    assert_ne!(other_tenant["job"]["id"], first["job"]["id"]);
    let (code, jobs, stderr) =
        daemon
            .config
            .cli(&["jobs", "list", "--kind", "send_direct_message"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(jobs.lines().count(), 3, "{jobs}");

    for user in [
        "@openmeet-bot-tenanta:test.openmeet.invalid",
        "ann",
        "@ann:elsewhere.example",
    ] {
        let (status, answer) = call(
            &daemon,
            Method::POST,
            "tenantA",
            &format!("users/{user}/messages"),
            &[],
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_input")),
            "{user}: {answer}"
        );
    }
    let (status, answer) = call(
        &daemon,
        Method::POST,
        "tenantA",
        &path,
        &[],
        Some(json!({"body": " "})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("body"),
        "{answer}"
    );
}
