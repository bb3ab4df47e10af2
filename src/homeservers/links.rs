//! Each homeserver the daemon serves, as outbound code reaches it (DESIGN §13): a client built
//! for the config in force (its URL, its as_token) and the health its watchdog keeps. A reload
//! rebuilds the clients and keeps each homeserver's health, so a homeserver's verdict survives a
//! SIGHUP and a homeserver added by one starts unknown.
//!
//! Every outbound call acts as one of our users (a tenant bot or a homeserver's sender), and
//! each user lives on exactly one homeserver (server names differ across homeservers, checked
//! at load): [`Links::for_user`] picks the client by the acting user's server name.

use std::sync::Arc;

use ruma::{OwnedServerName, ServerName};

use crate::config::Config;
use crate::matrix;
use crate::observability::health::Health;
use crate::observability::metrics::Metrics;

/// One homeserver: its id, server name, client and health.
pub struct HomeserverLink {
    /// `default` for the top-level homeserver, else its `homeservers[].id`.
    pub id: String,
    pub server_name: OwnedServerName,
    pub client: Arc<matrix::Client>,
    pub health: Arc<Health>,
}

/// Every homeserver of the config in force, in config order (the default one first).
pub struct Links {
    links: Vec<Arc<HomeserverLink>>,
}

impl Links {
    /// Clients for `config`'s homeservers; a homeserver `previous` knew keeps its health.
    pub fn build(
        config: &Config,
        metrics: &Arc<Metrics>,
        previous: Option<&Links>,
    ) -> Result<Self, matrix::Error> {
        let mut links = Vec::new();
        for homeserver in config.homeservers() {
            let client = matrix::Client::new(
                homeserver.id,
                homeserver.homeserver,
                homeserver.appservice.as_token.clone(),
                metrics.clone(),
            )?;
            let health = previous
                .and_then(|previous| previous.get(homeserver.id))
                .map_or_else(Arc::default, |link| link.health.clone());
            links.push(Arc::new(HomeserverLink {
                id: homeserver.id.to_owned(),
                server_name: homeserver.homeserver.server_name.clone(),
                client: Arc::new(client),
                health,
            }));
        }
        Ok(Self { links })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<HomeserverLink>> {
        self.links.iter()
    }

    /// The homeserver with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<HomeserverLink>> {
        self.links.iter().find(|link| link.id == id)
    }

    /// The top-level homeserver (always there: the config requires it).
    pub fn default_link(&self) -> &Arc<HomeserverLink> {
        &self.links[0]
    }

    /// The homeserver whose users carry `server_name`; the default one for a server we do not
    /// serve (a call as such a user is refused there, which says what is wrong).
    pub fn for_server(&self, server_name: &ServerName) -> &Arc<HomeserverLink> {
        self.links
            .iter()
            .find(|link| link.server_name == server_name)
            .unwrap_or_else(|| self.default_link())
    }

    /// The ids of the homeservers that jobs may not call now (token refused, unreachable).
    pub fn paused(&self) -> Vec<&str> {
        self.links
            .iter()
            .filter(|link| !link.health.homeserver_usable())
            .map(|link| link.id.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::sample::{SampleTokens, render};
    use crate::observability::health::TokenState;

    /// The sample config, with a second homeserver `eu` on `eu.example.org` when `second`.
    fn config(second: bool) -> Config {
        let mut yaml = render(Some(&SampleTokens::random()));
        if second {
            yaml.push_str(
                "homeservers:\n  - id: eu\n    homeserver: {url: 'http://127.0.0.1:8448', server_name: eu.example.org}\n    \
                 appservice: {as_token: eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee, hs_token: ffffffffffffffffffffffffffffffff, url: 'http://127.0.0.1:8009'}\n",
            );
        }
        Config::from_yaml(Path::new("test.yaml"), &yaml, Vec::new()).expect("a valid config")
    }

    #[test]
    fn a_user_is_served_by_the_homeserver_of_its_server_name() {
        let links = Links::build(&config(true), &Arc::new(Metrics::new()), None).unwrap();
        let ids: Vec<&str> = links.iter().map(|link| link.id.as_str()).collect();
        assert_eq!(ids, ["default", "eu"]);
        let server = |name: &str| ruma::ServerName::parse(name).unwrap();
        assert_eq!(links.for_server(&server("eu.example.org")).id, "eu");
        assert_eq!(
            links
                .for_server(&server("eu.example.org"))
                .client
                .homeserver_id(),
            "eu"
        );
        assert_eq!(links.for_server(&server("elsewhere.example")).id, "default");
    }

    #[test]
    fn a_rebuild_keeps_each_homeservers_health_and_an_added_one_starts_unknown() {
        let metrics = Arc::new(Metrics::new());
        let before = Links::build(&config(false), &metrics, None).unwrap();
        before.default_link().health.set_token(TokenState::Rejected);
        assert_eq!(before.paused(), ["default"]);
        let after = Links::build(&config(true), &metrics, Some(&before)).unwrap();
        assert!(Arc::ptr_eq(
            &before.default_link().health,
            &after.default_link().health
        ));
        assert_eq!(after.get("eu").unwrap().health.token(), TokenState::Unknown);
        assert_eq!(after.paused(), ["default"]);
    }
}
