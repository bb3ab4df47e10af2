//! The daemon's configuration: one typed struct per section, loaded from YAML, overridden by
//! `OPENMEET_AS__SECTION__KEY` variables, with secrets inline or in `*_file`s, and validated as a
//! whole so that every problem is reported at once.

mod checks;
mod database_url;
mod env;
mod file;
mod retention;
pub mod sample;
pub mod secret;
pub mod webhook;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use ruma::{OwnedServerName, OwnedUserId, ServerName, UserId};

use self::checks::{default_worker_id, http_url, listen_address, localpart_ok, required};
pub use self::database_url::DatabaseUrl;
use self::file::FileConfig;
pub use self::retention::Retention;
pub use self::secret::Secret;
use crate::registration::Namespaces;

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
    pub homeserver: Homeserver,
    pub appservice: Appservice,
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
    /// The anchored matchers of our registration's namespaces, derived from the values above.
    pub namespaces: Namespaces,
}

#[derive(Debug, Clone)]
pub struct Homeserver {
    /// Base of the client-server API the daemon calls.
    pub url: Url,
    /// The part after `:` in user ids and aliases.
    pub server_name: OwnedServerName,
    /// Upper bound for one call to the homeserver.
    pub timeout: Duration,
    /// The room version new rooms get; `None`: the homeserver's default.
    pub room_version: Option<String>,
    /// How often the as_token and the appservice ping are checked while all is well, and at most
    /// how often while the token is refused (one homeserver call per interval then).
    pub check_interval: Duration,
    /// How often the sender posts a loop-back probe marker; `None`: no probe.
    pub probe_interval: Option<Duration>,
}

/// The job workers of this process.
#[derive(Debug, Clone)]
pub struct Jobs {
    /// Whether this process runs jobs; `false`: it serves the APIs and queues jobs that another
    /// replica runs.
    pub enabled: bool,
    /// Names this process's leases; stable across restarts so that a restarted process reclaims
    /// its own jobs at once. Default: `{hostname}:{appservice port}`.
    pub worker_id: String,
    /// Jobs this process runs at once.
    pub max_parallel: usize,
    /// Jobs one tenant may run at once in this process, so one tenant cannot starve the others.
    pub per_tenant: usize,
    /// Attempts before a job that keeps failing transiently is `dead`.
    pub max_attempts: i32,
    /// How long a claim holds without renewal; a crashed worker's jobs are taken again after it.
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct Appservice {
    pub id: String,
    pub sender_localpart: String,
    pub bot_prefix: String,
    pub as_token: Secret,
    /// Every token Synapse may present; the first is the one `registration` prints.
    pub hs_tokens: Vec<Secret>,
    /// Where Synapse reaches us; goes into the registration.
    pub url: Url,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub appservice: SocketAddr,
    pub platform: SocketAddr,
    pub metrics: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub url: DatabaseUrl,
    pub migrate_on_start: bool,
    pub max_connections: u32,
    /// How long a request waits for a database connection before it is answered as an outage.
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    /// The platform's tenant id, case kept (it appears in aliases as given).
    pub id: String,
    pub name: String,
    pub api_token: Secret,
    /// Where the tenant's events are POSTed, signed (DESIGN §7.4); `None`: no webhook.
    pub webhook: Option<webhook::Webhook>,
}

#[derive(Debug, Clone)]
pub struct Logging {
    /// A tracing filter such as `info` or `openmeet_appservice=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
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

    /// Turns the file's optional values into a complete config, or lists everything wrong.
    fn validate(file: FileConfig) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let p = &mut problems;

        let homeserver_url = required(p, "homeserver.url", file.homeserver.url)
            .and_then(|url| http_url(p, "homeserver.url", &url));
        let server_name = required(p, "homeserver.server_name", file.homeserver.server_name)
            .and_then(|name| match ServerName::parse(&name) {
                Ok(name) => Some(name),
                Err(error) => {
                    p.push(format!("homeserver.server_name {name:?} is not a Matrix server name ({error}): use the part after ':' in your user ids, e.g. matrix.example.org."));
                    None
                }
            });
        let timeout = Duration::from_secs(file.homeserver.timeout_seconds.unwrap_or(30));
        let room_version = file.homeserver.room_version.filter(|version| {
            let ok = !version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
            if !ok {
                p.push(format!("homeserver.room_version {version:?} is not a room version: use e.g. \"10\", \"11\" or \"12\", or leave it out for the homeserver's default."));
            }
            ok
        });
        let check_interval = match file.homeserver.check_interval_seconds.unwrap_or(120) {
            0 => {
                p.push("homeserver.check_interval_seconds is 0: give the seconds between token and ping checks (default 120).".into());
                Duration::from_secs(120)
            }
            seconds => Duration::from_secs(seconds),
        };
        let probe_interval = match file.homeserver.probe_interval_seconds.unwrap_or(60) {
            0 => None,
            seconds => Some(Duration::from_secs(seconds)),
        };
        let jobs_section = file.jobs;
        let retention = Retention::validate(file.retention, p);
        let roles = file.roles.unwrap_or_default();
        for problem in roles.validate() {
            p.push(format!("roles.{problem}"));
        }
        let max_parallel = jobs_section.max_parallel.unwrap_or(16);
        let per_tenant = jobs_section.per_tenant.unwrap_or(4);
        let max_attempts = jobs_section.max_attempts.unwrap_or(10);
        let lease_seconds = jobs_section.lease_seconds.unwrap_or(60);
        if max_parallel == 0 || per_tenant == 0 || max_attempts < 1 {
            p.push(
                "jobs.max_parallel, jobs.per_tenant and jobs.max_attempts must be at least 1."
                    .into(),
            );
        }
        if !(5..=60).contains(&lease_seconds) {
            p.push("jobs.lease_seconds must be between 5 and 60: a lapsed lease hands a crashed worker's jobs to another.".into());
        }

