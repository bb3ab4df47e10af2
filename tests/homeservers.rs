#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Several homeservers in one daemon (DESIGN §13), end to end against two real Synapses with
//! different server names, the second delegating authentication to the stand-in MAS as
//! OpenMeet's own Synapse does. Tenant A lives on the default homeserver, tenant B on the second:
//!
//! - each tenant's room is created on its own server, by its own bot, with that server's alias,
//!   its members invited and their power levels set;
//! - the second Synapse stopped: tenant B's jobs wait (queued, neither failed nor dead) while
//!   tenant A's rooms are created, readiness stays 200 and names the unhealthy homeserver; B's
//!   work completes once that Synapse is back;
//! - the second homeserver refusing the as_token (a config with the wrong one): only its tenants
//!   pause; a SIGHUP with the right token resumes them.
//!
//! One pair of Synapses per test process; the tests take turns on the appservice port both
//! registrations name, each with its own daemon and database, and keep apart through their own
//! rooms and users.

mod support;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::MutexGuard;

use support::daemon::{Daemon, DaemonConfig, ExtraHomeserver};
use support::eventually;
use support::matrix_client::{TestUser, login_via_mas, register_user};
use support::python::{free_port, scratch_dir};
use support::synapse::{Placement, Start, Synapse, start_pair};

const DEFAULT_SERVER: &str = "default.openmeet.test";
const SECOND_SERVER: &str = "second.openmeet.test";
const SECOND: &str = "eu-second";

struct Environment {
    default_hs: Synapse,
    /// `None` while a test has it stopped.
    second_hs: Mutex<Option<Synapse>>,
    /// Where the second Synapse runs, so that it starts again with the same database.
    second_placement: Placement,
    second_registration: std::path::PathBuf,
    second_url: String,
    /// The config whose registrations the Synapses loaded; every daemon starts from a copy.
    config: DaemonConfig,
}

fn environment() -> &'static Environment {
    static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let (default_port, second_port) = (free_port(), free_port());
        let second_url = format!("http://127.0.0.1:{second_port}");
        let mut config = DaemonConfig::new("homeservers", None);
        config.server_name = DEFAULT_SERVER.into();
        config.homeserver_url = format!("http://127.0.0.1:{default_port}");
        config.check_interval_seconds = 2;
        config.tenants = vec![
            ("tenantA".into(), "Tenant A".into()),
            ("tenantB".into(), "Tenant B".into()),
        ];
        let mut second = ExtraHomeserver::new(SECOND, &second_url, SECOND_SERVER);
        second.tenants.push("tenantB".into());
        config.homeservers.push(second);
        let default_registration = config.registration();
        let second_registration = config.registration_of(SECOND);
        config.appservice_port_registered = true;
        let second_placement = Placement {
            port: Some(second_port),
            workdir: Some(scratch_dir("synapse-second")),
            database_dir: Some(scratch_dir("synapse-second-db")),
            mas: true,
            allow_publication: true,
        };
        let (default_hs, second_hs) = start_pair(
            Start(
                DEFAULT_SERVER,
                &[default_registration],
                Placement::at_port(default_port),
            ),
            Start(
                SECOND_SERVER,
                std::slice::from_ref(&second_registration),
                second_placement.clone(),
            ),
        );
        Environment {
            default_hs,
            second_hs: Mutex::new(Some(second_hs)),
            second_placement,
            second_registration,
            second_url,
            config,
        }
    })
}

impl Environment {
    /// The stand-in MAS of the second Synapse as it runs now (a restart moves it; its sessions
    /// stay valid).
    fn mas_url(&self) -> String {
        let second = self.second_hs.lock().unwrap();
        let second = second.as_ref().expect("the second Synapse runs");
        second.mas_url.clone().expect("the stand-in MAS's URL")
    }

    /// Stops the second Synapse (SIGTERM through its runner) and waits until it is gone.
    fn stop_second(&self) {
        let synapse = self.second_hs.lock().unwrap().take();
        tokio::task::block_in_place(|| drop(synapse));
    }

    /// Starts the second Synapse again on its port, workdir and database, unless it runs.
    fn start_second(&self) {
        let mut second = self.second_hs.lock().unwrap();
        if second.is_none() {
            *second = Some(tokio::task::block_in_place(|| {
                Synapse::start_with(
                    SECOND_SERVER,
                    std::slice::from_ref(&self.second_registration),
                    &self.second_placement,
                )
            }));
        }
    }
}

/// Only one daemon at a time can own the registered appservice port; a test that stopped the
/// second Synapse leaves it running again when it ends well (the next turn starts it otherwise).
async fn turn() -> MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = TURN.lock().await;
    environment().start_second();
    guard
}

