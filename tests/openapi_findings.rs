#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! What probing the platform API along its OpenAPI document turned up, each kept fixed on both
//! databases: the daemon over HTTP without a homeserver (jobs queue but do not run), like
//! `tests/platform_api.rs`.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Backend;
use support::daemon::{Daemon, DaemonConfig};

async fn daemon(backend: Backend) -> Daemon {
    let mut config = DaemonConfig::new("findings", backend.database_url("openapi_findings"));
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    Daemon::start(config).await
}

/// A reason holding a NUL was a 503 on PostgreSQL (which cannot store one in text) and stored
/// as given on SQLite; any control character but a line break or tab is now a 400 naming the
/// field, on both, and nothing is written.
async fn a_reason_with_a_control_character_is_a_400_and_writes_nothing(backend: Backend) {
    let daemon = daemon(backend).await;
    let token = daemon.config.tenant_token("tenantA");
    let user = format!("@bob:{}", daemon.config.server_name);
    let room = "/v1/tenants/tenantA/rooms/event/findings";
    daemon
        .put_room(
            "tenantA",
            "event",
            "findings",
            json!({"name": "Findings", "visibility": "private", "members": [
                {"user_id": user, "role": "participant"}]}),
        )
        .await;
    let calls = [
        (Method::PUT, format!("{room}/bans/{user}")),
        (Method::PUT, format!("/v1/tenants/tenantA/bans/{user}")),
        (Method::PUT, format!("{room}/mutes/{user}")),
        (Method::DELETE, format!("{room}/mutes/{user}")),
        (Method::DELETE, format!("/v1/tenants/tenantA/bans/{user}")),
        (Method::POST, format!("{room}/redactions")),
        (Method::POST, "/v1/tenants/tenantA/redactions".into()),
        (Method::DELETE, format!("{room}/members/{user}")),
    ];
    for bad in ["Spam\u{0}", "Sp\u{7}am"] {
        for (method, path) in &calls {
            let body = if path.ends_with("redactions") {
                json!({"user_id": user, "reason": bad})
            } else {
                json!({"reason": bad})
            };
            let (status, answer) = daemon
                .platform(method.clone(), path, Some(&token), Some(body))
                .await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_input")),
                "{method} {path} with {bad:?}: {answer}"
            );
            let error = answer["error"].as_str().unwrap();
            assert!(error.starts_with("reason: "), "{error}");
            assert!(error.contains("control character"), "{error}");
        }
    }
    let (_, log) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/moderation",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(log["entries"], json!([]), "nothing was written");
    let member = daemon.get_room("tenantA", "event", "findings").await["members"][0].clone();
    assert_eq!(member["role"], "participant", "{member}");

    // Line breaks and tabs stay allowed.
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            &format!("{room}/bans/{user}"),
            Some(&token),
            Some(json!({"reason": "Spam\n\tagain"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (_, log) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/moderation",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(log["entries"][0]["reason"], "Spam\n\tagain");
}

/// An optional body sent as JSON `null` (the document's schema for it allows `null`) reads as no
/// body, as an empty one always did.
async fn an_optional_body_may_be_null(backend: Backend) {
    let daemon = daemon(backend).await;
    let token = daemon.config.tenant_token("tenantA");
    let user = format!("@carol:{}", daemon.config.server_name);
    daemon
        .put_room(
            "tenantA",
            "event",
            "nulls",
            json!({"name": "Nulls", "visibility": "public"}),
        )
        .await;
    for path in [
        format!("/v1/tenants/tenantA/rooms/event/nulls/members/{user}"),
        format!("/v1/tenants/tenantA/rooms/event/nulls/mutes/{user}"),
        format!("/v1/tenants/tenantA/mutes/{user}"),
    ] {
        let (status, answer) = daemon
            .platform(Method::DELETE, &path, Some(&token), Some(Value::Null))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "DELETE {path} null: {answer}");
    }
    // A required body is still required.
    let (status, answer) = daemon
        .platform(
            Method::PUT,
            "/v1/tenants/tenantA/rooms/event/nulls",
            Some(&token),
            Some(Value::Null),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_body")),
        "{answer}"
    );
}

on_both_backends!(
    a_reason_with_a_control_character_is_a_400_and_writes_nothing,
    an_optional_body_may_be_null,
);
