//! `homeservers`: homeservers besides the top-level one (DESIGN §13), and the resolved view of
//! every homeserver the daemon serves, the top-level one first.

use ruma::{OwnedUserId, ServerName, UserId};

use super::appservice::Appservice;
use super::file::{AppserviceSection, HomeserversEntry};
use super::homeserver::Homeserver;
use super::namespaces::Namespaces;
use super::tenants::Tenant;
use super::{Config, secret::Secret};

/// The id of the top-level `homeserver` + `appservice`; no `homeservers[]` entry may take it.
pub const DEFAULT_ID: &str = "default";

/// One homeserver as the daemon serves it: how to reach it and the registration it loaded.
#[derive(Debug, Clone, Copy)]
pub struct HomeserverConfig<'a> {
    /// [`DEFAULT_ID`] for the top-level one, else its `homeservers[].id`.
    pub id: &'a str,
    pub homeserver: &'a Homeserver,
    pub appservice: &'a Appservice,
    /// The anchored matchers of its registration's namespaces.
    pub namespaces: &'a Namespaces,
}

impl HomeserverConfig<'_> {
    pub fn is_default(&self) -> bool {
        self.id == DEFAULT_ID
    }

    /// The command that prints this homeserver's registration, for messages that say to install
    /// it again.
    pub fn registration_command(&self) -> String {
        if self.is_default() {
            "openmeet-appservice registration -c <config>".into()
        } else {
            format!(
                "openmeet-appservice registration -c <config> --homeserver {}",
                self.id
            )
        }
    }

    /// The load-time self-check of its namespaces: its sender and the bot of every tenant on it
    /// must be ours, a human on its server must not.
    pub fn check_namespaces<'t>(
        &self,
        tenants: impl IntoIterator<Item = &'t Tenant>,
    ) -> Result<(), String> {
        let homeserver = self;
        let namespaces = &self.namespaces;
        let (on, its) = if homeserver.is_default() {
            (String::new(), "")
        } else {
            (format!("on homeserver {:?}, ", homeserver.id), "its ")
        };
        let server = &homeserver.homeserver.server_name;
        let mut ours = vec![homeserver.sender_user_id()];
        ours.extend(
            tenants
                .into_iter()
                .map(|tenant| homeserver.bot_user_id(tenant)),
        );
        if let Some(user) = ours
            .iter()
            .find(|user| !namespaces.is_our_user(user.as_str()))
        {
            return Err(format!(
                "{on}the user namespace does not cover {user}: check {its}appservice.sender_localpart and appservice.bot_prefix."
            ));
        }
        let human = format!("@alice:{server}");
        if namespaces.is_our_user(&human) || namespaces.is_our_alias(&format!("#general:{server}"))
        {
            return Err(format!(
                "{on}the namespaces would cover human users such as {human}: give {its}appservice.bot_prefix a distinctive value such as openmeet-bot-."
            ));
        }
        Ok(())
    }

    /// The appservice's own user there, `@{sender_localpart}:{server_name}`.
    pub fn sender_user_id(&self) -> OwnedUserId {
        user_id(
            &self.appservice.sender_localpart,
            &self.homeserver.server_name,
        )
    }

    /// A tenant's bot there, `@{bot_prefix}{lowercase tenant}:{server_name}`.
    pub fn bot_user_id(&self, tenant: &Tenant) -> OwnedUserId {
        let localpart = format!(
            "{}{}",
            self.appservice.bot_prefix,
            tenant.id.to_ascii_lowercase()
        );
        user_id(&localpart, &self.homeserver.server_name)
    }
}

fn user_id(localpart: &str, server_name: &ServerName) -> OwnedUserId {
    UserId::parse(format!("@{localpart}:{server_name}"))
        .expect("localparts and server names are validated at load")
}

/// A `homeservers[]` entry (the top-level one lives in [`Config::homeserver`] and
/// [`Config::appservice`]).
#[derive(Debug, Clone)]
pub struct AdditionalHomeserver {
    pub id: String,
    pub homeserver: Homeserver,
    pub appservice: Appservice,
    pub namespaces: Namespaces,
}

