//! The Helm chart (`helm/openmeet-appservice`) and the container image's run-time contract.
//!
//! The chart is linted and rendered with Helm's own code (Helm v4 as a library, PyPI
//! `helm-python-sdk`; there is no helm binary and no cluster here), every rendered object is
//! validated against a pinned Kubernetes version's schemas (PyPI `kubernetes-validate`; the
//! ServiceMonitor against the CRD fields the chart uses), and `tests/support/helm_chart.py`
//! returns all of it as JSON. The registration the chart renders is compared byte for byte with
//! what `openmeet-appservice registration` prints for the config the chart renders, and a real
//! Synapse loads it and pings a daemon running on that config. The image's run-time contract —
//! the binary alone, as a non-root user, with a read-only root and only `/tmp` writable — is
//! checked in a minimal root built from the binary and the libraries it links.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use support::python::{free_port, repo_root, scratch_dir, support_dir, venv_python};
use support::synapse::{Synapse, start_both};

const BIN: &str = env!("CARGO_BIN_EXE_openmeet-appservice");
/// The Kubernetes version the chart is linted for and validated against.
const KUBE_VERSION: &str = "1.33.0";
const NAMESPACE: &str = "chat";
/// Where the chart mounts the secrets; the rendered config's `*_file` keys point into it.
const SECRETS_DIR: &str = "/run/secrets/openmeet-appservice";
const E2E_SERVER_NAME: &str = "helm.test";
/// The e2e case's second homeserver (`homeservers[0]`, id `second`).
const E2E_SECOND_SERVER_NAME: &str = "helm-second.test";

/// Tokens given inline, so that checksums and registrations can be compared between renders.
fn fixed_tokens() -> Value {
    json!({
        "asToken": "as-0123456789abcdef0123456789abcdef",
        "hsToken": ["hs-current-0123456789abcdef01234567", "hs-previous-0123456789abcdef0123456"],
        "adminToken": false,
    })
}

fn fixed_tenants(token: &str) -> Value {
    json!([{"id": "tenantA", "name": "Tenant A", "token": token}])
}

/// Tokens that are hard to quote the way the daemon's YAML serializer does; each becomes the
/// as_token of one render whose registration must match the binary's byte for byte.
const AWKWARD_TOKENS: &[&str] = &[
    "0123456789012345678",
    "12345678901234567890123",
    "1234567890123456e10",
    "1234567890123456e999",
    "0x1234567890abcdef",
    "-leading-dash-0123456789",
    "@leading-at-0123456789ab",
    "%leading-percent-0123456",
    "inner#hash-0123456789abc",
    "trailing-colon-0123456789:",
    "inner:colon-0123456789abc",
    "it's-a-quote-0123456789a",
    "true-but-longer-0123456789",
    "...leading-dots-012345678",
];

/// Two homeservers besides the top-level one: eu-tenant-a with inline tokens (during an hs_token
/// rotation), its own bot prefix, registration URL and Synapse peer; b2 with `b2_tokens`.
fn homeserver_entries(eu_hs_token: &str, b2_tokens: Value) -> Value {
    json!([
        {"id": "eu-tenant-a",
         "homeserver": {"url": "https://matrix-a.example.org", "server_name": "matrix-a.example.org",
                        "check_interval_seconds": 30},
         "appservice": {"bot_prefix": "openmeet-bot-a-"},
         "tokens": {"asToken": "as-eu-a-0123456789abcdef0123",
                    "hsToken": [eu_hs_token, "hs-eu-a-previous-0123456789abcdef"]},
         "registration": {"url": "https://appservice.openmeet.example:443/"},
         "networkPolicy": {"synapseSelector": {"ipBlock": {"cidr": "203.0.113.10/32"}}}},
        {"id": "b2",
         "homeserver": {"url": "http://synapse.matrix-b.svc:8448", "server_name": "matrix-b.example"},
         "appservice": {"id": "openmeet-b"},
         "tokens": b2_tokens},
    ])
}

fn homeserver_tenants() -> Value {
    json!([
        {"id": "tenantA", "name": "Tenant A", "token": "tenant-token-a-0123456789abcdef", "homeserver": "eu-tenant-a"},
        {"id": "tenantB", "name": "Tenant B", "token": "tenant-token-b-0123456789abcdef"},
        {"id": "tenantC", "name": "Tenant C", "token": "tenant-token-c-0123456789abcdef", "homeserver": "b2"},
    ])
}

fn fixed_b2_tokens() -> Value {
    json!({"asToken": "as-b2-0123456789abcdef0123456", "hsToken": "hs-b2-0123456789abcdef0123456"})
}

/// What an earlier install stored for homeserver b2, and the Secret an operator made for
/// eu-tenant-a.
fn stored_homeserver_tokens() -> Value {
    let mut stored = stored_tokens();
    stored["homeserver.b2.as_token"] = json!("stored-b2-as-0123456789abcdef");
    stored["homeserver.b2.hs_token"] = json!("stored-b2-hs-0123456789abcdef\n");
    stored
}

/// The release's ConfigMap as an earlier install left it (the part the chart reads back: which
/// homeserver each tenant was on).
fn previous_config() -> Value {
    json!({"om-openmeet-appservice": {"config.yaml":
        "tenants:\n- id: tenantA\n  homeserver: eu-tenant-a\n  name: Tenant A\n- id: tenantB\n  name: Tenant B\n- id: tenantC\n  homeserver: b2\n  name: Tenant C\n"}})
}

fn operator_homeserver_secret() -> Value {
    json!({"as_token": "operator-eu-as-0123456789abcdef", "hs_token": "operator-eu-hs-0123456789abcdef\n"})
}

/// What the tokens Secret of an earlier install holds.
fn stored_tokens() -> Value {
    json!({
        "as_token": "stored-as-0123456789abcdef0123",
        "hs_token": "stored-hs-new-0123456789abcdef\nstored-hs-old-0123456789abcdef\n",
        "admin_token": "stored-admin-0123456789abcdef",
        "tenant.tenantA": "stored-tenant-0123456789abcdef",
    })
}

struct Rendered {
    /// The answer of helm_chart.py (see its docstring).
    answer: Value,
    /// The Secrets the stand-in cluster of each case held (by case name).
    clusters: BTreeMap<String, Value>,
    /// The free port the e2e case's registration sends Synapse to.
    e2e_appservice_port: u16,
}

