#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! `docs/alerts.yaml` and `docs/grafana-dashboard.json` stay true to the daemon: every expression
//! parses as PromQL (PyPI `promql-parser`, in the test venv), every `openmeet_as_*` metric they
//! name is one the daemon exports, every `synapse_*` metric one the installed Synapse exports (with
//! the `_total` prometheus_client adds to counters), and every alert has a duration, a severity, a
//! summary and a runbook in `docs/operations.md`.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use openmeet_appservice::observability::metrics::Metrics;
use serde_json::{Value, json};

use support::python::{repo_root, run_script};

const ALERTS: &[&str] = &[
    "OpenMeetAppserviceTokenRejected",
    "OpenMeetAppserviceNotReady",
    "OpenMeetAppserviceHomeserverUnhealthy",
    "OpenMeetAppserviceQueueStuck",
    "OpenMeetAppserviceDeadJobs",
    "OpenMeetAppserviceProbeSilent",
    "OpenMeetAppserviceWebhookLagging",
    "OpenMeetAppserviceWebhookEventsGivenUp",
    "SynapseAppserviceTransactionsFailing",
];

/// Parses each expression and lists the metric names it selects; also lists the metrics Synapse's
/// appservice module defines, as exposed (counters with `_total`), with their label names.
const PARSE: &str = r#"
import json, sys
import promql_parser
from prometheus_client import Counter, Gauge, Histogram
import synapse.appservice.api as appservice_api

out = {"expressions": [], "synapse": {}}
for item in json.load(sys.stdin):
    try:
        expr = promql_parser.parse(item["expr"])
    except Exception as error:
        out["expressions"].append({"name": item["name"], "error": str(error)})
        continue
    selectors = []
    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [(m.name, m.value) for m in node.matchers.matchers]
            name = node.name or dict(matchers).get("__name__")
            selectors.append({"metric": name, "labels": [m[0] for m in matchers if m[0] != "__name__"]})
    promql_parser.walk(expr, visit, None)
    out["expressions"].append({"name": item["name"], "selectors": selectors})
for value in vars(appservice_api).values():
    if isinstance(value, (Counter, Gauge, Histogram)):
        names = {Counter: [value._name + "_total"], Gauge: [value._name],
                 Histogram: [value._name + s for s in ("_bucket", "_sum", "_count")]}[type(value)]
        for name in names:
            out["synapse"][name] = list(value._labelnames)
print(json.dumps(out))
"#;

fn docs(file: &str) -> PathBuf {
    repo_root().join("docs").join(file)
}

fn alert_rules() -> Vec<Value> {
    let text = std::fs::read_to_string(docs("alerts.yaml")).expect("docs/alerts.yaml");
    let file: Value = serde_yaml::from_str(&text).expect("docs/alerts.yaml is YAML");
    file["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").clone())
        .collect()
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(docs("grafana-dashboard.json"))
        .expect("docs/grafana-dashboard.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every panel, also those inside collapsed rows.
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel.clone());
        if let Some(inner) = panel["panels"].as_array() {
            all.extend(inner.iter().cloned());
        }
    }
    all
}

/// Grafana's variables replaced by sample values, so the expression is plain PromQL.
fn without_variables(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (variable, value) in [
        ("$__rate_interval", "5m"),
        ("$__interval", "1m"),
        ("$__range", "1h"),
        ("${tenant}", ".*"),
        ("$tenant", ".*"),
        ("${appservice}", "openmeet"),
        ("$appservice", "openmeet"),
    ] {
        out = out.replace(variable, value);
    }
    assert!(
        !out.contains('$'),
        "an unknown Grafana variable in {expr:?}: add it to the dashboard's templating and here"
    );
    out
}

/// Every expression to check, named by where it is.
fn expressions() -> Vec<Value> {
    let mut all: Vec<Value> = alert_rules()
        .iter()
        .map(|rule| {
            json!({"name": format!("docs/alerts.yaml alert {}", rule["alert"].as_str().unwrap()),
                "expr": rule["expr"].as_str().expect("every alert has an expr")})
        })
        .collect();
    for panel in panels(&dashboard()) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            all.push(json!({
                "name": format!(
                    "docs/grafana-dashboard.json panel {:?} target {}",
                    panel["title"].as_str().unwrap_or_default(),
                    target["refId"].as_str().unwrap_or_default(),
                ),
                "expr": without_variables(expr),
            }));
        }
    }
    all
}

