//! Lint and schemas: every rendered case lints clean with Helm v4 and each manifest fits its
//! Kubernetes schema; values the chart's schema does not know or cannot take are rejected.

use serde_json::{Value, json};

use super::render::{KUBE_VERSION, objects, rendered};

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
fn unknown_or_malformed_values_are_rejected_by_the_schema() {
    let rejected = rendered().answer["rejected"].as_object().unwrap();
    assert_eq!(rejected.len(), 21);
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
