#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The property-based API fuzzer Schemathesis (PyPI, pinned in the test virtualenv) against the
//! OpenAPI document a running daemon serves, on SQLite and on PostgreSQL: every documented
//! operation, examples, coverage (edge and invalid values) and fuzzing phases, a fixed seed and a
//! bounded number of cases. Checks: no 5xx, every answer has a documented status and content
//! type, and its body conforms to the documented schema — so every error is the JSON
//! `{"error", "code"}` of DESIGN §7. The homeserver is the fake one: this is the API contract,
//! not Matrix.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};

use support::Backend;
use support::daemon::{Daemon, DaemonConfig};
use support::fake_homeserver::FakeHomeserver;

const SEED: u64 = 20_261_205;
/// Cases per operation and phase: about a minute and a half per backend on two cores.
const MAX_EXAMPLES: u32 = 25;
const SLUGS: [&str; 2] = ["fuzz-party", "fuzz-picnic"];
/// The room `DELETE …/rooms/{kind}/{slug}` mostly takes, so that the others stay declared.
const DOOMED: &str = "fuzz-doomed";
/// Users the path and body parameters mostly name (registered on the fake, as real members are).
const USERS: [&str; 2] = ["alice", "bob"];
const CHECKS: [&str; 4] = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
];

/// Schemathesis' config: the checks, the seed, the tokens (read from the environment, never
/// written to disk) and values the path and body parameters mostly take, so that most cases reach
/// declared rooms and known users instead of stopping at a 404 or 400.
fn schemathesis_toml(server_name: &str) -> String {
    let users = USERS.map(|name| format!("@{name}:{server_name}"));
    let checks: String = CHECKS
        .iter()
        .map(|check| format!("{check}.enabled = true\n"))
        .collect();
    format!(
        "seed = {SEED}\nworkers = 1\n\n\
         [generation]\nmax-examples = {MAX_EXAMPLES}\ndatabase = \"none\"\n\n\
         [checks]\nenabled = false\n{checks}\n\
         [auth.openapi.tenant_token]\nbearer = \"${{OPENMEET_FUZZ_TENANT_TOKEN}}\"\n\n\
         [auth.openapi.admin_token]\nbearer = \"${{OPENMEET_FUZZ_ADMIN_TOKEN}}\"\n\n\
         [parameters]\n\
         \"path.tenant\" = {{ dictionary = \"tenants\", probability = 0.9 }}\n\
         \"path.slug\" = {{ dictionary = \"slugs\", probability = 0.7 }}\n\
         \"path.user_id\" = {{ dictionary = \"users\", probability = 0.7 }}\n\
         \"query.user_id\" = {{ dictionary = \"users\", probability = 0.7 }}\n\
         \"body.user_id\" = {{ dictionary = \"users\", probability = 0.7 }}\n\
         \"body.to\" = {{ dictionary = \"users\", probability = 0.7 }}\n\
         \"body.members[*].user_id\" = {{ dictionary = \"users\", probability = 0.7 }}\n\
         \"body.role\" = {{ dictionary = \"roles\", probability = 0.8 }}\n\
         \"body.members[*].role\" = {{ dictionary = \"roles\", probability = 0.8 }}\n\n\
         [[operations]]\ninclude-operation-id = \"delete_room\"\n\
         parameters = {{ \"path.slug\" = {{ dictionary = \"doomed\", probability = 0.7 }} }}\n\n\
         [dictionaries.doomed]\nvalues = [\"{DOOMED}\"]\n\n\
         [dictionaries.tenants]\nvalues = [\"tenantA\"]\n\n\
         [dictionaries.slugs]\nvalues = {slugs}\n\n\
         [dictionaries.users]\nvalues = {users}\n\n\
         [dictionaries.roles]\nvalues = [\"host\", \"moderator\", \"participant\", \"member\"]\n",
        slugs = json!(SLUGS),
        users = json!(users),
    )
}

/// Registers `localpart` on the fake homeserver, as the appservice may.
async fn register(homeserver: &str, as_token: &str, localpart: &str) {
    let response = support::matrix_client::http_client()
        .post(format!("{homeserver}/_matrix/client/v3/register"))
        .bearer_auth(as_token)
        .header("content-type", "application/json")
        .body(json!({"type": "m.login.application_service", "username": localpart}).to_string())
        .send()
        .await
        .expect("the fake homeserver answers");
    assert!(response.status().is_success(), "{response:?}");
}

/// What one run found, from Schemathesis' JSON report.
struct Summary {
    operations: u64,
    tested: u64,
    cases: u64,
    failing_cases: u64,
    unique_failures: u64,
    errors: usize,
    /// Per operation, the cases the API accepted (2xx) over all phases.
    accepted: Vec<(String, u64)>,
}

