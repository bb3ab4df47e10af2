//! The daemon under measurement: its database, its config next to one real Synapse, and waiting
//! until it is ready.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support;
use crate::support::daemon::{Daemon, DaemonConfig};
use crate::support::matrix_client::http_client;
use crate::support::synapse::Synapse;

pub const SERVER_NAME: &str = "openmeet.test";

/// The database a daemon runs on.
#[derive(Clone, Copy, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// A fresh database for a daemon: `None` for SQLite (a new file in the daemon's directory), a
    /// new PostgreSQL database named after `prefix` otherwise. Blocks: call it outside the runtime.
    pub fn fresh_database(self, prefix: &str) -> Option<String> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some(support::postgres::fresh_database(prefix)),
        }
    }
}

/// The backends to measure: both, or those `BENCH_BACKENDS` names (`sqlite,postgres`), each once.
pub fn backends() -> Vec<Backend> {
    let chosen = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let mut backends = Vec::new();
    for name in chosen.split(',') {
        let backend = match name.trim() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("BENCH_BACKENDS: {other:?} is not sqlite or postgres"),
        };
        assert!(
            !backends.contains(&backend),
            "BENCH_BACKENDS: {name:?} is named twice"
        );
        backends.push(backend);
    }
    backends
}

/// One Synapse that loads the registration of the returned config, log level info; every daemon
/// measured is a copy of that config ([`fresh_copy`]).
pub fn start_synapse() -> (Synapse, DaemonConfig) {
    let mut base = DaemonConfig::new("bench", None);
    base.server_name = SERVER_NAME.into();
    base.log_level = "info".into();
    let synapse = Synapse::start(SERVER_NAME, &[base.registration()]);
    base.appservice_port_registered = true;
    base.homeserver_url = synapse.url.clone();
    (synapse, base)
}

/// `base` in a fresh directory, on `database_url` (`None`: a fresh SQLite file there).
pub fn fresh_copy(base: &DaemonConfig, database_url: Option<String>) -> DaemonConfig {
    let fresh = DaemonConfig::new("bench", database_url);
    DaemonConfig {
        dir: fresh.dir,
        database_url: fresh.database_url,
        ..base.clone()
    }
}

/// Starts a daemon on `config` and waits until it is ready.
pub async fn start_daemon(config: DaemonConfig) -> Daemon {
    let daemon = Daemon::start(config).await;
    wait_ready(&daemon).await;
    daemon
}

/// Waits until `/health/ready` answers 200 (polled every 50 ms, for at most 60 s).
pub async fn wait_ready(daemon: &Daemon) {
    let url = format!(
        "http://127.0.0.1:{}/health/ready",
        daemon.config.metrics_port
    );
    let client = http_client();
    support::eventually(
        "the daemon to be ready",
        Duration::from_secs(60),
        || async {
            let response = client.get(&url).send().await.ok()?;
            (response.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
}