fn parse_all(expressions: &[Value]) -> Value {
    let input = serde_json::to_string(expressions).unwrap();
    let output = run_script("the PromQL parser script", PARSE, input.as_bytes());
    serde_json::from_slice(&output).expect("the script prints JSON")
}

/// The names a family exposes: itself, and for histograms its series.
fn exported_openmeet_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for family in Metrics::new().metric_names() {
        for suffix in ["", "_bucket", "_sum", "_count"] {
            names.insert(format!("{family}{suffix}"));
        }
    }
    names
}

#[test]
fn every_expression_parses_and_names_metrics_that_exist() {
    let expressions = expressions();
    assert!(
        expressions.len() > ALERTS.len(),
        "the dashboard has targets"
    );
    let parsed = parse_all(&expressions);
    let ours = exported_openmeet_names();
    let synapse = parsed["synapse"].as_object().unwrap();
    assert!(
        synapse.contains_key("synapse_appservice_api_failed_transactions_total"),
        "Synapse's appservice metrics were not found: {synapse:?}"
    );
    let mut problems = Vec::new();
    for result in parsed["expressions"].as_array().unwrap() {
        let name = result["name"].as_str().unwrap();
        if let Some(error) = result["error"].as_str() {
            problems.push(format!("{name}: does not parse: {error}"));
            continue;
        }
        let selectors = result["selectors"].as_array().unwrap();
        if selectors.is_empty() {
            problems.push(format!("{name}: selects no metric"));
        }
        for selector in selectors {
            let Some(metric) = selector["metric"].as_str() else {
                problems.push(format!("{name}: a selector without a metric name"));
                continue;
            };
            if metric.starts_with("openmeet_as_") {
                if !ours.contains(metric) {
                    problems.push(format!("{name}: the daemon exports no {metric}"));
                }
            } else if let Some(labels) = synapse.get(metric) {
                for label in selector["labels"].as_array().unwrap() {
                    if !labels.as_array().unwrap().contains(label) {
                        problems.push(format!("{name}: Synapse's {metric} has no label {label}"));
                    }
                }
            } else {
                problems.push(format!(
                    "{name}: {metric} is neither the daemon's nor one of Synapse's appservice metrics"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// GitHub's anchor for a heading: lowercase, spaces to `-`, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_has_a_duration_severity_summary_and_runbook() {
    let rules = alert_rules();
    let names: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    assert_eq!(names, ALERTS);
    let runbook = std::fs::read_to_string(docs("operations.md")).expect("docs/operations.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect();
    for rule in &rules {
        let name = rule["alert"].as_str().unwrap();
        let duration = rule["for"].as_str().unwrap_or_default();
        assert!(
            duration.ends_with('m') || duration.ends_with('s'),
            "{name}: `for` is {duration:?}"
        );
        let severity = &rule["labels"]["severity"];
        assert!(
            severity == "critical" || severity == "warning",
            "{name}: severity {severity}"
        );
        for key in ["summary", "description"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{name}: no {key}"
            );
        }
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        let target = url
            .strip_prefix("docs/operations.md#")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url:?} is not docs/operations.md#…"));
        assert_eq!(
            target,
            anchor(name),
            "{name}: the runbook anchor is its name"
        );
        assert!(
            anchors.contains(target),
            "{name}: docs/operations.md has no heading for #{target}"
        );
    }
}

#[test]
fn the_dashboard_is_importable() {
    let dashboard = dashboard();
    assert!(dashboard["schemaVersion"].as_i64().unwrap() >= 36);
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    assert_eq!(dashboard["__inputs"][0]["pluginId"], "prometheus");
    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = &panel["title"];
        assert!(
            ids.insert(panel["id"].as_i64().unwrap()),
            "panel ids repeat: {title}"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "panel {title} uses another datasource"
        );
        assert!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "panel {title} has no query"
        );
        for key in ["x", "y", "w", "h"] {
            assert!(
                panel["gridPos"][key].is_u64(),
                "panel {title}: gridPos.{key}"
            );
        }
    }
}
