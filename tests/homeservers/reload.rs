//! Reloads (SIGHUP): a homeserver refusing the as_token pauses only its tenants until a reload
//! with the right token, and a homeserver added by a reload gets its client and checks and
//! serves its tenant.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{
    DEFAULT_SERVER, SECOND, SECOND_SERVER, assert_room_on, bot, environment, fresh_config,
    homeserver_readiness, job, room_with_host, turn,
};
use crate::support;
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::{login_via_mas, register_user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_as_token_pauses_only_that_homeservers_tenants_until_a_reload_fixes_it() {
    let env = environment();
    let _turn = turn().await;
    let default_url = env.default_hs.url.clone();
    let mut config = fresh_config();
    let right = config.homeservers[0].tokens.as_token.clone();
    let wrong = format!("wrong{}", support::daemon::Tokens::fresh().as_token);
    config.homeservers[0].tokens.as_token = wrong.clone();
    config.extra_secrets.push(wrong);
    let admin = format!("adm{}", support::daemon::Tokens::fresh().as_token);
    config.extra_yaml = format!("admin_token: {admin}\n");
    config.extra_secrets.push(admin.clone());
    let mut daemon = Daemon::start(config).await;
    // Ready: the default homeserver is healthy; the second refuses the token.
    daemon.wait_ready(true, Duration::from_secs(60)).await;
    eventually(
        "readiness to say the second homeserver refuses the as_token",
        Duration::from_secs(30),
        || async {
            let (status, second) = homeserver_readiness(&daemon, SECOND).await;
            assert_eq!(status, StatusCode::OK, "{second}");
            (second["as_token"] == false && second["reachable"] == true).then_some(())
        },
    )
    .await;
    let alice = register_user(&default_url, "token-alice").await;
    let bob = login_via_mas(&env.mas_url(), "token-bob").await;

    let paused = daemon
        .put_room(
            "tenantB",
            "event",
            "refused",
            room_with_host("Refused B", &bob.user_id),
        )
        .await;
    let a = daemon
        .declare(
            "tenantA",
            "event",
            "while-refused",
            room_with_host("While refused A", &alice.user_id),
        )
        .await;
    assert_room_on(
        &default_url,
        &a,
        &format!("#event-while-refused-tenantA:{DEFAULT_SERVER}"),
        &bot("tenantA", DEFAULT_SERVER),
        &alice,
    )
    .await;
    let during = job(&daemon, "tenantB", paused).await;
    assert_eq!(during["status"], "queued", "{during}");
    assert_eq!(during["attempts"], 0, "{during}");
    // Not even tried: the worker takes no job of a tenant whose homeserver refuses the token.
    assert_eq!(
        daemon
            .metric("openmeet_as_jobs_total", "outcome=\"paused\"")
            .await,
        0.0,
        "tenant B's job was tried while its homeserver refused the token"
    );

    // Status, from the daemon and from the command, shows each homeserver.
    let (status, answer) = daemon
        .platform(Method::GET, "/v1/status", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let homeservers = answer["homeservers"].as_array().unwrap();
    assert_eq!(
        homeservers
            .iter()
            .map(|h| (h["id"].as_str().unwrap(), h["as_token"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("default", "accepted"), (SECOND, "rejected")],
        "{answer:#}"
    );
    assert_eq!(homeservers[1]["server_name"], SECOND_SERVER);
    assert_eq!(homeservers[1]["tenants"], json!(["tenantB"]));
    let tenant_b = answer["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "tenantB")
        .unwrap();
    assert_eq!(
        (&tenant_b["homeserver"], &tenant_b["as_token"]),
        (&json!(SECOND), &json!("rejected")),
        "{tenant_b:#}"
    );
    let (code, table, stderr) = tokio::task::block_in_place(|| daemon.config.cli(&["status"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        table.lines().any(|line| line.starts_with(SECOND)
            && line.contains("rejected")
            && line.contains("tenantB")),
        "{table}"
    );
    assert!(
        stderr.contains(&format!("the homeserver {SECOND} at")) && stderr.contains("refuses"),
        "{stderr}"
    );
    assert!(
        daemon
            .metric(
                "openmeet_as_token_rejected_total",
                &format!("homeserver=\"{SECOND}\"")
            )
            .await
            >= 1.0
    );
    assert_eq!(
        daemon
            .metric("openmeet_as_token_rejected_total", "homeserver=\"default\"")
            .await,
        0.0
    );

    // The right token by SIGHUP: tenant B's job runs, the second homeserver accepts the token.
    daemon.config.homeservers[0].tokens.as_token = right;
    daemon.reload();
    let done = daemon
        .wait_for_job(paused, &daemon.config.tenant_token("tenantB"))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", daemon.logs());
    assert_room_on(
        &env.second_url,
        &done,
        &format!("#event-refused-tenantB:{SECOND_SERVER}"),
        &bot("tenantB", SECOND_SERVER),
        &bob,
    )
    .await;
    eventually(
        "readiness to say the second homeserver accepts the as_token",
        Duration::from_secs(30),
        || async {
            (homeserver_readiness(&daemon, SECOND).await.1["as_token"] == true).then_some(())
        },
    )
    .await;
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_homeserver_added_by_sighup_gets_its_client_and_checks_and_serves_its_tenant() {
    let env = environment();
    let _turn = turn().await;
    let registered = fresh_config();
    let mut config = registered.clone();
    config.homeservers.clear();
    config.tenants.retain(|(id, _)| id == "tenantA");
    let mut daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(60)).await;
    let (_, body) = daemon.readiness().await;
    assert_eq!(
        body["homeservers"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["default"],
        "{body}"
    );

    // The second homeserver and its tenant arrive by SIGHUP.
    daemon.config.homeservers = registered.homeservers.clone();
    daemon.config.tenants = registered.tenants.clone();
    daemon.reload();
    eventually(
        "readiness to name the added homeserver with its token accepted",
        Duration::from_secs(30),
        || async {
            let second = homeserver_readiness(&daemon, SECOND).await.1;
            (second["as_token"] == true).then_some(())
        },
    )
    .await;
    let bob = login_via_mas(&env.mas_url(), "added-bob").await;
    let b = daemon
        .declare(
            "tenantB",
            "event",
            "added",
            room_with_host("Added B", &bob.user_id),
        )
        .await;
    assert_room_on(
        &env.second_url,
        &b,
        &format!("#event-added-tenantB:{SECOND_SERVER}"),
        &bot("tenantB", SECOND_SERVER),
        &bob,
    )
    .await;
    daemon.stop();
}
