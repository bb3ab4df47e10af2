//! The daemon's configuration: one typed struct per section, loaded from YAML, overridden by
//! `OPENMEET_AS__SECTION__KEY` variables, with secrets inline or in `*_file`s. Each section
//! validates itself into one shared list of problems, so that every problem is reported at once.

mod appservice;
mod checks;
mod database;
pub(crate) mod database_url;
mod env;
mod file;
mod homeserver;
mod homeservers;
mod jobs;
mod listen;
mod logging;
mod namespaces;
mod retention;
mod rules;
pub mod sample;
pub(crate) mod secret;
mod tenants;
mod tokens;
pub(crate) mod webhook;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ruma::{OwnedUserId, UserId};

pub use self::appservice::Appservice;
pub use self::database::Database;
pub use self::database_url::{DatabaseUrl, for_libpq};
use self::file::FileConfig;
pub use self::homeserver::Homeserver;
pub use self::homeservers::{AdditionalHomeserver, DEFAULT_ID, HomeserverConfig};
pub use self::jobs::Jobs;
pub use self::listen::Listen;
pub use self::logging::{LogFormat, Logging};
pub use self::namespaces::Namespaces;
pub use self::retention::Retention;
pub use self::rules::{RateLimit, Rules};
pub use self::secret::Secret;
pub use self::tenants::Tenant;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("the config file {path} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The default homeserver (DESIGN §13: the one tenants live on unless they name another).
    pub homeserver: Homeserver,
    /// The default homeserver's registration.
    pub appservice: Appservice,
    /// The `homeservers[]` entries; [`Config::homeservers`] lists them after the default.
    pub additional_homeservers: Vec<AdditionalHomeserver>,
    pub listen: Listen,
    pub database: Database,
    pub tenants: Vec<Tenant>,
    /// Guards `GET /v1/status` on the platform listener; without it that route is off.
    pub admin_token: Option<Secret>,
    pub logging: Logging,
    pub jobs: Jobs,
    /// How long delivered events and finished jobs are kept.
    pub retention: Retention,
    /// The power level each declared role gets, per room kind.
    pub roles: crate::rooms::RoleLevels,
    /// The anchored matchers of the default homeserver's registration's namespaces.
    pub namespaces: Namespaces,
    /// Every homeserver's sender and every tenant's bot, for [`Config::is_own_user`], which the
    /// inbox processor asks of every event.
    own_users: HashSet<OwnedUserId>,
}

impl Config {
    /// Reads, overrides from the process environment, and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(path, &text, std::env::vars())
    }

    /// Parses `text` as the config at `path`, applying the `OPENMEET_AS__` variables of `vars`.
    pub fn from_yaml(
        path: &Path,
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        let mut root: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|error| parse_error(error.to_string()))?;
        let mut problems = Vec::new();
        env::apply_overrides(&mut root, vars, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            });
        }
        let file: FileConfig = serde_yaml::from_value(root).map_err(|error| {
            parse_error(format!(
                "{error} (check the key's spelling against config.sample.yaml)"
            ))
        })?;
        Self::validate(file).map_err(|problems| ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// Turns the file's optional values into a complete config, or lists everything wrong:
    /// each section checks itself, then the checks that span sections.
    fn validate(file: FileConfig) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let homeserver = Homeserver::validate(file.homeserver, "homeserver", p);
        let additional_homeservers =
            AdditionalHomeserver::validate_all(file.homeservers, &file.appservice, p);
        let appservice = Appservice::validate(file.appservice, "appservice", p);
        let listen = Listen::validate(file.listen, p);
        let database = Database::validate(file.database, p);
        let jobs = Jobs::validate(
            file.jobs,
            listen.as_ref().map_or(0, |listen| listen.appservice.port()),
            p,
        );
        let retention = Retention::validate(file.retention, p);
        let roles = file.roles.unwrap_or_default();
        p.extend(
            roles
                .validate()
                .into_iter()
                .map(|problem| format!("roles.{problem}")),
        );
        let homeserver_ids: Vec<&str> = std::iter::once(DEFAULT_ID)
            .chain(additional_homeservers.iter().map(|h| h.id.as_str()))
            .collect();
        let tenants = Tenant::validate_all(file.tenants, &homeserver_ids, p);
        let admin_token = match (&file.admin_token, &file.admin_token_file) {
            (None, None) => None,
            (inline, path) => secret::resolve("admin_token", inline.as_deref(), path.as_deref(), p),
        };
        let logging = Logging::validate(file.logging, p);
        let appservices: Vec<(String, &Appservice)> = appservice
            .iter()
            .map(|appservice| ("appservice".to_owned(), appservice))
            .chain(
                additional_homeservers
                    .iter()
                    .map(|h| (format!("homeserver {:?}'s appservice", h.id), &h.appservice)),
            )
            .collect();
        tokens::check_distinct(&appservices, &tenants, admin_token.as_ref(), p);

        let (Some(homeserver), Some(appservice), Some(listen), Some(database)) =
            (homeserver, appservice, listen, database)
        else {
            return Err(problems);
        };
        let namespaces = Namespaces::new(
            &appservice.sender_localpart,
            &appservice.bot_prefix,
            &homeserver.server_name,
        );
        let mut config = Self {
            homeserver,
            appservice,
            additional_homeservers,
            listen,
            database,
            tenants,
            admin_token,
            logging,
            jobs,
            retention,
            roles,
            namespaces,
            own_users: HashSet::new(),
        };
        config.own_users = config
            .homeservers()
            .map(|homeserver| homeserver.sender_user_id())
            .chain(
                config
                    .tenants
                    .iter()
                    .map(|tenant| config.bot_user_id(tenant)),
            )
            .collect();
        homeservers::check_all(&config, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// The default homeserver's own user, `@{sender_localpart}:{server_name}`.
    pub fn sender_user_id(&self) -> OwnedUserId {
        self.default_homeserver().sender_user_id()
    }

    /// The tenant's bot on its own homeserver, `@{bot_prefix}{lowercase tenant}:{server_name}`.
    pub fn bot_user_id(&self, tenant: &Tenant) -> OwnedUserId {
        self.home_of(tenant).bot_user_id(tenant)
    }

    /// The configured tenant with this id (case as configured).
    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|tenant| tenant.id == id)
    }

    /// The tenant whose bot `user_id` is, if it is one of ours.
    pub fn tenant_of_bot(&self, user_id: &UserId) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|tenant| self.bot_user_id(tenant) == user_id)
    }

    /// Whether `user_id` is a homeserver's sender or the bot of a configured tenant.
    pub fn is_own_user(&self, user_id: &UserId) -> bool {
        self.own_users.contains(user_id)
    }

    /// Whether `user_id` is one of ours on homeserver `homeserver` (its sender, or the bot of a
    /// tenant it hosts): server names differ across homeservers (checked at load), and each of our
    /// users carries its homeserver's.
    pub fn is_own_user_on(&self, homeserver: &str, user_id: &UserId) -> bool {
        self.homeserver_by_id(homeserver).is_some_and(|calling| {
            user_id.server_name() == calling.homeserver.server_name && self.is_own_user(user_id)
        })
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_homeservers;

#[cfg(test)]
mod tests_rules;