/// Every render this test binary looks at, made in one run of helm_chart.py.
fn rendered() -> &'static Rendered {
    static RENDERED: OnceLock<Rendered> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let e2e_appservice_port = free_port();
        let mut cases = vec![
            case("default", json!({})),
            case(
                "postgres",
                json!({
                    "replicaCount": 3,
                    "database": {"existingSecret": "appservice-db", "existingSecretKey": "url"},
                    "tokens": {"existingSecret": "appservice-tokens"},
                    "tenants": [
                        {"id": "lsdfaopkljdfs", "name": "OpenMeet",
                         "existingSecret": "tenant-tokens", "existingSecretKey": "openmeet"},
                        {"id": "ci=Tenant", "name": "CI"},
                    ],
                    "networkPolicy": {"enabled": true},
                    "serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}},
                }),
            ),
            case(
                "webhooks",
                json!({
                    "database": {"url": "postgres://as:secret@db/as"},
                    "tokens": fixed_tokens(),
                    "tenants": [
                        {"id": "tenantA", "name": "Tenant A", "token": "tenant-token-0123456789abcdef",
                         "webhook": {"url": "http://openmeet-api.openmeet.svc:3000/matrix/events",
                                     "existingSecret": "webhook-secrets", "existingSecretKey": "tenantA"}},
                        {"id": "b=Tenant", "name": "B", "token": "tenant-token-b-0123456789abcdef",
                         "webhook": {"url": "https://hooks.example.org/b", "existingSecret": "webhook-secrets"}},
                        {"id": "noHook", "name": "No webhook", "token": "tenant-token-c-0123456789abcdef",
                         "serverDirectory": true},
                    ],
                    "networkPolicy": {"enabled": true, "egress": {
                        "enabled": true,
                        "databaseSelector": {"podSelector": {"matchLabels": {"app": "postgres"}}},
                        "extra": [{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}],
                    }},
                }),
            ),
            case(
                "webhooks-platform-ports",
                json!({
                    "tenants": [{"id": "tenantA", "name": "Tenant A",
                                 "webhook": {"url": "http://openmeet-api:80/hooks", "existingSecret": "webhook-secrets"}}],
                    "networkPolicy": {"enabled": true, "egress": {"enabled": true, "platformPorts": [3000], "synapsePorts": [8008, 8448]}},
                }),
            ),
            case(
                "postgres-inline-url",
                json!({"replicaCount": 2, "database": {"url": "postgres://as:secret@db/as"}}),
            ),
            case(
                "fixed",
                json!({"tokens": fixed_tokens(), "tenants": fixed_tenants("tenant-token-0123456789abcdef")}),
            ),
            case(
                "fixed-again",
                json!({"tokens": fixed_tokens(), "tenants": fixed_tenants("tenant-token-0123456789abcdef")}),
            ),
            case(
                "fixed-other-config",
                json!({"tokens": fixed_tokens(), "tenants": fixed_tenants("tenant-token-0123456789abcdef"),
                       "config": {"homeserver": {"url": "http://synapse:8008", "server_name": "matrix.example.org"},
                                  "appservice": {"id": "openmeet", "sender_localpart": "openmeet-bot", "bot_prefix": "openmeet-bot-"},
                                  "logging": {"level": "debug", "format": "json"}}}),
            ),
            case(
                "fixed-other-tenant-token",
                json!({"tokens": fixed_tokens(), "tenants": fixed_tenants("tenant-token-changed-0123456789")}),
            ),
            case(
                "e2e",
                json!({
                    "config": {
                        "homeserver": {"url": "http://synapse:8008", "server_name": E2E_SERVER_NAME},
                        "appservice": {"id": "openmeet-helm", "sender_localpart": "openmeet-bot", "bot_prefix": "openmeet-bot-"},
                        "logging": {"level": "debug", "format": "human"},
                    },
                    "registration": {"url": format!("http://127.0.0.1:{e2e_appservice_port}/")},
                    "homeservers": [{"id": "second",
                                     "homeserver": {"url": "http://synapse-second:8008", "server_name": E2E_SECOND_SERVER_NAME}}],
                    "tenants": [{"id": "tenantA", "name": "Tenant A"},
                                {"id": "ciTenantB", "name": "CI Tenant B", "homeserver": "second"}],
                }),
            ),
            case(
                "distinct-sender",
                json!({"config": {
                    "homeserver": {"url": "https://matrix.example.org:8448", "server_name": "chat.example.org:8448"},
                    "appservice": {"id": "om", "sender_localpart": "openmeet", "bot_prefix": "om.bot_"},
                }, "registration": {"url": "https://appservice.example.org:443"}}),
            ),
        ];
        for (name, eu_hs_token, b2_tokens) in [
            ("homeservers", "hs-eu-a-current-0123456789abcdef", json!({})),
            ("homeservers-fixed", "hs-eu-a-current-0123456789abcdef", fixed_b2_tokens()),
            ("homeservers-fixed-rotated", "hs-eu-a-next-0123456789abcdef01", fixed_b2_tokens()),
        ] {
            cases.push(case(
                name,
                json!({
                    "tokens": fixed_tokens(),
                    "homeservers": homeserver_entries(eu_hs_token, b2_tokens),
                    "tenants": homeserver_tenants(),
                    "networkPolicy": {"enabled": true, "egress": {"enabled": true}},
                }),
            ));
        }
        // eu-tenant-a's tokens from a Secret the cluster cannot be asked for (helm template).
        let mut unreadable = homeserver_entries("unused-0123456789abcdef", json!({}));
        unreadable[0]["tokens"] = json!({"existingSecret": "eu-a-tokens"});
        cases.push(case(
            "homeservers-unreadable",
            json!({"homeservers": unreadable.clone(), "tenants": homeserver_tenants()}),
        ));
        // Upgrades: `lookup` finds what an earlier install stored (a stand-in API server).
        let mut homeservers_upgrade = case(
            "homeservers-upgrade",
            json!({"homeservers": unreadable, "tenants": homeserver_tenants()}),
        );
        homeservers_upgrade["configmaps"] = previous_config();
        homeservers_upgrade["cluster"] = json!({
            "om-openmeet-appservice-tokens": stored_homeserver_tokens(),
            "eu-a-tokens": operator_homeserver_secret(),
        });
        cases.push(homeservers_upgrade);
        let mut upgrade = case("upgrade", json!({"tenants": [{"id": "tenantA", "name": "Tenant A"}]}));
        upgrade["cluster"] = json!({"om-openmeet-appservice-tokens": stored_tokens()});
        cases.push(upgrade);
        let mut existing = case("existing-secret-readable", json!({"tokens": {"existingSecret": "appservice-tokens"}}));
        existing["cluster"] = json!({"appservice-tokens": stored_tokens()});
        cases.push(existing);
        for (i, token) in AWKWARD_TOKENS.iter().enumerate() {
            cases.push(case(
                &format!("awkward-{i}"),
                json!({"tokens": {"asToken": token, "hsToken": "hs-0123456789abcdef0123456789"}}),
            ));
        }
        let rejected = [
            ("unknown-key", json!({"replicas": 2})),
            ("unknown-config-key", json!({"config": {"homeserver": {"url": "http://s:8008", "server_name": "s"}, "appservice": {"id": "a", "sender_localpart": "b", "bot_prefix": "b-"}, "listen": {}}})),
            ("token-in-config", json!({"config": {"homeserver": {"url": "http://s:8008", "server_name": "s"}, "appservice": {"id": "a", "sender_localpart": "b", "bot_prefix": "b-", "as_token": "0123456789abcdef0123"}}})),
            ("short-token", json!({"tokens": {"asToken": "short"}})),
            ("tenant-id-with-dash", json!({"tenants": [{"id": "a-b", "name": "A"}]})),
            ("mysql-url", json!({"database": {"url": "mysql://db/as"}})),
            // A token file's lines starting with '#' are comments to the daemon.
            ("hash-leading-token", json!({"tokens": {"asToken": "#leading-hash-0123456789"}})),
            ("webhook-without-secret", json!({"tenants": [{"id": "a", "name": "A", "webhook": {"url": "https://x.example/h"}}]})),
            ("webhook-with-query", json!({"tenants": [{"id": "a", "name": "A", "webhook": {"url": "https://x.example/h?token=1", "existingSecret": "s"}}]})),
            ("homeserver-id-default", json!({"homeservers": [{"id": "default", "homeserver": {"url": "http://a:8008", "server_name": "a.example"}}]})),
            ("homeserver-id-uppercase", json!({"homeservers": [{"id": "EU_a", "homeserver": {"url": "http://a:8008", "server_name": "a.example"}}]})),
            ("homeserver-id-trailing-dash", json!({"homeservers": [{"id": "eu-", "homeserver": {"url": "http://a:8008", "server_name": "a.example"}}]})),
            ("homeserver-without-server-name", json!({"homeservers": [{"id": "eu", "homeserver": {"url": "http://a:8008"}}]})),
            ("homeserver-without-id", json!({"homeservers": [{"homeserver": {"url": "http://a:8008", "server_name": "a.example"}}]})),
            ("homeserver-token-in-appservice", json!({"homeservers": [{"id": "eu", "homeserver": {"url": "http://a:8008", "server_name": "a.example"}, "appservice": {"as_token": "0123456789abcdef0123"}}]})),
            ("homeserver-short-token", json!({"homeservers": [{"id": "eu", "homeserver": {"url": "http://a:8008", "server_name": "a.example"}, "tokens": {"hsToken": "short"}}]})),
            ("tenant-homeserver-uppercase", json!({"tenants": [{"id": "a", "name": "A", "homeserver": "EU"}]})),
        ];
        // Values the schema accepts and the templates refuse with a sentence.
        let mut refused: Vec<Value> = [
            ("homeserver-id-twice", json!({"homeservers": [
                {"id": "eu", "homeserver": {"url": "http://a:8008", "server_name": "a.example"}},
                {"id": "eu", "homeserver": {"url": "http://b:8008", "server_name": "b.example"}}]})),
            ("homeserver-server-name-twice", json!({"homeservers": [
                {"id": "eu", "homeserver": {"url": "http://a:8008", "server_name": "matrix.example.org"}}]})),
            ("tenant-on-unknown-homeserver", json!({
                "homeservers": [{"id": "eu", "homeserver": {"url": "http://a:8008", "server_name": "a.example"}}],
                "tenants": [{"id": "a", "name": "A", "homeserver": "us"}]})),
            ("homeservers-sharing-a-token", json!({
                "tokens": {"hsToken": "shared-hs-0123456789abcdef"},
                "homeservers": [{"id": "eu", "homeserver": {"url": "http://a:8008", "server_name": "a.example"},
                                 "tokens": {"hsToken": ["eu-hs-0123456789abcdef0", "shared-hs-0123456789abcdef"]}}]})),
        ]
        .into_iter()
        .map(|(name, values)| case(name, values))
        .collect();
        // The release's config before: tenantA lives on eu-tenant-a. Moving it needs the
        // operator's word that its rooms there are gone (tenants[].movedFrom).
        let moved = |moved_from: Option<&str>| {
            let mut tenants = homeserver_tenants();
            tenants[0].as_object_mut().unwrap().remove("homeserver");
            if let Some(from) = moved_from {
                tenants[0]["movedFrom"] = json!(from);
            }
            json!({"tokens": fixed_tokens(), "tenants": tenants,
                   "homeservers": homeserver_entries("hs-eu-a-current-0123456789abcdef", fixed_b2_tokens())})
        };
        for (name, values) in [
            ("tenant-moved-unconfirmed", moved(None)),
            ("tenant-moved-from-elsewhere", moved(Some("b2"))),
        ] {
            let mut refusal = case(name, values);
            refusal["configmaps"] = previous_config();
            refused.push(refusal);
        }
        let mut confirmed = case("tenant-moved-confirmed", moved(Some("eu-tenant-a")));
        confirmed["configmaps"] = previous_config();
        cases.push(confirmed);
        let clusters = cases
            .iter()
            .filter(|c| !c["cluster"].is_null())
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c["cluster"].clone()))
            .collect();
        let request = json!({
            "chart": repo_root().join("helm/openmeet-appservice"),
            "kube_version": KUBE_VERSION,
            "cases": cases,
            "rejected": rejected.iter().map(|(name, values)| json!({"name": name, "values": values})).collect::<Vec<_>>(),
            "refused": refused,
        });
        Rendered {
            answer: run_helm_chart_py(&request),
            clusters,
            e2e_appservice_port,
        }
    })
}

