//! The cases this test binary renders, all in one run of `tests/support/helm_chart.py` kept in a
//! `OnceLock`, the values they are made of, and how the tests read what was rendered.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::support::python::{free_port, repo_root, scratch_dir, support_dir, venv_python};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_openmeet-appservice");
/// The Kubernetes version the chart is linted for and validated against.
pub(crate) const KUBE_VERSION: &str = "1.33.0";
pub(crate) const NAMESPACE: &str = "chat";
/// Where the chart mounts the secrets; the rendered config's `*_file` keys point into it.
pub(crate) const SECRETS_DIR: &str = "/run/secrets/openmeet-appservice";
pub(crate) const E2E_SERVER_NAME: &str = "helm.test";
/// The e2e case's second homeserver (`homeservers[0]`, id `second`).
pub(crate) const E2E_SECOND_SERVER_NAME: &str = "helm-second.test";

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
pub(crate) const AWKWARD_TOKENS: &[&str] = &[
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
pub(crate) fn stored_tokens() -> Value {
    json!({
        "as_token": "stored-as-0123456789abcdef0123",
        "hs_token": "stored-hs-new-0123456789abcdef\nstored-hs-old-0123456789abcdef\n",
        "admin_token": "stored-admin-0123456789abcdef",
        "tenant.tenantA": "stored-tenant-0123456789abcdef",
    })
}

pub(crate) struct Rendered {
    /// The answer of helm_chart.py (see its docstring).
    pub(crate) answer: Value,
    /// The Secrets the stand-in cluster of each case held (by case name).
    clusters: BTreeMap<String, Value>,
    /// The free port the e2e case's registration sends Synapse to.
    pub(crate) e2e_appservice_port: u16,
}

/// Every render this test binary looks at, made in one run of helm_chart.py.
pub(crate) fn rendered() -> &'static Rendered {
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
                "rules",
                json!({
                    "tokens": fixed_tokens(),
                    "tenants": [
                        {"id": "tenantA", "name": "Tenant A", "token": "tenant-token-0123456789abcdef",
                         "rules": {"blocked_words": ["casino"], "blocked_link_domains": ["spam.example"],
                                   "applies_below_level": 25, "rate_limit": {"messages": 10, "per_seconds": 60}}},
                        {"id": "tenantB", "name": "Tenant B", "token": "tenant-token-b-0123456789abcdef"},
                    ],
                    "antispam": {"existingSecret": "antispam-secret"},
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
            // Several replicas (tests/helm_chart/replicas.rs): PostgreSQL with the defaults, one
            // replica asked for on each database, and the scheduling values overridden.
            case("postgres-default", json!({"database": {"url": "postgres://as:secret@db/as"}})),
            case(
                "postgres-one-replica",
                json!({"replicaCount": 1, "database": {"url": "postgres://as:secret@db/as"}}),
            ),
            case("sqlite-one-replica", json!({"replicaCount": 1})),
            case("sqlite-three-replicas", json!({"replicaCount": 3})),
            case(
                "postgres-scheduling",
                json!({
                    "replicaCount": 4,
                    "database": {"url": "postgres://as:secret@db/as"},
                    "podAntiAffinity": {"type": "required"},
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "pool", "operator": "In", "values": ["chat"]}]}]}}},
                    "topologySpreadConstraints": [
                        {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"},
                        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                         "labelSelector": {"matchLabels": {"team": "chat"}}},
                    ],
                    "podDisruptionBudget": {"minAvailable": 3, "unhealthyPodEvictionPolicy": "IfHealthyBudget"},
                    "terminationGracePeriodSeconds": 60,
                }),
            ),
            case(
                "postgres-own-anti-affinity",
                json!({
                    "database": {"url": "postgres://as:secret@db/as"},
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 50, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                                                           "labelSelector": {"matchLabels": {"team": "chat"}}}}]}},
                    "topologySpreadConstraints": [],
                    "podDisruptionBudget": {"enabled": false},
                }),
            ),
            case(
                "postgres-no-anti-affinity",
                json!({"database": {"url": "postgres://as:secret@db/as"}, "podAntiAffinity": {"type": "none"}}),
            ),
            // Reports that reach the tenant (tests/helm_chart/reports.rs).
            case(
                "reports-ingress",
                json!({
                    "reports": {"ingress": {"enabled": true, "host": "matrix.example.org",
                                            "tls": [{"hosts": ["matrix.example.org"], "secretName": "matrix-tls"}]}},
                    "networkPolicy": {"enabled": true},
                }),
            ),
            case(
                "sqlite-worker-id",
                json!({"config": {"jobs": {"worker_id": "appservice-main"}}}),
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
            ("zero-replicas", json!({"replicaCount": 0})),
            ("short-termination-grace", json!({"terminationGracePeriodSeconds": 10})),
            ("anti-affinity-soft", json!({"podAntiAffinity": {"type": "soft"}})),
            ("reports-ingress-without-host", json!({"reports": {"ingress": {"enabled": true}}})),
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
            ("postgres-shared-worker-id", json!({
                "database": {"url": "postgres://as:secret@db/as"},
                "config": {"jobs": {"worker_id": "appservice-main"}}})),
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

pub(crate) fn case(name: &str, values: Value) -> Value {
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

pub(crate) fn rendered_case(name: &str) -> &'static Value {
    &rendered().answer["cases"][name]
}

/// The rendered objects of a case, as (template, object, validation, decoded secret data).
pub(crate) fn objects(name: &str) -> &'static [Value] {
    rendered_case(name)["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("no objects rendered for {name}"))
}

pub(crate) fn object(name: &str, kind: &str, suffix: &str) -> Option<&'static Value> {
    let wanted = format!("om-openmeet-appservice{suffix}");
    objects(name)
        .iter()
        .find(|o| o["object"]["kind"] == kind && o["object"]["metadata"]["name"] == wanted.as_str())
}

