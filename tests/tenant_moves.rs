#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! A tenant's rooms live on its homeserver (DESIGN §13): a SIGHUP, or a restart, whose config moves
//! a tenant with declared rooms to another homeserver is refused, naming the rooms; a tenant with
//! no rooms, or only deleted ones, moves. Neither homeserver needs to run: the rooms are declared (pending) in
//! the daemon's database, on both backends.

mod support;

use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use support::daemon::{BIN, Daemon, DaemonConfig, ExtraHomeserver};
use support::{Backend, eventually};

on_both_backends!(a_reload_that_moves_a_tenant_with_rooms_is_refused_naming_them);

async fn reloads(daemon: &Daemon, outcome: &str, want: f64) {
    let labels = format!("outcome=\"{outcome}\"");
    eventually(
        &format!("{want} {outcome} reload(s)"),
        Duration::from_secs(10),
        || async {
            (daemon
                .metric("openmeet_as_config_reloads_total", &labels)
                .await
                >= want)
                .then_some(())
        },
    )
    .await;
}

async fn a_reload_that_moves_a_tenant_with_rooms_is_refused_naming_them(backend: Backend) {
    let mut config = DaemonConfig::new("moves", backend.database_url("tenant_moves"));
    config.tenants = ["tenantA", "tenantB", "tenantC"]
        .map(|id| (id.to_owned(), format!("Tenant {id}")))
        .to_vec();
    let second_url = format!("http://127.0.0.1:{}", support::python::free_port());
    config
        .homeservers
        .push(ExtraHomeserver::new("eu-b", &second_url, "matrix-b.test"));
    let mut daemon = Daemon::start(config).await;

    for i in 0..12 {
        daemon
            .put_room(
                "tenantA",
                "event",
                &format!("room-{i:02}"),
                json!({"name": "R", "visibility": "private"}),
            )
            .await;
    }
    // tenant C had a room, deleted since: nothing of it stays declared.
    daemon
        .put_room(
            "tenantC",
            "group",
            "gone",
            json!({"name": "G", "visibility": "private"}),
        )
        .await;
    let token = daemon.config.tenant_token("tenantC");
    let (status, answer) = daemon
        .platform(
            Method::DELETE,
            "/v1/tenants/tenantC/rooms/group/gone",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

    daemon.config.homeservers[0].tenants =
        ["tenantA", "tenantB", "tenantC"].map(String::from).to_vec();
    daemon.reload();
    reloads(&daemon, "rejected", 1.0).await;
    let logs = daemon.logs();
    let named: Vec<String> = (0..10).map(|i| format!("event/room-{i:02}")).collect();
    let expected = format!(
        "tenant \"tenantA\" would move from homeserver \"default\" to \"eu-b\" while it has 12 declared room(s) there ({} and 2 more)",
        named.join(", ")
    );
    assert!(logs.contains(&expected), "no {expected:?} in:\n{logs}");
    assert!(!logs.contains("tenant \"tenantB\" would move"), "{logs}");
    assert!(!logs.contains("tenant \"tenantC\" would move"), "{logs}");

    // Without tenant A, the others move: B has no rooms, C only a deleted one.
    daemon.config.homeservers[0].tenants = ["tenantB", "tenantC"].map(String::from).to_vec();
    daemon.reload();
    reloads(&daemon, "applied", 1.0).await;
    assert_eq!(
        daemon
            .metric("openmeet_as_config_reloads_total", "outcome=\"rejected\"")
            .await,
        1.0
    );
    daemon.stop();

    // A restart with tenant A moved (a rollout with the new config) is refused as well: the
    // database records where its rooms live.
    daemon.config.homeservers[0].tenants =
        ["tenantA", "tenantB", "tenantC"].map(String::from).to_vec();
    let config = daemon.config.write();
    let output = Command::new("timeout")
        .arg("60")
        .arg(BIN)
        .args(["serve", "-c"])
        .arg(&config)
        .output()
        .expect("run openmeet-appservice serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
    assert!(stderr.contains(&expected), "no {expected:?} in:\n{stderr}");
    daemon.config.assert_no_secret_in("serve's stderr", &stderr);

    // Moved back, it starts; a room declared from now on records the tenant's homeserver.
    daemon.config.homeservers[0].tenants = ["tenantB", "tenantC"].map(String::from).to_vec();
    daemon.restart().await;
    daemon
        .put_room(
            "tenantB",
            "event",
            "on-b",
            json!({"name": "B", "visibility": "private"}),
        )
        .await;
    let (code, stdout, stderr) = daemon.config.cli(&["rooms", "list", "--tenant", "tenantB"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"homeserver\":\"eu-b\""), "{stdout}");
    daemon.stop();
}