impl AdditionalHomeserver {
    /// Every entry that validates. `top` is the top-level `appservice` section, whose `id`,
    /// `sender_localpart` and `bot_prefix` an entry inherits when it leaves them out.
    pub fn validate_all(
        entries: Vec<HomeserversEntry>,
        top: &AppserviceSection,
        p: &mut Vec<String>,
    ) -> Vec<Self> {
        let mut valid: Vec<Self> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            let at = format!("homeservers[{index}]");
            let id = super::checks::required(p, &format!("{at}.id"), entry.id).filter(|id| {
                let ok = !id.is_empty()
                    && id.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'));
                if !ok {
                    p.push(format!("{at}.id {id:?} may only hold lowercase letters, digits and -: it names the homeserver in tenants[].homeserver, metrics and the command line."));
                } else if id == DEFAULT_ID {
                    p.push(format!("{at}.id {DEFAULT_ID:?} names the top-level homeserver: give this one another id."));
                } else if ids.contains(id) {
                    p.push(format!("{at}.id {id:?} is listed twice: give each homeserver its own id."));
                } else {
                    return true;
                }
                false
            });
            if let Some(id) = &id {
                ids.push(id.clone());
            }
            let homeserver = Homeserver::validate(entry.homeserver, &format!("{at}.homeserver"), p);
            let mut section = entry.appservice;
            section.inherit(top);
            let appservice = Appservice::validate(section, &format!("{at}.appservice"), p);
            if let (Some(id), Some(homeserver), Some(appservice)) = (id, homeserver, appservice) {
                let namespaces = Namespaces::new(
                    &appservice.sender_localpart,
                    &appservice.bot_prefix,
                    &homeserver.server_name,
                );
                valid.push(Self {
                    id,
                    homeserver,
                    appservice,
                    namespaces,
                });
            }
        }
        valid
    }

    pub fn view(&self) -> HomeserverConfig<'_> {
        HomeserverConfig {
            id: &self.id,
            homeserver: &self.homeserver,
            appservice: &self.appservice,
            namespaces: &self.namespaces,
        }
    }
}

/// Checks across homeservers: each has its own server name, and each homeserver's namespaces
/// cover its sender and its tenants' bots and no human.
pub fn check_all(config: &Config, p: &mut Vec<String>) {
    let all: Vec<_> = config.homeservers().collect();
    for (i, a) in all.iter().enumerate() {
        if let Some(b) = all[i + 1..]
            .iter()
            .find(|b| b.homeserver.server_name == a.homeserver.server_name)
        {
            p.push(format!(
                "homeservers {:?} and {:?} have the same server_name {}: each homeserver is its own Matrix server; list it once.",
                a.id, b.id, a.homeserver.server_name
            ));
        }
        let tenants = config.tenants.iter().filter(|t| t.homeserver == a.id);
        if let Err(problem) = a.check_namespaces(tenants) {
            p.push(problem);
        }
    }
}

impl Config {
    /// Every homeserver the daemon serves, the top-level (default) one first.
    pub fn homeservers(&self) -> impl Iterator<Item = HomeserverConfig<'_>> {
        std::iter::once(self.default_homeserver()).chain(
            self.additional_homeservers
                .iter()
                .map(AdditionalHomeserver::view),
        )
    }

    /// The top-level `homeserver` + `appservice`.
    pub fn default_homeserver(&self) -> HomeserverConfig<'_> {
        HomeserverConfig {
            id: DEFAULT_ID,
            homeserver: &self.homeserver,
            appservice: &self.appservice,
            namespaces: &self.namespaces,
        }
    }

    /// The homeserver with this id ([`DEFAULT_ID`]: the top-level one).
    pub fn homeserver_by_id(&self, id: &str) -> Option<HomeserverConfig<'_>> {
        self.homeservers().find(|homeserver| homeserver.id == id)
    }

    /// The homeserver tenant `tenant_id`'s rooms and bot live on; `None`: no such tenant.
    pub fn homeserver_of(&self, tenant_id: &str) -> Option<HomeserverConfig<'_>> {
        let tenant = self.tenant(tenant_id)?;
        self.homeserver_by_id(&tenant.homeserver)
    }

    /// The homeserver a configured tenant lives on.
    pub fn home_of(&self, tenant: &Tenant) -> HomeserverConfig<'_> {
        self.homeserver_by_id(&tenant.homeserver)
            .unwrap_or_else(|| self.default_homeserver())
    }

    /// The homeserver whose server name `user_id` carries (one of our users lives on exactly
    /// one); the default one for a server the daemon does not serve.
    pub fn homeserver_of_user(&self, user_id: &UserId) -> HomeserverConfig<'_> {
        self.homeservers()
            .find(|homeserver| homeserver.homeserver.server_name == user_id.server_name())
            .unwrap_or_else(|| self.default_homeserver())
    }

    /// The sender of the homeserver `user_id` (a tenant bot) lives on.
    pub fn sender_beside(&self, user_id: &UserId) -> OwnedUserId {
        self.homeserver_of_user(user_id).sender_user_id()
    }

    /// The homeserver that presents `token` as its hs_token (any of its rotation list), compared
    /// in constant time.
    pub fn homeserver_by_hs_token(&self, token: &str) -> Option<HomeserverConfig<'_>> {
        self.homeservers()
            .find(|homeserver| Secret::any_matches(&homeserver.appservice.hs_tokens, token))
    }

    /// The homeserver whose `synapse-http-antispam` module presents `token` (its
    /// `antispam_token`), compared in constant time.
    pub fn homeserver_by_antispam_token(&self, token: &str) -> Option<HomeserverConfig<'_>> {
        self.homeservers().find(|homeserver| {
            Secret::any_matches(homeserver.appservice.antispam_token.as_slice(), token)
        })
    }

    /// The ids of every homeserver, for messages that list them.
    pub fn homeserver_ids(&self) -> Vec<&str> {
        self.homeservers().map(|homeserver| homeserver.id).collect()
    }
}

impl Config {}
