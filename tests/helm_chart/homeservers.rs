//! `homeservers[]`: each homeserver's tokens as files and its own registration Secret, tokens kept
//! across upgrades or read from the operator's Secret, bad entries refused with a sentence naming
//! them, the pods rolled on a token change, the NetworkPolicy for every Synapse, and a tenant's
//! move to another homeserver only on the operator's word.

use serde_json::{Value, json};

use super::render::{
    SECRETS_DIR, annotation, config_text, config_value, kinds, must, projected, registrations,
    rendered, rendered_case,
};

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
    assert_eq!(refused.len(), 7, "six here, one in replicas.rs");
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
