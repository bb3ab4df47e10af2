//! `homeservers[]` entries of a test config (DESIGN §13): more homeservers, each with its own
//! tokens and tenants, rendered into the daemon's config by `DaemonConfig::yaml`.

use super::daemon::{DaemonConfig, Tokens};

#[derive(Clone, Debug)]
pub struct ExtraHomeserver {
    pub id: String,
    pub url: String,
    pub server_name: String,
    pub tokens: Tokens,
    /// The ids of the config's tenants that live on it (`tenants[].homeserver`).
    pub tenants: Vec<String>,
}

impl ExtraHomeserver {
    /// `id` at `url` for `server_name`, with fresh tokens and no tenants yet.
    pub fn new(id: &str, url: &str, server_name: &str) -> Self {
        Self {
            id: id.into(),
            url: url.into(),
            server_name: server_name.into(),
            tokens: Tokens::fresh(),
            tenants: Vec::new(),
        }
    }

    /// `, homeserver: ID` for a tenant entry, when one of `homeservers` holds the tenant.
    pub fn of_tenant(homeservers: &[Self], tenant: &str) -> String {
        homeservers
            .iter()
            .find(|homeserver| homeserver.tenants.iter().any(|t| t == tenant))
            .map(|homeserver| format!(", homeserver: {}", homeserver.id))
            .unwrap_or_default()
    }

    /// The `homeservers:` section ("" for none), with `config`'s intervals and appservice port.
    pub fn section(homeservers: &[Self], config: &DaemonConfig) -> String {
        if homeservers.is_empty() {
            return String::new();
        }
        let entries: String = homeservers
            .iter()
            .map(|homeserver| {
                format!(
                    "  - id: {}\n    homeserver: {{url: {:?}, server_name: {}, timeout_seconds: {}, check_interval_seconds: {}, probe_interval_seconds: {}}}\n    \
                     appservice: {{as_token: {}, hs_token: {}, url: 'http://127.0.0.1:{}'}}\n",
                    homeserver.id,
                    homeserver.url,
                    homeserver.server_name,
                    config.homeserver_timeout_seconds,
                    config.check_interval_seconds,
                    config.probe_interval_seconds,
                    homeserver.tokens.as_token,
                    homeserver.tokens.hs_token,
                    config.appservice_port
                )
            })
            .collect();
        format!("homeservers:\n{entries}")
    }
}