/// A copy of the registered config on a fresh SQLite database in a fresh directory.
fn fresh_config() -> DaemonConfig {
    let fresh = DaemonConfig::new("homeservers", None);
    DaemonConfig {
        dir: fresh.dir,
        database_url: fresh.database_url,
        ..environment().config.clone()
    }
}

fn bot(tenant: &str, server: &str) -> String {
    format!("@openmeet-bot-{}:{server}", tenant.to_lowercase())
}

/// A room declaration with one host.
fn room_with_host(name: &str, host: &str) -> Value {
    json!({"name": name, "visibility": "private", "members": [{"user_id": host, "role": "host"}]})
}

/// `/health/ready`'s answer for one homeserver.
async fn homeserver_readiness(daemon: &Daemon, id: &str) -> (StatusCode, Value) {
    let (status, body) = daemon.readiness().await;
    (status, body["homeservers"][id].clone())
}

/// The job as its tenant sees it now.
async fn job(daemon: &Daemon, tenant: &str, id: i64) -> Value {
    let token = daemon.config.tenant_token(tenant);
    let (status, job) = daemon
        .platform(Method::GET, &format!("/v1/jobs/{id}"), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    job
}

/// Asserts that the room the job made lives on `hs`: made by `bot`, named by `alias` there,
/// `member` invited with power level 100. The member joins.
async fn assert_room_on(hs: &str, job: &Value, alias: &str, bot: &str, member: &TestUser) {
    let room_id = job["result"]["room_id"].as_str().expect("the room's id");
    assert_eq!(job["result"]["alias"], alias, "{job}");
    let (status, resolved) = member.resolve_alias(hs, alias).await;
    assert_eq!(status, StatusCode::OK, "{alias} on {hs}: {resolved}");
    assert_eq!(resolved["room_id"], room_id);
    member.join(hs, room_id).await;
    let state = member.room_state(hs, room_id).await;
    let event = |event_type: &str| {
        state
            .iter()
            .find(|event| event["type"] == event_type && event["state_key"] == "")
            .unwrap_or_else(|| panic!("no {event_type} in {state:#?}"))
            .clone()
    };
    assert_eq!(event("m.room.create")["sender"], bot, "the room's creator");
    assert_eq!(event("m.room.canonical_alias")["content"]["alias"], alias);
    let levels = event("m.room.power_levels")["content"].clone();
    assert_eq!(levels["users"][&member.user_id], 100, "{levels:#}");
    let memberships = member.members(hs, room_id).await;
    for (user, membership) in [(bot, "join"), (member.user_id.as_str(), "join")] {
        assert!(
            memberships
                .iter()
                .any(|(u, m)| u == user && m == membership),
            "{user} is not {membership}ed: {memberships:?}"
        );
    }
}

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

/// DESIGN §7.5: a tenant that opted into the server-wide directory (`server_directory: true`) on
/// a Synapse whose operator allows the tenant bots to publish (`room_list_publication_rules`, as
/// the runbook says) has its public rooms listed there as well as in its own directory, and a room
/// that stops being public leaves both. Each homeserver offers the directories of its own tenants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_opted_in_is_listed_server_wide_where_synapse_allows_it() {
    let env = environment();
    let _turn = turn().await;
    let mut config = fresh_config();
    config.server_directory = vec!["tenantB".into()];
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(60)).await;
    let bob = login_via_mas(&env.mas_url(), "directory-bob").await;
    let hs = env.second_url.as_str();
    let public = json!({"name": "Listed B", "visibility": "public"});
    let job = daemon.declare("tenantB", "event", "listed", public).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    let room = daemon.get_room("tenantB", "event", "listed").await;
    assert_eq!(room["directory_note"], Value::Null, "{room}");

    let protocols = bob.protocols(hs).await;
    let instances = protocols["openmeet"]["instances"].as_array().unwrap();
    assert_eq!(
        instances.len(),
        1,
        "only this homeserver's tenant: {protocols}"
    );
    assert_eq!(instances[0]["network_id"], "tenantB", "{protocols}");
    let instance = instances[0]["instance_id"].as_str().unwrap().to_owned();
    let listed = |instance: Option<String>, want: bool| {
        let (bob, room_id) = (&bob, room_id.clone());
        async move {
            eventually("the listing", Duration::from_secs(15), || async {
                let rooms = bob.public_rooms(hs, instance.as_deref()).await;
                (rooms.contains(&room_id) == want).then_some(())
            })
            .await
        }
    };
    listed(Some(instance.clone()), true).await;
    listed(None, true).await;

    let private = json!({"name": "Listed B", "visibility": "private"});
    daemon.declare("tenantB", "event", "listed", private).await;
    listed(Some(instance), false).await;
    listed(None, false).await;
}