impl Summary {
    fn read(report: &Path) -> Self {
        let text = std::fs::read_to_string(report)
            .unwrap_or_else(|e| panic!("Schemathesis wrote no report {}: {e}", report.display()));
        let report: Value = serde_json::from_str(&text).expect("the report is JSON");
        let number = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("no {pointer} in the report"))
        };
        let mut accepted: Vec<(String, u64)> = report["valid_rates"]
            .as_object()
            .expect("valid_rates")
            .iter()
            .map(|(operation, phases)| {
                let sum = phases
                    .as_object()
                    .unwrap()
                    .values()
                    .filter_map(|phase| phase["accepted"].as_u64())
                    .sum();
                (operation.clone(), sum)
            })
            .collect();
        accepted.sort();
        Self {
            operations: number("/operations/total"),
            tested: number("/operations/tested"),
            cases: number("/test_cases/generated"),
            failing_cases: number("/test_cases/with_failures"),
            unique_failures: number("/test_cases/unique_failures"),
            errors: report["errors"].as_array().map_or(0, Vec::len),
            accepted,
        }
    }
}

async fn the_fuzzer_finds_no_failure(backend: Backend) {
    let python = support::python::venv_python();
    let mut config = DaemonConfig::new("openapi_fuzz", backend.database_url("openapi_fuzz"));
    let fake =
        FakeHomeserver::start(&config.server_name, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    // The fake homeserver has no capabilities endpoint to pick a room version from.
    config.room_version = Some("10".into());
    let admin_token = format!("admin{}", config.tokens.tenant_token);
    config.extra_yaml = format!("admin_token: {admin_token}\n");
    config.extra_secrets.push(admin_token.clone());
    let daemon = Daemon::start(config).await;
    let tenant_token = daemon.config.tenant_token("tenantA");
    for user in USERS {
        register(&fake.url, &daemon.config.tokens.as_token, user).await;
    }
    for slug in SLUGS.into_iter().chain([DOOMED]) {
        let body = json!({"name": "Fuzz Chat", "visibility": "private", "members": [
            {"user_id": format!("@alice:{}", daemon.config.server_name), "role": "host"}]});
        daemon.declare("tenantA", "event", slug, body).await;
    }

    let dir = &daemon.config.dir;
    let config_file = dir.join("schemathesis.toml");
    std::fs::write(&config_file, schemathesis_toml(&daemon.config.server_name)).unwrap();
    let report = dir.join("schemathesis-report.json");
    let url = format!(
        "http://127.0.0.1:{}/v1/openapi.json",
        daemon.config.platform_port
    );
    let started = std::time::Instant::now();
    let output = tokio::task::spawn_blocking({
        let (python, dir, config_file, report) = (python, dir.clone(), config_file, report.clone());
        move || {
            Command::new(python)
                .args(["-m", "schemathesis.cli", "--config-file"])
                .arg(&config_file)
                .args(["run", &url, "--phases", "examples,coverage,fuzzing"])
                // The document's own operation is left out unless a filter names it.
                .args(["--include-path-regex", "^/v1/", "--no-color"])
                .args(["--report", "json", "--report-json-path"])
                .arg(&report)
                .env("OPENMEET_FUZZ_TENANT_TOKEN", &tenant_token)
                .env("OPENMEET_FUZZ_ADMIN_TOKEN", &admin_token)
                .env("HOME", &dir)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .output()
                .expect("run schemathesis from the test virtualenv")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary = Summary::read(&report);
    println!(
        "schemathesis on {backend:?} in {:.0?}: {} of {} operations tested, {} test cases, \
         {} with failures ({} unique), {} errors (seed {SEED}, checks {})",
        started.elapsed(),
        summary.tested,
        summary.operations,
        summary.cases,
        summary.failing_cases,
        summary.unique_failures,
        summary.errors,
        CHECKS.join(", ")
    );
    for (operation, accepted) in &summary.accepted {
        println!("  {accepted:>4} accepted  {operation}");
    }
    daemon
        .config
        .assert_no_secret_in("Schemathesis' output", &format!("{stdout}{stderr}"));
    let (_, document) = daemon
        .platform(Method::GET, "/v1/openapi.json", None, None)
        .await;
    let documented: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let found = summary.failing_cases + summary.unique_failures + summary.errors as u64;
    assert!(
        output.status.success() && found == 0,
        "Schemathesis found failures on {backend:?} (exit {}); its report:\n{stdout}\n{stderr}",
        output.status
    );
    assert_eq!(
        (summary.operations, summary.tested),
        (documented as u64, documented as u64),
        "every documented operation is tested:\n{stdout}"
    );
    let unreached: Vec<&str> = summary
        .accepted
        .iter()
        .filter(|(_, accepted)| *accepted == 0)
        .map(|(operation, _)| operation.as_str())
        .collect();
    assert!(
        unreached.is_empty(),
        "no case got past validation to the handler's work for {unreached:?}: \
         the dictionaries in schemathesis.toml no longer fit the API"
    );
    assert!(
        summary.cases >= documented as u64 * 10,
        "only {} cases:\n{stdout}",
        summary.cases
    );
}

on_both_backends!(the_fuzzer_finds_no_failure);