pub(crate) fn must(name: &str, kind: &str, suffix: &str) -> &'static Value {
    object(name, kind, suffix)
        .unwrap_or_else(|| panic!("{name}: no {kind} om-openmeet-appservice{suffix}"))
}

pub(crate) fn deployment(name: &str) -> &'static Value {
    &must(name, "Deployment", "")["object"]
}

pub(crate) fn config_text(name: &str) -> &'static str {
    must(name, "ConfigMap", "")["object"]["data"]["config.yaml"]
        .as_str()
        .unwrap()
}

pub(crate) fn registration_text(name: &str) -> &'static str {
    must(name, "Secret", "-registration")["decoded"]["registration.yaml"]
        .as_str()
        .unwrap()
}

/// Every registration Secret of a case as (homeserver id, registration.yaml): `default` for
/// `…-registration`, ID for `…-registration-ID`.
pub(crate) fn registrations(name: &str) -> Vec<(String, &'static str)> {
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

pub(crate) fn annotation(name: &str, key: &str) -> String {
    deployment(name)["spec"]["template"]["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no pod annotation {key}"))
        .to_owned()
}

pub(crate) fn kinds(name: &str) -> Vec<String> {
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

/// Writes the case's rendered config and its secrets directory into a scratch directory, laid out
/// as the pod sees them (the config's `/run/secrets/openmeet-appservice/…` paths pointing into
/// it): every projected item of the chart's tokens Secret, and of the operator's Secrets those the
/// case's stand-in cluster holds.
pub(crate) fn materialize(name: &str) -> PathBuf {
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

/// The secrets directory of a rendered case as `(path in it, "secret/key")`.
pub(crate) fn projected(name: &str) -> BTreeMap<String, String> {
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

/// The rendered config of a case, parsed.
pub(crate) fn config_value(name: &str) -> Value {
    serde_yaml::from_str(config_text(name)).expect("the ConfigMap holds YAML")
}
