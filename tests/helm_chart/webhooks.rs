//! Webhooks and egress: webhook secrets from the operator's Secrets in a config the daemon
//! accepts, and the restricted egress NetworkPolicy that lets the daemon reach what it needs.

use std::process::Command;

use serde_json::{Value, json};

use super::render::{BIN, annotation, config_text, materialize, must, projected};

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
