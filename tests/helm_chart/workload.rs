//! The workload the default and PostgreSQL values render: its objects (the PostgreSQL case's
//! NetworkPolicy ingress and ServiceMonitor among them), replicas and volumes, the pods' security
//! context, migrations in an init container, the probes and ports, and which changes roll the pods.

use std::collections::BTreeMap;

use serde_json::json;

use super::render::{
    SECRETS_DIR, annotation, config_text, deployment, kinds, must, registration_text, rendered_case,
};

#[test]
fn default_values_render_sqlite_on_a_volume_and_the_registration() {
    assert_eq!(
        kinds("default"),
        [
            "ConfigMap om-openmeet-appservice",
            "Deployment om-openmeet-appservice",
            "PersistentVolumeClaim om-openmeet-appservice-data",
            "Pod om-openmeet-appservice-check",
            "Secret om-openmeet-appservice-registration",
            "Secret om-openmeet-appservice-tokens",
            "Service om-openmeet-appservice",
        ],
        "no PodDisruptionBudget over SQLite's one pod"
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

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