fn case(name: &str, values: Value) -> Value {
    json!({"name": name, "release": "om", "namespace": NAMESPACE, "values": values})
}

fn run_helm_chart_py(request: &Value) -> Value {
    let script = support_dir().join("helm_chart.py");
    let mut child = Command::new(venv_python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {} ({e})", script.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("helm_chart.py prints JSON")
}

fn rendered_case(name: &str) -> &'static Value {
    &rendered().answer["cases"][name]
}

/// The rendered objects of a case, as (template, object, validation, decoded secret data).
fn objects(name: &str) -> &'static [Value] {
    rendered_case(name)["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("no objects rendered for {name}"))
}

fn object(name: &str, kind: &str, suffix: &str) -> Option<&'static Value> {
    let wanted = format!("om-openmeet-appservice{suffix}");
    objects(name)
        .iter()
        .find(|o| o["object"]["kind"] == kind && o["object"]["metadata"]["name"] == wanted.as_str())
}

fn must(name: &str, kind: &str, suffix: &str) -> &'static Value {
    object(name, kind, suffix)
        .unwrap_or_else(|| panic!("{name}: no {kind} om-openmeet-appservice{suffix}"))
}

fn deployment(name: &str) -> &'static Value {
    &must(name, "Deployment", "")["object"]
}

fn config_text(name: &str) -> &'static str {
    must(name, "ConfigMap", "")["object"]["data"]["config.yaml"]
        .as_str()
        .unwrap()
}

fn registration_text(name: &str) -> &'static str {
    must(name, "Secret", "-registration")["decoded"]["registration.yaml"]
        .as_str()
        .unwrap()
}

/// Every registration Secret of a case as (homeserver id, registration.yaml): `default` for
/// `…-registration`, ID for `…-registration-ID`.
fn registrations(name: &str) -> Vec<(String, &'static str)> {
    let prefix = "om-openmeet-appservice-registration";
    let mut found: Vec<(String, &'static str)> = objects(name)
        .iter()
        .filter(|o| o["object"]["kind"] == "Secret")
        .filter_map(|o| {
            let rest = o["object"]["metadata"]["name"]
                .as_str()?
                .strip_prefix(prefix)?;
            let id = match rest.strip_prefix('-') {
                Some(id) => id.to_owned(),
                None if rest.is_empty() => "default".to_owned(),
                None => return None,
            };
            Some((id, o["decoded"]["registration.yaml"].as_str().unwrap()))
        })
        .collect();
    found.sort();
    found
}

fn annotation(name: &str, key: &str) -> String {
    deployment(name)["spec"]["template"]["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no pod annotation {key}"))
        .to_owned()
}

