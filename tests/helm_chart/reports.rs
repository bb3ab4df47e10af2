//! Reports that reach the tenant (DESIGN §7.3): the optional Ingress that routes Synapse's three
//! report endpoints to the appservice port, off by default, and the NetworkPolicy letting the
//! ingress controller in when it is on.

use serde_json::json;

use super::render::{must, object};

#[test]
fn the_reports_ingress_is_off_by_default() {
    assert!(object("default", "Ingress", "-reports").is_none());
    assert!(object("postgres", "Ingress", "-reports").is_none());
}

#[test]
fn the_reports_ingress_routes_exactly_the_three_report_paths_to_the_appservice_port() {
    let ingress = &must("reports-ingress", "Ingress", "-reports")["object"];
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"],
        "true"
    );
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{"hosts": ["matrix.example.org"], "secretName": "matrix-tls"}])
    );
    let [rule] = &ingress["spec"]["rules"].as_array().unwrap()[..] else {
        panic!("one rule: {ingress}");
    };
    assert_eq!(rule["host"], "matrix.example.org");
    let paths = rule["http"]["paths"].as_array().unwrap();
    let patterns: Vec<&str> = paths.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(
        patterns,
        [
            "/_matrix/client/v3/rooms/[^/]+/report(/[^/]+)?$",
            "/_matrix/client/v3/users/[^/]+/report$",
        ]
    );
    for path in paths {
        assert_eq!(path["pathType"], "ImplementationSpecific");
        assert_eq!(
            path["backend"]["service"],
            json!({"name": "om-openmeet-appservice", "port": {"name": "appservice"}})
        );
    }
    // The patterns match the three endpoints and nothing else of Synapse's (ingress-nginx
    // anchors them at the start).
    let compiled: Vec<regex::Regex> = patterns
        .iter()
        .map(|pattern| regex::Regex::new(&format!("^{pattern}")).unwrap())
        .collect();
    let matches = |path: &str| compiled.iter().any(|pattern| pattern.is_match(path));
    assert!(matches("/_matrix/client/v3/rooms/!r:s/report/$e"));
    assert!(matches("/_matrix/client/v3/rooms/!r:s/report"));
    assert!(matches("/_matrix/client/v3/users/@u:s/report"));
    assert!(!matches(
        "/_matrix/client/v3/rooms/!r:s/send/m.room.message/1"
    ));
    assert!(!matches("/_matrix/client/v3/rooms/!r:s/report/$e/x"));
}

#[test]
fn with_the_ingress_the_network_policy_lets_the_controller_reach_the_appservice_port() {
    let policy = &must("reports-ingress", "NetworkPolicy", "")["object"]["spec"];
    let rules = policy["ingress"].as_array().unwrap();
    let controller = json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}});
    let rule = rules
        .iter()
        .find(|rule| rule["from"].as_array().unwrap().contains(&controller))
        .unwrap_or_else(|| panic!("no rule for the ingress controller: {policy}"));
    assert_eq!(
        rule["ports"],
        json!([{"port": "appservice", "protocol": "TCP"}])
    );
    let without = &must("postgres", "NetworkPolicy", "")["object"]["spec"]["ingress"];
    assert!(
        !without
            .as_array()
            .unwrap()
            .iter()
            .any(|rule| rule["from"].as_array().unwrap().contains(&controller)),
        "{without}"
    );
}
