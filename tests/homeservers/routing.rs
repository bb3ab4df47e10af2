//! Each tenant's room on its own homeserver, by its own bot; the second Synapse stopped holds up
//! only its tenants, whose work completes once it is back.

use std::time::Duration;

use reqwest::StatusCode;

use super::{
    DEFAULT_SERVER, SECOND, SECOND_SERVER, assert_room_on, bot, environment, fresh_config,
    homeserver_readiness, job, room_with_host, turn,
};
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::{login_via_mas, register_user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_lives_on_its_homeserver_and_a_stopped_one_holds_up_only_its_tenants() {
    let env = environment();
    let _turn = turn().await;
    let default_url = env.default_hs.url.clone();
    let daemon = Daemon::start(fresh_config()).await;
    daemon.wait_ready(true, Duration::from_secs(60)).await;
    let alice = register_user(&default_url, "routing-alice").await;
    let bob = login_via_mas(&env.mas_url(), "routing-bob").await;

    // Each tenant's room on its own server, by its own bot, with that server's alias.
    let a = daemon
        .declare(
            "tenantA",
            "event",
            "routed",
            room_with_host("Routed A", &alice.user_id),
        )
        .await;
    let b = daemon
        .declare(
            "tenantB",
            "event",
            "routed",
            room_with_host("Routed B", &bob.user_id),
        )
        .await;
    assert_room_on(
        &default_url,
        &a,
        &format!("#event-routed-tenantA:{DEFAULT_SERVER}"),
        &bot("tenantA", DEFAULT_SERVER),
        &alice,
    )
    .await;
    assert_room_on(
        &env.second_url,
        &b,
        &format!("#event-routed-tenantB:{SECOND_SERVER}"),
        &bot("tenantB", SECOND_SERVER),
        &bob,
    )
    .await;
    // GET names the tenant's own alias; the calls are counted per homeserver.
    let room_b = daemon.get_room("tenantB", "event", "routed").await;
    assert_eq!(
        room_b["alias"],
        format!("#event-routed-tenantB:{SECOND_SERVER}")
    );
    for homeserver in ["default", SECOND] {
        let labels = format!("endpoint=\"create_room\",errcode=\"ok\",homeserver=\"{homeserver}\"");
        assert_eq!(
            daemon
                .metric("openmeet_as_homeserver_requests_total", &labels)
                .await,
            1.0,
            "one createRoom on {homeserver}"
        );
    }
    // Readiness names both homeservers; the second's as_token is accepted there.
    let (status, body) = daemon.readiness().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["homeservers"]["default"]["healthy"], true, "{body}");
    eventually(
        "readiness to say the second homeserver accepts the as_token",
        Duration::from_secs(30),
        || async {
            let second = homeserver_readiness(&daemon, SECOND).await.1;
            (second["as_token"] == true && second["reachable"] == true).then_some(())
        },
    )
    .await;

    // The second Synapse goes away; both tenants keep declaring rooms.
    env.stop_second();
    let waiting = daemon
        .put_room(
            "tenantB",
            "event",
            "during-outage",
            room_with_host("During B", &bob.user_id),
        )
        .await;
    let meanwhile = daemon
        .declare(
            "tenantA",
            "event",
            "during-outage",
            room_with_host("During A", &alice.user_id),
        )
        .await;
    assert_room_on(
        &default_url,
        &meanwhile,
        &format!("#event-during-outage-tenantA:{DEFAULT_SERVER}"),
        &bot("tenantA", DEFAULT_SERVER),
        &alice,
    )
    .await;
    // Readiness stays 200 and names the unhealthy homeserver.
    let second = eventually(
        "readiness to find the second homeserver unreachable",
        Duration::from_secs(30),
        || async {
            let (status, second) = homeserver_readiness(&daemon, SECOND).await;
            assert_eq!(status, StatusCode::OK, "{second}");
            (second["reachable"] == false).then_some(second)
        },
    )
    .await;
    assert_eq!(second["healthy"], false, "{second}");
    let (status, body) = daemon.readiness().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["homeservers"]["default"]["healthy"], true, "{body}");
    assert!(
        daemon
            .metric(
                "openmeet_as_homeserver_unreachable_total",
                &format!("homeserver=\"{SECOND}\"")
            )
            .await
            >= 1.0
    );
    assert_eq!(
        daemon
            .metric(
                "openmeet_as_homeserver_unreachable_total",
                "homeserver=\"default\""
            )
            .await,
        0.0
    );
    // Tenant B's job waits: queued, not failed, not dead, no attempt spent on the outage (an
    // attempt that found the homeserver away may still be recording that it paused).
    let during = eventually(
        "tenant B's job to be back in the queue",
        Duration::from_secs(10),
        || async {
            let during = job(&daemon, "tenantB", waiting).await;
            (during["status"] != "running").then_some(during)
        },
    )
    .await;
    assert_eq!(during["status"], "queued", "{during}");
    assert_eq!(during["attempts"], 0, "{during}");
    assert_eq!(daemon.metric("openmeet_as_jobs_total", "dead").await, 0.0);

    // The second Synapse is back: tenant B's room is made there.
    env.start_second();
    let done = daemon
        .wait_for_job(waiting, &daemon.config.tenant_token("tenantB"))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", daemon.logs());
    assert_room_on(
        &env.second_url,
        &done,
        &format!("#event-during-outage-tenantB:{SECOND_SERVER}"),
        &bot("tenantB", SECOND_SERVER),
        &bob,
    )
    .await;
    eventually(
        "the second homeserver to be reachable again",
        Duration::from_secs(30),
        || async {
            (homeserver_readiness(&daemon, SECOND).await.1["reachable"] == true).then_some(())
        },
    )
    .await;
}