fn kinds(name: &str) -> Vec<String> {
    let mut kinds: Vec<String> = objects(name)
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["object"]["kind"].as_str().unwrap(),
                o["object"]["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn chart_lints_clean_and_every_manifest_fits_its_kubernetes_schema() {
    let answer = &rendered().answer;
    for (name, case) in answer["cases"].as_object().unwrap() {
        let lint = &case["lint"];
        assert_eq!(
            lint["errors"],
            json!([]),
            "{name}: helm lint errors: {lint}"
        );
        let problems: Vec<&Value> = lint["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap() >= 2)
            .collect();
        assert!(
            problems.is_empty(),
            "{name}: helm lint warnings or errors: {problems:?}"
        );
        for o in objects(name) {
            assert_eq!(
                o["validation"], "ok",
                "{name}: {} does not fit the Kubernetes {KUBE_VERSION} schema of {}: {}",
                o["template"], o["object"]["kind"], o["validation"]
            );
        }
    }
    assert!(
        answer["helm"].as_str().unwrap().starts_with("v4."),
        "rendered with Helm {}",
        answer["helm"]
    );
}

#[test]
fn default_values_render_sqlite_on_a_volume_and_the_registration() {
    assert_eq!(
        kinds("default"),
        [
            "ConfigMap om-openmeet-appservice",
            "Deployment om-openmeet-appservice",
            "PersistentVolumeClaim om-openmeet-appservice-data",
            "Pod om-openmeet-appservice-check",
            "PodDisruptionBudget om-openmeet-appservice",
            "Secret om-openmeet-appservice-registration",
            "Secret om-openmeet-appservice-tokens",
            "Service om-openmeet-appservice",
        ]
    );
    let spec = &deployment("default")["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"]["type"], "Recreate",
        "SQLite: the old pod must be gone first"
    );
    let volumes = &spec["template"]["spec"]["volumes"];
    let data = volumes
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "data")
        .unwrap();
    assert_eq!(
        data["persistentVolumeClaim"]["claimName"],
        "om-openmeet-appservice-data"
    );
    let pvc = &must("default", "PersistentVolumeClaim", "-data")["object"];
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(
        pvc["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    assert!(config_text("default").contains("url: sqlite:///data/openmeet-appservice.db"));
    // Generated tokens: 64 hex characters, each different, and in the registration.
    let tokens = &must("default", "Secret", "-tokens")["decoded"];
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let (as_token, hs_token, admin) = (
        tokens["as_token"].as_str().unwrap(),
        tokens["hs_token"].as_str().unwrap().trim_end(),
        tokens["admin_token"].as_str().unwrap(),
    );
    assert!(hex(as_token) && hex(hs_token) && hex(admin), "{tokens}");
    assert!(as_token != hs_token && hs_token != admin);
    let registration = registration_text("default");
    assert!(
        registration.contains(&format!("as_token: {as_token}\n"))
            || registration.contains(&format!("as_token: '{as_token}'\n"))
    );
    assert!(
        registration.contains("url: http://om-openmeet-appservice.chat.svc:8009\n"),
        "{registration}"
    );
    let tokens_secret = &must("default", "Secret", "-tokens")["object"];
    assert_eq!(
        tokens_secret["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let notes = rendered_case("default")["notes"].as_str().unwrap();
    for needle in [
        "app_service_config_files",
        "appservices:",
        "secretKey: registration.yaml",
        "helm test om",
    ] {
        assert!(
            notes.contains(needle),
            "NOTES.txt lacks {needle:?}:\n{notes}"
        );
    }
}

#[test]
fn postgres_values_render_several_replicas_network_policy_and_service_monitor() {
    assert_eq!(
        kinds("postgres"),
        [
            "ConfigMap om-openmeet-appservice",
            "Deployment om-openmeet-appservice",
            "NetworkPolicy om-openmeet-appservice",
            "Pod om-openmeet-appservice-check",
            "PodDisruptionBudget om-openmeet-appservice",
            "Secret om-openmeet-appservice-tokens",
            "Service om-openmeet-appservice",
            "ServiceMonitor om-openmeet-appservice",
        ],
        "no PVC on PostgreSQL, and no registration while the existing token Secret cannot be read"
    );
    let spec = &deployment("postgres")["spec"];
    assert_eq!(spec["replicas"], 3);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    assert!(deployment("postgres-inline-url")["spec"]["replicas"] == 2);

    // Every secret arrives in one directory, under the names the config points at.
    let volumes = spec["template"]["spec"]["volumes"].as_array().unwrap();
    let secrets = volumes.iter().find(|v| v["name"] == "secrets").unwrap();
    let mut projected: BTreeMap<String, String> = BTreeMap::new();
    for source in secrets["projected"]["sources"].as_array().unwrap() {
        let name = source["secret"]["name"].as_str().unwrap();
        for item in source["secret"]["items"].as_array().unwrap() {
            projected.insert(
                item["path"].as_str().unwrap().to_owned(),
                format!("{name}/{}", item["key"].as_str().unwrap()),
            );
        }
    }
    assert_eq!(
        projected,
        BTreeMap::from([
            ("admin_token".into(), "appservice-tokens/admin_token".into()),
            ("as_token".into(), "appservice-tokens/as_token".into()),
            ("database_url".into(), "appservice-db/url".into()),
            ("hs_token".into(), "appservice-tokens/hs_token".into()),
            (
                "tenant.ci-Tenant".into(),
                "om-openmeet-appservice-tokens/tenant.ci-Tenant".into()
            ),
            (
                "tenant.lsdfaopkljdfs".into(),
                "tenant-tokens/openmeet".into()
            ),
        ])
    );
    let config = config_text("postgres");
    for path in projected.keys() {
        assert!(
            config.contains(&format!("{SECRETS_DIR}/{path}\n")),
            "the config does not read {path}:\n{config}"
        );
    }
    assert!(
        config.contains("migrate_on_start: false"),
        "the init container migrates:\n{config}"
    );
    let inline = &must("postgres-inline-url", "Secret", "-tokens")["decoded"];
    assert_eq!(
        inline["database_url"], "postgres://as:secret@db/as",
        "the URL may hold a password: it goes in the Secret"
    );
    assert!(!config_text("postgres-inline-url").contains("secret@"));

    let notes = rendered_case("postgres")["notes"].as_str().unwrap();
    assert!(
        notes.contains("openmeet-appservice registration -c"),
        "{notes}"
    );

    let policy = &must("postgres", "NetworkPolicy", "")["object"]["spec"];
    assert_eq!(policy["policyTypes"], json!(["Ingress"]));
    assert_eq!(
        policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "daemon"
    );
    let rules = policy["ingress"].as_array().unwrap();
    let rule_for = |port: &str| {
        let rule = rules
            .iter()
            .find(|r| r["ports"][0]["port"] == port)
            .unwrap_or_else(|| panic!("no rule for {port}"));
        assert_eq!(rule["ports"].as_array().unwrap().len(), 1);
        assert_eq!(rule["from"].as_array().unwrap().len(), 1);
        &rule["from"][0]
    };
    assert_eq!(
        rule_for("appservice")["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "synapse"
    );
    assert_eq!(
        rule_for("platform")["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "openmeet-api"
    );
    assert_eq!(
        rule_for("metrics")["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(rules.len(), 3);

    let monitor = &must("postgres", "ServiceMonitor", "")["object"];
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let service = &must("postgres", "Service", "")["object"];
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "the ServiceMonitor must select the Service"
        );
    }
}

#[test]
fn generated_tokens_are_kept_across_upgrades_and_existing_secrets_give_the_registration() {
    let stored = stored_tokens();
    let tokens = &must("upgrade", "Secret", "-tokens")["decoded"];
    assert_eq!(tokens, &stored, "an upgrade must keep every stored token");
    let registration = registration_text("upgrade");
    assert!(
        registration.contains("as_token: stored-as-0123456789abcdef0123\n"),
        "{registration}"
    );
    assert!(
        registration.contains("hs_token: stored-hs-new-0123456789abcdef\n"),
        "{registration}"
    );

    // The tokens come from the operator's Secret: the chart stores none of them itself.
    let own = &must("existing-secret-readable", "Secret", "-tokens")["decoded"];
    assert_eq!(own, &json!({}));
    let dir = scratch_dir("helm");
    for (key, value) in stored.as_object().unwrap() {
        std::fs::write(dir.join(key), value.as_str().unwrap()).unwrap();
    }
    let config =
        config_text("existing-secret-readable").replace(SECRETS_DIR, &dir.display().to_string());
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let output = Command::new(BIN)
        .args(["registration", "-c"])
        .arg(dir.join("config.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        registration_text("existing-secret-readable"),
        String::from_utf8(output.stdout).unwrap()
    );
}

#[test]
fn pods_run_as_non_root_with_a_read_only_root_and_no_capabilities() {
    for name in ["default", "postgres"] {
        let pod_specs = [
            ("Deployment", &deployment(name)["spec"]["template"]["spec"]),
            ("test Pod", &must(name, "Pod", "-check")["object"]["spec"]),
        ];
        for (what, spec) in pod_specs {
            let pod = &spec["securityContext"];
            assert_eq!(pod["runAsNonRoot"], true, "{name} {what}");
            assert_eq!(
                pod["seccompProfile"]["type"], "RuntimeDefault",
                "{name} {what}"
            );
            assert_eq!(spec["automountServiceAccountToken"], false, "{name} {what}");
            let containers = spec["containers"].as_array().unwrap().iter().chain(
                spec["initContainers"]
                    .as_array()
                    .map(|v| v.as_slice())
                    .unwrap_or_default(),
            );
            for container in containers {
                let context = &container["securityContext"];
                let who = format!("{name} {what} container {}", container["name"]);
                assert_eq!(context["runAsNonRoot"], true, "{who}");
                assert_eq!(context["readOnlyRootFilesystem"], true, "{who}");
                assert_eq!(context["allowPrivilegeEscalation"], false, "{who}");
                assert_eq!(context["capabilities"]["drop"], json!(["ALL"]), "{who}");
                assert!(context["capabilities"]["add"].is_null(), "{who}");
                assert_eq!(context["seccompProfile"]["type"], "RuntimeDefault", "{who}");
                assert!(
                    container["resources"]["limits"]["memory"].is_string(),
                    "{who}"
                );
                let tmp = container["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["mountPath"] == "/tmp");
                assert!(tmp.is_some(), "{who}: /tmp is its only scratch space");
            }
        }
    }
}

#[test]
fn migrations_run_in_an_init_container_and_serve_in_the_main_one() {
    let spec = &deployment("default")["spec"]["template"]["spec"];
    let config = "/etc/openmeet-appservice/config.yaml";
    assert_eq!(
        spec["initContainers"][0]["args"],
        json!(["migrate", "--config", config])
    );
    assert_eq!(
        spec["containers"][0]["args"],
        json!(["serve", "--config", config])
    );
    assert!(
        spec["containers"][0]["command"].is_null()
            && spec["initContainers"][0]["command"].is_null(),
        "the image's entrypoint is the binary: no shell"
    );
    let check = &must("default", "Pod", "-check")["object"];
    assert_eq!(check["metadata"]["annotations"]["helm.sh/hook"], "test");
    assert_eq!(
        check["spec"]["containers"][0]["args"],
        json!(["check", "--config", config])
    );
    assert_eq!(check["spec"]["restartPolicy"], "Never");
    assert_eq!(
        check["metadata"]["labels"]["app.kubernetes.io/component"], "test",
        "the Service must not select the test pod"
    );
    let postgres_check = &must("postgres", "Pod", "-check")["object"]["spec"]["containers"][0];
    assert!(
        postgres_check["env"].is_null(),
        "on PostgreSQL the test checks the release's database"
    );
}

#[test]
fn probes_ask_the_health_endpoints_on_the_metrics_port() {
    let container = &deployment("default")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/health/live", "port": "metrics"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/health/ready", "port": "metrics"})
    );
    let ports: BTreeMap<&str, i64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        BTreeMap::from([("appservice", 8009), ("metrics", 9100), ("platform", 8010)])
    );
    let config = config_text("default");
    for listen in [
        "appservice: 0.0.0.0:8009",
        "platform: 0.0.0.0:8010",
        "metrics: 0.0.0.0:9100",
    ] {
        assert!(
            config.contains(listen),
            "{listen} not in the config:\n{config}"
        );
    }
    let service = &must("default", "Service", "")["object"]["spec"];
    let service_ports: Vec<(String, i64, String)> = service["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["port"].as_i64().unwrap(),
                p["targetPort"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        service_ports,
        [
            ("appservice".to_owned(), 8009, "appservice".to_owned()),
            ("platform".to_owned(), 8010, "platform".to_owned()),
            ("metrics".to_owned(), 9100, "metrics".to_owned()),
        ]
    );
    assert_eq!(
        service["publishNotReadyAddresses"], true,
        "Synapse's ping must reach a pod that is not ready yet"
    );
}

#[test]
fn a_config_or_token_change_rolls_the_pods_and_nothing_else_does() {
    for key in ["checksum/config", "checksum/secrets"] {
        assert_eq!(
            annotation("fixed", key),
            annotation("fixed-again", key),
            "{key} must be stable"
        );
    }
    assert_ne!(
        annotation("fixed", "checksum/config"),
        annotation("fixed-other-config", "checksum/config")
    );
    assert_eq!(
        annotation("fixed", "checksum/secrets"),
        annotation("fixed-other-config", "checksum/secrets")
    );
    assert_ne!(
        annotation("fixed", "checksum/secrets"),
        annotation("fixed-other-tenant-token", "checksum/secrets")
    );
    assert_eq!(
        annotation("fixed", "checksum/config"),
        annotation("fixed-other-tenant-token", "checksum/config")
    );
    // The config annotation is the hash of exactly the ConfigMap's content.
    assert_eq!(
        annotation("fixed", "checksum/config"),
        sha256_hex(config_text("fixed").trim_end_matches('\n'))
    );
}

#[test]
fn unknown_or_malformed_values_are_rejected_by_the_schema() {
    let rejected = rendered().answer["rejected"].as_object().unwrap();
    assert_eq!(rejected.len(), 17);
    for (name, error) in rejected {
        assert!(error.is_string(), "values {name:?} were accepted");
    }
    assert!(
        rejected["unknown-key"]
            .as_str()
            .unwrap()
            .contains("replicas")
    );
}

#[test]
fn chart_registration_is_byte_for_byte_what_the_binary_prints() {
    let mut names: Vec<String> = vec![
        "default".into(),
        "fixed".into(),
        "e2e".into(),
        "distinct-sender".into(),
        "homeservers".into(),
        "homeservers-upgrade".into(),
    ];
    names.extend((0..AWKWARD_TOKENS.len()).map(|i| format!("awkward-{i}")));
    let mut compared = 0;
    for name in &names {
        let dir = materialize(name);
        // Every registration Secret of the case: the top-level homeserver's, then one per
        // homeservers[] entry, each against `registration --homeserver ID`.
        for (homeserver, text) in registrations(name) {
            let output = Command::new(BIN)
                .args(["registration", "-c"])
                .arg(dir.join("config.yaml"))
                .args(["--homeserver", &homeserver])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{name}: registration --homeserver {homeserver} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let printed = String::from_utf8(output.stdout).unwrap();
            assert_eq!(
                text, printed,
                "{name}: the chart's registration of homeserver {homeserver} differs from the binary's"
            );
            compared += 1;
        }
    }
    assert_eq!(
        compared,
        names.len() + 5,
        "homeservers and homeservers-upgrade have two registrations more each, e2e one"
    );
    // A rotation: the current hs_token (first) is registered, the previous one is still accepted.
    assert!(registration_text("fixed").contains("hs_token: hs-current-0123456789abcdef01234567\n"));
    let hs_file = &must("fixed", "Secret", "-tokens")["decoded"]["hs_token"];
    assert_eq!(
        hs_file,
        "hs-current-0123456789abcdef01234567\nhs-previous-0123456789abcdef0123456\n"
    );
}

/// Writes the case's rendered config and its secrets directory into a scratch directory, laid out
/// as the pod sees them (the config's `/run/secrets/openmeet-appservice/…` paths pointing into
/// it): every projected item of the chart's tokens Secret, and of the operator's Secrets those the
/// case's stand-in cluster holds.
fn materialize(name: &str) -> PathBuf {
    let dir = scratch_dir("helm");
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let chart_tokens = &must(name, "Secret", "-tokens")["decoded"];
    let cluster = rendered().clusters.get(name);
    for (path, source) in projected(name) {
        let (secret, key) = source.split_once('/').unwrap();
        let value = if secret == "om-openmeet-appservice-tokens" {
            chart_tokens[key].as_str()
        } else {
            cluster.and_then(|c| c[secret][key].as_str())
        };
        if let Some(value) = value {
            std::fs::write(secrets.join(path), value).unwrap();
        }
    }
    let config = config_text(name).replace(SECRETS_DIR, &secrets.display().to_string());
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    dir
}

#[test]
fn synapse_loads_the_chart_registration_and_pings_a_daemon_on_the_chart_config() {
    // Two Synapses, each loading only its own registration Secret's content.
    let dir = materialize("e2e");
    for (id, text) in registrations("e2e") {
        std::fs::write(dir.join(format!("registration-{id}.yaml")), text).unwrap();
    }
    let (synapse, second) = start_both(
        || Synapse::start(E2E_SERVER_NAME, &[dir.join("registration-default.yaml")]),
        || {
            Synapse::start(
                E2E_SECOND_SERVER_NAME,
                &[dir.join("registration-second.yaml")],
            )
        },
    );

    let config = dir.join("config.yaml");
    let metrics_port = free_port();
    // What differs from a pod: the addresses and the database file, overridden the documented way.
    let env = [
        ("OPENMEET_AS__HOMESERVER__URL", synapse.url.clone()),
        (
            "OPENMEET_AS__HOMESERVERS__0__HOMESERVER__URL",
            second.url.clone(),
        ),
        (
            "OPENMEET_AS__LISTEN__APPSERVICE",
            format!("127.0.0.1:{}", rendered().e2e_appservice_port),
        ),
        (
            "OPENMEET_AS__LISTEN__PLATFORM",
            format!("127.0.0.1:{}", free_port()),
        ),
        (
            "OPENMEET_AS__LISTEN__METRICS",
            format!("127.0.0.1:{metrics_port}"),
        ),
        (
            "OPENMEET_AS__DATABASE__URL",
            format!("sqlite://{}", dir.join("appservice.db").display()),
        ),
    ];
    let run = |args: &[&str]| {
        let output = Command::new(BIN)
            .args(args)
            .arg("-c")
            .arg(&config)
            .envs(env.clone())
            .output()
            .unwrap();
        (
            output.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let (code, output) = run(&["migrate"]);
    assert_eq!(
        code,
        Some(0),
        "the init container's migrate failed:\n{output}"
    );
    let (code, output) = run(&["check"]);
    assert_eq!(
        code,
        Some(0),
        "check (the helm test) failed:\n{output}\nSynapse:\n{}\nSecond Synapse:\n{}",
        synapse.log_tail(30),
        second.log_tail(30)
    );
    assert!(
        output.contains(&format!("homeserver second ({E2E_SECOND_SERVER_NAME}):")),
        "check checks every homeserver:\n{output}"
    );

    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut daemon = Command::new(BIN)
        .args(["serve", "-c"])
        .arg(&config)
        .envs(env.clone())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // Ready, and both homeservers healthy: the second Synapse accepts the second homeserver's
    // as_token (it loaded the registration from its own Secret) and its ping reached the serving
    // daemon with that homeserver's hs_token.
    let wanted = |health: &Value| {
        health["homeservers"]["default"]["healthy"] == true
            && health["homeservers"]["second"]["healthy"] == true
            && health["homeservers"]["second"]["as_token"] == true
            && health["homeservers"]["second"]["reachable"] == true
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        last = http_get(metrics_port, "/health/ready");
        if let Some((200, body)) = &last
            && wanted(&serde_json::from_str(body).unwrap_or_default())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let live = http_status(metrics_port, "/health/live");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let ready = last.as_ref().is_some_and(|(status, body)| {
        *status == 200 && wanted(&serde_json::from_str(body).unwrap_or_default())
    });
    assert!(
        ready,
        "the daemon on the chart's config never became ready (the readiness probe) with each \
         Synapse holding its registration from the chart (last: {last:?}):\n{}",
        support::python::file_tail(&dir.join("daemon.log"), 40)
    );
    assert_eq!(live, Some(200));
}

/// The status of `GET path` on 127.0.0.1:port, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(status, _)| status)
}

/// The status and body of `GET path` on 127.0.0.1:port, or `None` when nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The image's run-time contract, without Docker: a root holding only the binary, the shared
/// libraries it links and /etc/passwd (no shell, like the distroless runtime image), mounted
/// read-only, with a tmpfs on /tmp, entered as the image's non-root user 65532; the chart's config
/// and secrets laid out at the chart's paths.
#[test]
fn binary_runs_help_and_check_from_a_read_only_root_with_only_tmp_writable() {
    let work = scratch_dir("rootfs");
    let root = work.join("root");
    build_minimal_root(&root, "fixed");
    assert!(!root.join("bin/sh").exists());
    let before = tree(&root);

    let (code, stdout, stderr) = run_in_read_only_root(&root, &["--help"], &[]);
    assert_eq!(
        code, 0,
        "--help failed in the read-only root:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Usage: openmeet-appservice"), "{stdout}");
    assert_eq!(
        tmp_files(&stdout),
        Vec::<String>::new(),
        "--help wrote to /tmp"
    );

    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let (code, stdout, stderr) = run_in_read_only_root(
        &root,
        &["check", "--config", "/etc/openmeet-appservice/config.yaml"],
        &[
            ("OPENMEET_AS__HOMESERVER__URL", unreachable.as_str()),
            (
                "OPENMEET_AS__DATABASE__URL",
                "sqlite:///tmp/openmeet-appservice.db",
            ),
        ],
    );
    assert_eq!(
        code, 12,
        "check against no homeserver must exit 12 (`homeserver does not answer`) after the config and \
         database steps pass:\n{stdout}\n{stderr}"
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("ok   config") && all.contains("ok   database"),
        "{all}"
    );
    let written: Vec<String> = tmp_files(&stdout)
        .into_iter()
        .filter(|f| !f.starts_with("openmeet-appservice.db"))
        .collect();
    assert_eq!(
        written,
        Vec::<String>::new(),
        "check wrote to /tmp beyond its database"
    );
    assert_eq!(
        tree(&root),
        before,
        "something in the read-only root changed"
    );
}

const TMP_MARKER: &str = "\n--- files in /tmp:\n";

fn tmp_files(stdout: &str) -> Vec<String> {
    let listing = stdout
        .split_once(TMP_MARKER)
        .map(|(_, l)| l)
        .unwrap_or_else(|| panic!("no /tmp listing in {stdout}"));
    listing
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs the binary in `root` (read-only, tmpfs on /tmp, /proc bound) as uid/gid 65532 with only
/// `env` in its environment; returns (exit code, stdout with the /tmp listing appended, stderr).
fn run_in_read_only_root(
    root: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let script = r#"set -e
root="$1"; shift
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o size=16m,mode=1777 tmpfs "$root/tmp"
mount --bind /proc "$root/proc"
set +e
chroot --userspec=65532:65532 "$root" /usr/local/bin/openmeet-appservice "$@"
code=$?
printf '\n--- files in /tmp:\n'
ls -A "$root/tmp"
exit $code
"#;
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ])
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "could not run unshare ({e}): this test needs util-linux's unshare, mount and chroot"
        )
    });
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("mount:") && !stderr.contains("unshare:") && !stderr.contains("chroot:"),
        "could not set up the read-only root: the test must run as root (or with CAP_SYS_ADMIN and \
         CAP_SYS_CHROOT) where mount namespaces are allowed:\n{stderr}"
    );
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    )
}

