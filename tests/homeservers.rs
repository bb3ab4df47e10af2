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
//!
//! One binary, so that the pair of Synapses starts once; a module per concern, the environment and
//! helpers they share below.

mod support;

#[path = "homeservers/directory.rs"]
mod directory;
#[path = "homeservers/reload.rs"]
mod reload;
#[path = "homeservers/routing.rs"]
mod routing;

use std::sync::{Mutex, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::MutexGuard;

use crate::support::daemon::{Daemon, DaemonConfig, ExtraHomeserver};
use crate::support::matrix_client::TestUser;
use crate::support::python::{free_port, scratch_dir};
use crate::support::synapse::{Placement, Start, Synapse, start_pair};

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
            ..Placement::default()
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
