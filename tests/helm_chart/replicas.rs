//! Several replicas (DESIGN §15): 2 by default on PostgreSQL with a PodDisruptionBudget, pod
//! anti-affinity and topology spread, each pod claiming jobs under its own name and given time to
//! hand its work back on SIGTERM; one on SQLite (replicaCount forced to 1, as DESIGN §12 says).

use std::path::Path;

use openmeet_appservice::config::Config;
use serde_json::{Value, json};

use super::render::{deployment, materialize, object, rendered, rendered_case};

/// The daemon's shutdown grace (DESIGN §15): jobs in hand may take this long to finish.
const DAEMON_SHUTDOWN_GRACE_SECONDS: i64 = 10;

fn pod_spec(name: &str) -> &'static Value {
    &deployment(name)["spec"]["template"]["spec"]
}

fn pdb(name: &str) -> Option<&'static Value> {
    object(name, "PodDisruptionBudget", "").map(|o| &o["object"]["spec"])
}

/// The Deployment's selector, which every anti-affinity term and spread constraint must match.
fn selector(name: &str) -> &'static Value {
    &deployment(name)["spec"]["selector"]["matchLabels"]
}

#[test]
fn postgres_runs_two_replicas_by_default_kept_apart_under_a_disruption_budget() {
    let name = "postgres-default";
    let spec = &deployment(name)["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        "a new pod is ready before an old one stops"
    );

    let budget = pdb(name).expect("a PodDisruptionBudget over two replicas");
    assert_eq!(budget["maxUnavailable"], 1);
    assert!(budget["minAvailable"].is_null());
    assert_eq!(budget["unhealthyPodEvictionPolicy"], "AlwaysAllow");
    assert_eq!(budget["selector"]["matchLabels"], *selector(name));

    let pod = pod_spec(name);
    assert_eq!(
        pod["affinity"],
        json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": selector(name)}},
        }]}})
    );
    assert_eq!(
        pod["topologySpreadConstraints"],
        json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector(name)}}])
    );
    let notes = rendered_case(name)["notes"].as_str().unwrap();
    assert!(
        notes.contains("PostgreSQL, 2 replica(s) sharing the queue"),
        "{notes}"
    );
}

#[test]
fn each_pod_claims_jobs_under_its_own_name() {
    for name in ["default", "postgres-default", "postgres-scheduling"] {
        let container = &pod_spec(name)["containers"][0];
        assert_eq!(
            container["env"],
            json!([{"name": "OPENMEET_AS__JOBS__WORKER_ID",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
            "{name}"
        );
    }
    // The daemon reads that variable as jobs.worker_id over the chart's config.
    let pod_name = "om-openmeet-appservice-5d8c7b9f4-x2x7q";
    let env_name = pod_spec("postgres-default")["containers"][0]["env"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = materialize("postgres-default");
    let path = dir.join("config.yaml");
    let config = Config::from_yaml(
        Path::new(&path),
        &std::fs::read_to_string(&path).unwrap(),
        [(env_name, pod_name.to_owned())],
    )
    .unwrap_or_else(|e| panic!("the chart's config with the pod's variable: {e}"));
    assert_eq!(config.jobs.worker_id, pod_name);

    // A worker id the operator fixed is kept for one replica, refused for several.
    assert!(
        pod_spec("sqlite-worker-id")["containers"][0]["env"].is_null(),
        "config.jobs.worker_id given: the chart does not override it"
    );
    let refusal = rendered().answer["refused"]["postgres-shared-worker-id"]
        .as_str()
        .expect("a fixed worker id over two replicas is refused");
    assert!(
        refusal.contains("config.jobs.worker_id is \"appservice-main\", but 2 replicas would all claim jobs and leases under that one name"),
        "{refusal}"
    );
}

#[test]
fn the_grace_period_outlasts_the_daemons_shutdown() {
    for name in ["default", "postgres-default"] {
        let grace = pod_spec(name)["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name}: no terminationGracePeriodSeconds"));
        assert!(
            grace > DAEMON_SHUTDOWN_GRACE_SECONDS + 5,
            "{name}: {grace} s leaves the daemon no time to hand back its jobs and leases"
        );
    }
    assert_eq!(
        pod_spec("postgres-scheduling")["terminationGracePeriodSeconds"],
        60
    );
    let rejected = &rendered().answer["rejected"];
    assert!(rejected["short-termination-grace"].is_string());
}

#[test]
fn sqlite_runs_one_replica_without_a_budget_even_when_asked_for_more() {
    for name in [
        "default",
        "sqlite-one-replica",
        "sqlite-worker-id",
        "sqlite-three-replicas",
    ] {
        let spec = &deployment(name)["spec"];
        assert_eq!(spec["replicas"], 1, "{name}");
        assert_eq!(spec["strategy"], json!({"type": "Recreate"}), "{name}");
        assert!(pdb(name).is_none(), "{name}: a budget over one pod");
        let pod = &spec["template"]["spec"];
        assert!(pod["affinity"].is_null(), "{name}: {}", pod["affinity"]);
        assert!(pod["topologySpreadConstraints"].is_null(), "{name}");
    }
    // DESIGN §12: forced to 1, and the notes say so.
    let notes = rendered_case("sqlite-three-replicas")["notes"]
        .as_str()
        .unwrap();
    assert!(
        notes.contains(
            "replicaCount 3 was forced to 1, as SQLite is a file one process alone may open"
        ),
        "{notes}"
    );
    let default_notes = rendered_case("default")["notes"].as_str().unwrap();
    assert!(!default_notes.contains("forced"), "{default_notes}");
    let rejected = &rendered().answer["rejected"];
    assert!(rejected["zero-replicas"].is_string());
}

#[test]
fn one_replica_on_postgres_rolls_without_a_budget_or_spreading() {
    let name = "postgres-one-replica";
    let spec = &deployment(name)["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert!(pdb(name).is_none(), "a budget over one pod blocks drains");
    assert!(spec["template"]["spec"]["affinity"].is_null());
    assert!(spec["template"]["spec"]["topologySpreadConstraints"].is_null());
}

#[test]
fn scheduling_values_override_the_defaults() {
    let name = "postgres-scheduling";
    assert_eq!(deployment(name)["spec"]["replicas"], 4);
    let pod = pod_spec(name);
    assert_eq!(
        pod["affinity"]["podAntiAffinity"],
        json!({"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector(name)}}]})
    );
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["key"],
        "pool",
        "the operator's affinity is kept beside the chart's anti-affinity"
    );
    assert_eq!(
        pod["topologySpreadConstraints"],
        json!([
            {"maxSkew": 2, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": selector(name)}},
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"team": "chat"}}},
        ])
    );
    let budget = pdb(name).unwrap();
    assert_eq!(budget["minAvailable"], 3);
    assert!(
        budget["maxUnavailable"].is_null(),
        "minAvailable replaces maxUnavailable"
    );
    assert_eq!(budget["unhealthyPodEvictionPolicy"], "IfHealthyBudget");

    // An anti-affinity of the operator's own replaces the chart's; [] spreads nothing.
    let own = pod_spec("postgres-own-anti-affinity");
    assert_eq!(
        own["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        50
    );
    assert_eq!(
        own["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(own["topologySpreadConstraints"].is_null());
    assert!(pdb("postgres-own-anti-affinity").is_none());
    let none = pod_spec("postgres-no-anti-affinity");
    assert!(none["affinity"].is_null(), "{}", none["affinity"]);
    assert!(none["topologySpreadConstraints"].is_array());
    assert!(rendered().answer["rejected"]["anti-affinity-soft"].is_string());
}