/// The files under `dir` with their sizes and modification times.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            files.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    files
}

/// The binary, the libraries `ldd` says it loads, the image's user, and the chart's config and
/// secrets for the rendered case `name`.
fn build_minimal_root(root: &Path, name: &str) {
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} ({e})", from.display()));
    };
    copy(
        Path::new(BIN),
        &root.join("usr/local/bin/openmeet-appservice"),
    );
    // The runtime image's CA bundle (distroless ships it): the HTTP client refuses to start without.
    let ca = "etc/ssl/certs/ca-certificates.crt";
    copy(&Path::new("/").join(ca), &root.join(ca));
    let ldd = Command::new("ldd")
        .arg(BIN)
        .output()
        .expect("ldd (libc-bin) lists the libraries to copy");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, target)) => target.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            copy(Path::new(path), &root.join(path.trim_start_matches('/')));
        }
    }
    for dir in ["tmp", "proc", "etc/openmeet-appservice"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnonroot:x:65532:\n").unwrap();
    std::fs::write(
        root.join("etc/openmeet-appservice/config.yaml"),
        config_text(name),
    )
    .unwrap();
    let secrets = root.join(SECRETS_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&secrets).unwrap();
    for (key, value) in must(name, "Secret", "-tokens")["decoded"]
        .as_object()
        .unwrap()
    {
        std::fs::write(secrets.join(key), value.as_str().unwrap()).unwrap();
    }
    // As the pod sees them: readable by the user (the chart's fsGroup), writable by nobody.
    let status = Command::new("chmod")
        .args(["-R", "a+rX,a-w"])
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The secrets directory of a rendered case as `(path in it, "secret/key")`.
fn projected(name: &str) -> BTreeMap<String, String> {
    let volumes = deployment(name)["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let secrets = volumes.iter().find(|v| v["name"] == "secrets").unwrap();
    let mut projected = BTreeMap::new();
    for source in secrets["projected"]["sources"].as_array().unwrap() {
        let secret = source["secret"]["name"].as_str().unwrap();
        for item in source["secret"]["items"].as_array().unwrap() {
            projected.insert(
                item["path"].as_str().unwrap().to_owned(),
                format!("{secret}/{}", item["key"].as_str().unwrap()),
            );
        }
    }
    projected
}

#[test]
fn webhook_secrets_come_from_existing_secrets_and_the_daemon_accepts_the_config() {
    let projected = projected("webhooks");
    assert_eq!(projected["webhook.tenantA"], "webhook-secrets/tenantA");
    assert_eq!(
        projected["webhook.b-Tenant"], "webhook-secrets/webhook_secret",
        "the default key"
    );
    assert!(!projected.contains_key("webhook.noHook"));
    let config = config_text("webhooks");
    for expected in [
        "  webhook:\n    secret_file: /run/secrets/openmeet-appservice/webhook.tenantA\n    url: http://openmeet-api.openmeet.svc:3000/matrix/events\n",
        "  webhook:\n    secret_file: /run/secrets/openmeet-appservice/webhook.b-Tenant\n    url: https://hooks.example.org/b\n",
    ] {
        assert!(config.contains(expected), "{expected:?} not in:\n{config}");
    }
    // serverDirectory becomes the tenant's server_directory (DESIGN §7.5); the others have none.
    assert_eq!(
        config.matches("server_directory: true").count(),
        1,
        "{config}"
    );
    assert!(
        config.contains("  name: No webhook\n  server_directory: true\n"),
        "{config}"
    );
    // A changed webhook secret reference rolls the pods.
    assert_ne!(
        annotation("webhooks", "checksum/secrets"),
        annotation("webhooks-platform-ports", "checksum/secrets")
    );

    // The daemon loads the rendered config with the secrets where the pod gets them.
    let dir = materialize("webhooks");
    std::fs::write(
        dir.join("secrets/webhook.tenantA"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("secrets/webhook.b-Tenant"),
        "a-raw-webhook-secret-0123456789\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["registration", "-c"])
        .arg(dir.join("config.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the daemon refused the chart's config: {stderr}"
    );
    assert!(
        !stderr.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            && !stderr.contains("a-raw-webhook-secret")
    );
}

#[test]
fn restricted_egress_lets_the_daemon_reach_dns_synapse_the_webhooks_and_the_database() {
    let policy = &must("webhooks", "NetworkPolicy", "")["object"]["spec"];
    assert_eq!(policy["policyTypes"], json!(["Ingress", "Egress"]));
    let rules = policy["egress"].as_array().unwrap();
    let ports = |rule: &Value| -> Vec<(i64, String)> {
        rule["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["port"].as_i64().unwrap(),
                    p["protocol"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let to = |label: &str, value: &str| {
        rules
            .iter()
            .find(|r| r["to"][0]["podSelector"]["matchLabels"][label] == value)
            .unwrap_or_else(|| panic!("no egress rule to {label}={value}: {rules:?}"))
    };
    assert_eq!(
        ports(to("k8s-app", "kube-dns")),
        [(53, "UDP".into()), (53, "TCP".into())]
    );
    assert_eq!(
        ports(to("app.kubernetes.io/name", "synapse")),
        [(8008, "TCP".into())]
    );
    assert_eq!(
        ports(to("app.kubernetes.io/name", "openmeet-api")),
        [(3000, "TCP".into()), (443, "TCP".into())],
        "each webhook URL's port, to OpenMeet core's pods"
    );
    assert_eq!(ports(to("app", "postgres")), [(5432, "TCP".into())]);
    assert!(
        rules
            .iter()
            .any(|r| r["to"][0]["ipBlock"]["cidr"] == "203.0.113.0/24"),
        "the extra rule: {rules:?}"
    );
    assert_eq!(rules.len(), 5);

    let overridden =
        &must("webhooks-platform-ports", "NetworkPolicy", "")["object"]["spec"]["egress"];
    let overridden = overridden.as_array().unwrap();
    let platform = overridden
        .iter()
        .find(|r| {
            r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "openmeet-api"
        })
        .unwrap();
    assert_eq!(
        ports(platform),
        [(3000, "TCP".into())],
        "the pods' port, not the Service's"
    );
    let synapse = overridden
        .iter()
        .find(|r| r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "synapse")
        .unwrap();
    assert_eq!(ports(synapse), [(8008, "TCP".into()), (8448, "TCP".into())]);
    assert_eq!(overridden.len(), 3, "SQLite: no database rule");
    // Egress stays open unless asked.
    assert_eq!(
        must("postgres", "NetworkPolicy", "")["object"]["spec"]["policyTypes"],
        json!(["Ingress"])
    );
}

/// The rendered config of a case, parsed.
fn config_value(name: &str) -> Value {
    serde_yaml::from_str(config_text(name)).expect("the ConfigMap holds YAML")
}

#[test]
fn each_homeserver_reads_its_tokens_from_files_and_tenants_keep_their_homeserver() {
    let config = config_value("homeservers");
    assert_eq!(
        config["homeservers"],
        json!([
            {"id": "eu-tenant-a",
             "homeserver": {"url": "https://matrix-a.example.org", "server_name": "matrix-a.example.org",
                            "check_interval_seconds": 30},
             "appservice": {"bot_prefix": "openmeet-bot-a-",
                            "url": "https://appservice.openmeet.example",
                            "as_token_file": format!("{SECRETS_DIR}/homeserver.eu-tenant-a.as_token"),
                            "hs_token_file": format!("{SECRETS_DIR}/homeserver.eu-tenant-a.hs_token")}},
            {"id": "b2",
             "homeserver": {"url": "http://synapse.matrix-b.svc:8448", "server_name": "matrix-b.example"},
             "appservice": {"id": "openmeet-b",
                            "url": "http://om-openmeet-appservice.chat.svc:8009",
                            "as_token_file": format!("{SECRETS_DIR}/homeserver.b2.as_token"),
                            "hs_token_file": format!("{SECRETS_DIR}/homeserver.b2.hs_token")}},
        ]),
        "each entry as the daemon reads it: its tokens as files, its registration URL normalised"
    );
    let homes: Vec<(&str, &Value)> = config["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), &t["homeserver"]))
        .collect();
    assert_eq!(
        homes,
        [
            ("tenantA", &json!("eu-tenant-a")),
            ("tenantB", &Value::Null),
            ("tenantC", &json!("b2")),
        ]
    );
    assert!(
        config_value("default")["homeservers"].is_null(),
        "no homeservers: the config has none"
    );

    // The tokens: inline ones as given (the current hs_token first), generated ones 64 hex
    // characters, each its own; all in the Secret and none in the ConfigMap.
    let tokens = &must("homeservers", "Secret", "-tokens")["decoded"];
    assert_eq!(
        tokens["homeserver.eu-tenant-a.as_token"],
        "as-eu-a-0123456789abcdef0123"
    );
    assert_eq!(
        tokens["homeserver.eu-tenant-a.hs_token"],
        "hs-eu-a-current-0123456789abcdef\nhs-eu-a-previous-0123456789abcdef\n"
    );
    let b2_as = tokens["homeserver.b2.as_token"].as_str().unwrap();
    let b2_hs = tokens["homeserver.b2.hs_token"]
        .as_str()
        .unwrap()
        .trim_end();
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(hex(b2_as) && hex(b2_hs) && b2_as != b2_hs, "{tokens}");
    let config = config_text("homeservers");
    for (key, value) in tokens.as_object().unwrap() {
        for token in value.as_str().unwrap().lines() {
            assert!(!config.contains(token), "{key} is in the ConfigMap");
        }
    }
    let projected = projected("homeservers");
    for id in ["eu-tenant-a", "b2"] {
        for token in ["as_token", "hs_token"] {
            let path = format!("homeserver.{id}.{token}");
            assert_eq!(
                projected[&path],
                format!("om-openmeet-appservice-tokens/{path}")
            );
        }
    }
    let registration = registrations("homeservers");
    let ids: Vec<&str> = registration.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["b2", "default", "eu-tenant-a"]);
    assert!(
        registration[2]
            .1
            .contains("hs_token: hs-eu-a-current-0123456789abcdef\n"),
        "{}",
        registration[2].1
    );
    let notes = rendered_case("homeservers")["notes"].as_str().unwrap();
    assert!(
        notes.contains("om-openmeet-appservice-registration-eu-tenant-a")
            && notes.contains("om-openmeet-appservice-registration-b2"),
        "{notes}"
    );
}

#[test]
fn homeserver_tokens_are_kept_across_upgrades_or_read_from_the_operators_secret() {
    let tokens = &must("homeservers-upgrade", "Secret", "-tokens")["decoded"];
    assert_eq!(
        tokens["homeserver.b2.as_token"], "stored-b2-as-0123456789abcdef",
        "an upgrade keeps the generated tokens"
    );
    assert_eq!(
        tokens["homeserver.b2.hs_token"],
        "stored-b2-hs-0123456789abcdef\n"
    );
    assert!(
        tokens.get("homeserver.eu-tenant-a.as_token").is_none(),
        "eu-tenant-a's tokens are the operator's: {tokens}"
    );
    let projected = projected("homeservers-upgrade");
    assert_eq!(
        projected["homeserver.eu-tenant-a.as_token"],
        "eu-a-tokens/as_token"
    );
    assert_eq!(
        projected["homeserver.eu-tenant-a.hs_token"],
        "eu-a-tokens/hs_token"
    );
    let registration = registrations("homeservers-upgrade");
    let eu = registration
        .iter()
        .find(|(id, _)| id == "eu-tenant-a")
        .unwrap();
    assert!(
        eu.1.contains("as_token: operator-eu-as-0123456789abcdef\n"),
        "{}",
        eu.1
    );
    let b2 = registration.iter().find(|(id, _)| id == "b2").unwrap();
    assert!(
        b2.1.contains("as_token: stored-b2-as-0123456789abcdef\n"),
        "{}",
        b2.1
    );

    // Offline (helm template), the operator's Secret cannot be read: that homeserver has no
    // registration Secret, and the notes say how to print it.
    let kinds = kinds("homeservers-unreadable");
    assert!(
        kinds.contains(&"Secret om-openmeet-appservice-registration-b2".to_owned())
            && !kinds
                .iter()
                .any(|k| k.ends_with("-registration-eu-tenant-a")),
        "{kinds:?}"
    );
    let notes = rendered_case("homeservers-unreadable")["notes"]
        .as_str()
        .unwrap();
    assert!(
        notes.contains(
            "registration -c /etc/openmeet-appservice/config.yaml --homeserver eu-tenant-a"
        ),
        "{notes}"
    );
}

#[test]
fn bad_homeservers_entries_are_refused_with_a_sentence_naming_the_entry() {
    let rejected = &rendered().answer["rejected"];
    let expected: [(&str, &[&str]); 8] = [
        (
            "homeserver-id-default",
            &["/homeservers/0/id", "any id but default"],
        ),
        (
            "homeserver-id-uppercase",
            &["/homeservers/0/id", "'EU_a' does not match pattern"],
        ),
        (
            "homeserver-id-trailing-dash",
            &["/homeservers/0/id", "'eu-' does not match pattern"],
        ),
        (
            "homeserver-without-server-name",
            &[
                "/homeservers/0/homeserver",
                "missing property 'server_name'",
            ],
        ),
        (
            "homeserver-without-id",
            &["/homeservers/0", "missing property 'id'"],
        ),
        (
            "homeserver-token-in-appservice",
            &["/homeservers/0/appservice", "'as_token' not allowed"],
        ),
        ("homeserver-short-token", &["/homeservers/0/tokens/hsToken"]),
        (
            "tenant-homeserver-uppercase",
            &["/tenants/0/homeserver", "does not match pattern"],
        ),
    ];
    for (name, needles) in expected {
        let error = rejected[name]
            .as_str()
            .unwrap_or_else(|| panic!("values {name:?} were accepted"));
        for needle in needles {
            assert!(
                error.contains(needle),
                "{name}: {needle:?} not in {error:?}"
            );
        }
    }
    let refused = rendered().answer["refused"].as_object().unwrap();
    assert_eq!(refused.len(), 6);
    for (name, needle) in [
        (
            "homeserver-id-twice",
            "homeservers[1].id \"eu\" is used twice",
        ),
        (
            "homeserver-server-name-twice",
            "homeservers[0] (eu) has the server_name matrix.example.org of the top-level config.homeserver",
        ),
        (
            "tenant-on-unknown-homeserver",
            "tenants \"a\": homeserver \"us\" is not one of homeservers[].id (eu)",
        ),
        (
            "homeservers-sharing-a-token",
            "the top-level tokens and homeservers \"eu\" share a token",
        ),
        (
            "tenant-moved-unconfirmed",
            "tenants \"tenantA\": homeserver changes from \"eu-tenant-a\" to \"default\"",
        ),
        (
            "tenant-moved-from-elsewhere",
            "tenants \"tenantA\": homeserver changes from \"eu-tenant-a\" to \"default\"",
        ),
    ] {
        let error = refused[name]
            .as_str()
            .unwrap_or_else(|| panic!("values {name:?} were rendered"));
        assert!(
            error.contains(needle),
            "{name}: {needle:?} not in {error:?}"
        );
    }
}

#[test]
fn a_homeservers_token_change_rolls_the_pods() {
    assert_ne!(
        annotation("homeservers-fixed", "checksum/secrets"),
        annotation("homeservers-fixed-rotated", "checksum/secrets")
    );
    assert_eq!(
        annotation("homeservers-fixed", "checksum/config"),
        annotation("homeservers-fixed-rotated", "checksum/config"),
        "tokens are files: the config does not change with them"
    );
    assert_ne!(
        annotation("homeservers-unreadable", "checksum/secrets"),
        annotation("homeservers-upgrade", "checksum/secrets")
    );
}

#[test]
fn every_homeservers_synapse_may_reach_the_appservice_and_be_reached() {
    let policy = &must("homeservers", "NetworkPolicy", "")["object"]["spec"];
    let appservice = policy["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ports"][0]["port"] == "appservice")
        .unwrap();
    assert_eq!(
        appservice["from"],
        json!([
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "synapse"}}},
            {"ipBlock": {"cidr": "203.0.113.10/32"}},
        ]),
        "b2 shares the top-level selector; eu-tenant-a has its own"
    );
    let egress = policy["egress"].as_array().unwrap();
    let ports = |rule: &Value| -> Vec<i64> {
        rule["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect()
    };
    let synapse = egress
        .iter()
        .find(|r| r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "synapse")
        .unwrap();
    assert_eq!(
        ports(synapse),
        [8008, 8448],
        "the top-level's and b2's ports"
    );
    let eu = egress
        .iter()
        .find(|r| r["to"][0]["ipBlock"]["cidr"] == "203.0.113.10/32")
        .unwrap_or_else(|| panic!("no egress to eu-tenant-a's Synapse: {egress:?}"));
    assert_eq!(ports(eu), [443]);
    assert_eq!(
        egress.len(),
        3,
        "DNS, the two Synapse rules; SQLite: no database"
    );
}

#[test]
fn moving_a_tenant_to_another_homeserver_needs_the_operators_word_that_its_rooms_are_gone() {
    // Pods roll on a config change, and a starting daemon cannot see that a tenant moved: the
    // upgrade is refused instead, unless tenants[].movedFrom names the homeserver it leaves.
    let refused = &rendered().answer["refused"];
    let error = refused["tenant-moved-unconfirmed"].as_str().unwrap();
    for needle in [
        "its rooms live on \"eu-tenant-a\"",
        "delete the tenant's rooms through the platform API",
        "tenants[].movedFrom: eu-tenant-a",
    ] {
        assert!(error.contains(needle), "{needle:?} not in {error:?}");
    }
    assert!(
        refused["tenant-moved-from-elsewhere"].is_string(),
        "movedFrom must name the homeserver the tenant leaves"
    );
    let config = config_value("tenant-moved-confirmed");
    let tenant_a = &config["tenants"][0];
    assert_eq!(tenant_a["id"], "tenantA");
    assert!(
        tenant_a["homeserver"].is_null() && tenant_a["movedFrom"].is_null(),
        "on the top-level homeserver now; movedFrom is the chart's, not the daemon's: {tenant_a}"
    );
    // Tenants staying where they were need nothing (the upgrade case has the same config before).
    assert!(rendered_case("homeservers-upgrade")["objects"].is_array());
}
