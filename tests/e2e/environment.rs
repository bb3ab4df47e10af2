//! The one Synapse of this test process, loaded with the registration our own `registration`
//! command printed, and the daemons that take turns on the registered appservice port.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use crate::support::daemon::{Daemon, DaemonConfig};
use crate::support::synapse::Synapse;

pub const SERVER_NAME: &str = "openmeet.test";

pub struct Environment {
    pub synapse: Synapse,
    /// The config whose registration Synapse loaded; every test daemon starts from a copy.
    pub config: DaemonConfig,
}

pub fn environment() -> &'static Environment {
    static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut config = DaemonConfig::new("e2e", None);
        config.server_name = SERVER_NAME.into();
        config.tenants = vec![
            ("tenantA".into(), "Tenant A".into()),
            ("ciTenantB".into(), "CI Tenant B".into()),
        ];
        let registration = config.registration();
        config.appservice_port_registered = true;
        let synapse = Synapse::start(SERVER_NAME, &[registration]);
        config.homeserver_url = synapse.url.clone();
        Environment { synapse, config }
    })
}

/// Only one daemon at a time can own the registered appservice port. (tokio's mutex works across
/// the tests' separate runtimes, and a failed test releases it without poisoning.)
pub async fn port_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::const_new(());
    TURN.lock().await
}

/// A copy of the registered config on a fresh SQLite database in a fresh directory.
pub fn fresh_config() -> DaemonConfig {
    let env = environment();
    let fresh = DaemonConfig::new("e2e", None);
    DaemonConfig {
        dir: fresh.dir,
        database_url: fresh.database_url,
        ..env.config.clone()
    }
}

/// Starts a daemon and waits until it is ready: its preflight, ping included, passed.
pub async fn ready_daemon() -> Daemon {
    ready_daemon_with(fresh_config()).await
}

/// Like [`ready_daemon`], with a changed copy of the registered config.
pub async fn ready_daemon_with(config: DaemonConfig) -> Daemon {
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    daemon
}

/// Members still in (joined or invited), per Synapse's own database.
pub fn still_in(room_id: &str) -> Vec<String> {
    environment()
        .synapse
        .current_memberships(room_id)
        .into_iter()
        .filter(|(_, membership)| membership == "join" || membership == "invite")
        .map(|(user, _)| user)
        .collect()
}

pub fn bot_id(tenant: &str) -> String {
    format!("@openmeet-bot-{}:{SERVER_NAME}", tenant.to_lowercase())
}

pub fn assert_no_token(text: &str, config: &DaemonConfig) {
    for token in [
        &config.tokens.as_token,
        &config.tokens.hs_token,
        &config.tenant_token("tenantA"),
    ] {
        assert!(
            !text.contains(token.as_str()),
            "a token appears in the output"
        );
    }
}
