#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The platform API's OpenAPI document: what the daemon serves at `GET /v1/openapi.json` (without
//! a token) is byte for byte the checked-in `docs/platform-api.openapi.json` and what `openapi`
//! prints, holds no secret, and every operation it lists is a route the daemon has. The fuzzer
//! run against it is `tests/openapi_fuzz.rs`.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use support::daemon::{BIN, Daemon, DaemonConfig};
use support::matrix_client::http_client;

const CHECKED_IN: &str = "docs/platform-api.openapi.json";

async fn daemon() -> Daemon {
    let mut config = DaemonConfig::new("openapi", None);
    let admin_token = "admin-token-for-the-openapi-test".to_owned();
    config.extra_yaml = format!("jobs:\n  enabled: false\nadmin_token: {admin_token}\n");
    config.extra_secrets.push(admin_token);
    Daemon::start(config).await
}

async fn served(daemon: &Daemon) -> String {
    let url = format!(
        "http://127.0.0.1:{}/v1/openapi.json",
        daemon.config.platform_port
    );
    let response = http_client()
        .get(url)
        .send()
        .await
        .expect("the daemon answers");
    assert_eq!(response.status(), StatusCode::OK, "served without a token");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/json");
    response.text().await.expect("a text body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_checked_in_one_and_holds_no_secret() {
    let daemon = daemon().await;
    let served = served(&daemon).await;
    let path = support::python::repo_root().join(CHECKED_IN);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if served != checked_in {
        let line = served
            .lines()
            .zip(checked_in.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| served.lines().count().min(checked_in.lines().count()));
        panic!(
            "{CHECKED_IN} is not what the daemon serves at GET /v1/openapi.json (first difference at line {}): \
             regenerate it with `make openapi` (or `openmeet-appservice openapi > {CHECKED_IN}`) and commit it",
            line + 1
        );
    }
    let printed = std::process::Command::new(BIN)
        .arg("openapi")
        .output()
        .expect("run openapi");
    assert!(printed.status.success(), "{printed:?}");
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap(),
        served,
        "`openapi` prints what the daemon serves"
    );
    daemon
        .config
        .assert_no_secret_in("the OpenAPI document", &served);
    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
}

/// `{name}` in a documented path, filled with a value the router takes.
fn sample(name: &str) -> &'static str {
    match name {
        "tenant" => "tenantA",
        "kind" => "event",
        "slug" => "summer-party",
        "user_id" => "@alice:test.openmeet.invalid",
        "id" => "1",
        other => panic!("a path parameter the test does not know: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_a_route_and_asks_for_the_token_it_names() {
    let daemon = daemon().await;
    let document: Value = serde_json::from_str(&served(&daemon).await).unwrap();
    let mut operations = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        let path = template
            .split('/')
            .map(|segment| match segment.strip_prefix('{') {
                Some(name) => sample(name.trim_end_matches('}')).replace('@', "%40"),
                None => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, answer) = daemon.platform(method.clone(), &path, None, None).await;
            let secured = operation.get("security").is_some();
            let what = format!("{method} {template} without a token");
            assert_ne!(answer["code"], "method_not_allowed", "{what}: {answer}");
            if secured {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {answer}");
                assert_eq!(answer["code"], "missing_token", "{what}");
                let documented = &operation["responses"]["401"]["content"]["application/json"];
                assert_eq!(
                    documented["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{what}: the 401 is documented"
                );
            } else {
                assert_eq!(status, StatusCode::OK, "{what}: {answer}");
            }
        }
    }
    assert!(operations >= 21, "only {operations} operations documented");
}