        let section = file.appservice;
        let id = required(p, "appservice.id", section.id).filter(|id| {
            let ok = id.chars().all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c));
            if !ok {
                p.push(format!("appservice.id {id:?} may only hold letters, digits and . _ ~ -: it is part of a URL path."));
            }
            ok
        });
        let sender_localpart = required(p, "appservice.sender_localpart", section.sender_localpart)
            .filter(|localpart| localpart_ok(p, "appservice.sender_localpart", localpart));
        let bot_prefix = required(p, "appservice.bot_prefix", section.bot_prefix)
            .filter(|prefix| localpart_ok(p, "appservice.bot_prefix", prefix));
        let as_token = secret::resolve(
            "appservice.as_token",
            section.as_token.as_deref(),
            section.as_token_file.as_deref(),
            p,
        );
        let hs_tokens = secret::resolve_lines(
            "appservice.hs_token",
            section.hs_token.map(file::OneOrMany::into_vec),
            section.hs_token_file.as_deref(),
            p,
        );
        let appservice_url = required(p, "appservice.url", section.url)
            .and_then(|url| http_url(p, "appservice.url", &url));

        let listen_appservice = listen_address(p, "listen.appservice", file.listen.appservice);
        let listen_platform = listen_address(p, "listen.platform", file.listen.platform);
        let listen_metrics = listen_address(p, "listen.metrics", file.listen.metrics);
        if let (Some(a), Some(b), Some(c)) = (listen_appservice, listen_platform, listen_metrics)
            && (a == b || b == c || a == c)
        {
            p.push("listen.appservice, listen.platform and listen.metrics must be three different addresses: each listener serves a different audience.".into());
        }

        let database_url = match (file.database.url, file.database.url_file) {
            (Some(_), Some(_)) => {
                p.push("database.url and database.url_file are both set: keep only one of them.".into());
                None
            }
            (None, None) => Some("sqlite://./data/openmeet-appservice.db".to_owned()),
            (Some(url), None) => Some(url),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => Some(text.trim().to_owned()),
                Err(error) => {
                    p.push(format!("database.url_file {} cannot be read ({error}): check the path and its permissions.", path.display()));
                    None
                }
            },
        }
        .and_then(|url| DatabaseUrl::parse(&url).map_err(|problem| p.push(problem)).ok());
        let max_connections = file.database.max_connections.unwrap_or(10);
        if max_connections == 0 {
            p.push("database.max_connections must be at least 1.".into());
        }

        let mut tenants = Vec::new();
        for (index, tenant) in file.tenants.into_iter().enumerate() {
            let at = format!("tenants[{index}]");
            let tenant_id = required(p, &format!("{at}.id"), tenant.id).filter(|id| {
                let ok = id.chars().all(|c| c.is_ascii_alphanumeric() || "._=".contains(c));
                if !ok {
                    p.push(format!("{at}.id {id:?} may only hold letters, digits and . _ =: it is the last '-' segment of room aliases and part of the bot's user id."));
                }
                ok
            });
            let name = required(p, &format!("{at}.name"), tenant.name);
            let api_token = secret::resolve(
                &format!("{at}.api_token"),
                tenant.api_token.as_deref(),
                tenant.api_token_file.as_deref(),
                p,
            );
            let webhook = webhook::validate(&format!("{at}.webhook"), tenant.webhook, p);
            if let (Some(id), Some(name), Some(api_token)) = (tenant_id, name, api_token) {
                if tenants
                    .iter()
                    .any(|t: &Tenant| t.id.eq_ignore_ascii_case(&id))
                {
                    p.push(format!("{at}.id {id:?} is listed twice (ids differing only in case share one bot user): remove one."));
                }
                tenants.push(Tenant {
                    id,
                    name,
                    api_token,
                    webhook,
                });
            }
        }

        let admin_token = match (&file.admin_token, &file.admin_token_file) {
            (None, None) => None,
            _ => secret::resolve(
                "admin_token",
                file.admin_token.as_deref(),
                file.admin_token_file.as_deref(),
                p,
            ),
        };

        let level = file.logging.level.unwrap_or_else(|| "info".to_owned());
        if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
            p.push(format!("logging.level {level:?} is not a tracing filter: use e.g. info, debug or openmeet_appservice=debug,info."));
        }
        let format = match file.logging.format.as_deref() {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => {
                p.push(format!(
                    "logging.format {other:?} is unknown: use human or json."
                ));
                LogFormat::Human
            }
        };

        // Every token must be distinct: a shared token would let one party act as another.
        let mut tokens: Vec<(&str, &Secret)> = Vec::new();
        if let Some(token) = &as_token {
            tokens.push(("appservice.as_token", token));
        }
        for token in hs_tokens.iter().flatten() {
            tokens.push(("appservice.hs_token", token));
        }
        for tenant in &tenants {
            tokens.push(("a tenant's api_token", &tenant.api_token));
        }
        if let Some(token) = &admin_token {
            tokens.push(("admin_token", token));
        }
        for (i, (first, a)) in tokens.iter().enumerate() {
            if let Some((second, _)) = tokens[i + 1..].iter().find(|(_, b)| a == b) {
                p.push(format!(
                    "{first} and {second} hold the same token: give each its own random token."
                ));
            }
        }

        let (
            Some(url),
            Some(server_name),
            Some(id),
            Some(sender_localpart),
            Some(bot_prefix),
            Some(as_token),
            Some(hs_tokens),
            Some(appservice_url),
            Some(appservice),
            Some(platform),
            Some(metrics),
            Some(database_url),
        ) = (
            homeserver_url,
            server_name,
            id,
            sender_localpart,
            bot_prefix,
            as_token,
            hs_tokens,
            appservice_url,
            listen_appservice,
            listen_platform,
            listen_metrics,
            database_url,
        )
        else {
            return Err(problems);
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let namespaces = Namespaces::new(&sender_localpart, &bot_prefix, &server_name);
        let config = Self {
            homeserver: Homeserver {
                url,
                server_name,
                timeout,
                room_version,
                check_interval,
                probe_interval,
            },
            appservice: Appservice {
                id,
                sender_localpart,
                bot_prefix,
                as_token,
                hs_tokens,
                url: appservice_url,
            },
            listen: Listen {
                appservice,
                platform,
                metrics,
            },
            database: Database {
                url: database_url,
                migrate_on_start: file.database.migrate_on_start.unwrap_or(true),
                max_connections,
                acquire_timeout: Duration::from_millis(
                    file.database.acquire_timeout_ms.unwrap_or(5_000),
                ),
            },
            tenants,
            admin_token,
            logging: Logging { level, format },
            jobs: Jobs {
                enabled: jobs_section.enabled.unwrap_or(true),
                worker_id: jobs_section
                    .worker_id
                    .unwrap_or_else(|| default_worker_id(appservice.port())),
                max_parallel,
                per_tenant,
                max_attempts,
                lease: Duration::from_secs(lease_seconds),
            },
            retention,
            roles,
            namespaces,
        };
        config
            .namespaces
            .check(&config)
            .map_err(|problem| vec![problem])?;
        Ok(config)
    }

    /// The appservice's own user, `@{sender_localpart}:{server_name}`.
    pub fn sender_user_id(&self) -> OwnedUserId {
        user_id(
            &self.appservice.sender_localpart,
            &self.homeserver.server_name,
        )
    }

    /// The tenant's bot, `@{bot_prefix}{lowercase tenant}:{server_name}`.
    pub fn bot_user_id(&self, tenant: &Tenant) -> OwnedUserId {
        let localpart = format!(
            "{}{}",
            self.appservice.bot_prefix,
            tenant.id.to_ascii_lowercase()
        );
        user_id(&localpart, &self.homeserver.server_name)
    }

    /// The tenant whose bot `user_id` is, if it is one of ours.
    pub fn tenant_of_bot(&self, user_id: &UserId) -> Option<&Tenant> {
        self.tenants
            .iter()
            .find(|tenant| self.bot_user_id(tenant) == user_id)
    }

    /// Whether `user_id` is the sender or the bot of a configured tenant.
    pub fn is_own_user(&self, user_id: &UserId) -> bool {
        user_id == self.sender_user_id() || self.tenant_of_bot(user_id).is_some()
    }
}

fn user_id(localpart: &str, server_name: &ServerName) -> OwnedUserId {
    UserId::parse(format!("@{localpart}:{server_name}"))
        .expect("localparts and server names are validated at load")
}

#[cfg(test)]
mod tests;
