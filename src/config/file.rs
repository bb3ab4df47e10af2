//! The YAML file as written by operators: every key optional here, so that `validate` can report
//! all missing and wrong values at once instead of stopping at the first.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub homeserver: HomeserverSection,
    #[serde(default)]
    pub appservice: AppserviceSection,
    /// More homeservers, each with its own registration (DESIGN §13).
    #[serde(default)]
    pub homeservers: Vec<HomeserversEntry>,
    #[serde(default)]
    pub listen: ListenSection,
    #[serde(default)]
    pub database: DatabaseSection,
    #[serde(default)]
    pub tenants: Vec<TenantSection>,
    pub admin_token: Option<String>,
    pub admin_token_file: Option<PathBuf>,
    #[serde(default)]
    pub logging: LoggingSection,
    #[serde(default)]
    pub jobs: JobsSection,
    #[serde(default)]
    pub retention: RetentionSection,
    /// Role → power level, merged over the defaults.
    pub roles: Option<crate::rooms::RoleLevels>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSection {
    #[serde(default, deserialize_with = "lenient")]
    pub enabled: Option<bool>,
    pub worker_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub max_parallel: Option<usize>,
    #[serde(default, deserialize_with = "lenient")]
    pub per_tenant: Option<usize>,
    #[serde(default, deserialize_with = "lenient")]
    pub max_attempts: Option<i32>,
    #[serde(default, deserialize_with = "lenient")]
    pub lease_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    #[serde(default, deserialize_with = "lenient")]
    pub inbox_days: Option<u32>,
    #[serde(default, deserialize_with = "lenient")]
    pub jobs_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserverSection {
    pub url: Option<String>,
    pub server_name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub timeout_seconds: Option<u64>,
    pub room_version: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub check_interval_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    pub probe_interval_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppserviceSection {
    pub id: Option<String>,
    pub sender_localpart: Option<String>,
    pub bot_prefix: Option<String>,
    pub as_token: Option<String>,
    pub as_token_file: Option<PathBuf>,
    pub hs_token: Option<OneOrMany>,
    pub hs_token_file: Option<PathBuf>,
    pub url: Option<String>,
    /// The token this homeserver's `synapse-http-antispam` module presents (its `authorization`);
    /// absent: the rules callbacks are off for it.
    pub antispam_token: Option<String>,
    pub antispam_token_file: Option<PathBuf>,
}

impl AppserviceSection {
    /// Takes `id`, `sender_localpart` and `bot_prefix` from `top` where this section leaves them out.
    pub fn inherit(&mut self, top: &Self) {
        for (own, top) in [
            (&mut self.id, &top.id),
            (&mut self.sender_localpart, &top.sender_localpart),
            (&mut self.bot_prefix, &top.bot_prefix),
        ] {
            if own.is_none() {
                own.clone_from(top);
            }
        }
    }
}

/// One `homeservers[]` entry: an id, and the same two sections as the top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserversEntry {
    pub id: Option<String>,
    #[serde(default)]
    pub homeserver: HomeserverSection,
    #[serde(default)]
    pub appservice: AppserviceSection,
}

/// `hs_token` may be one token or, during a rotation, a list with the current one first.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(value) => vec![value],
            Self::Many(values) => values,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    pub appservice: Option<String>,
    pub platform: Option<String>,
    pub metrics: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: Option<String>,
    pub url_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient")]
    pub migrate_on_start: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    pub max_connections: Option<u32>,
    #[serde(default, deserialize_with = "lenient")]
    pub acquire_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    pub id: Option<String>,
    pub name: Option<String>,
    pub api_token: Option<String>,
    pub api_token_file: Option<PathBuf>,
    /// The `homeservers[].id` its rooms live on; absent: the top-level homeserver.
    pub homeserver: Option<String>,
    pub webhook: Option<super::webhook::WebhookSection>,
    /// Also list its public rooms in the server-wide directory (default false).
    pub server_directory: Option<bool>,
    /// Rules before send (DESIGN §7.3), applied through the antispam callbacks.
    pub rules: Option<RulesSection>,
}

/// `tenants[].rules` as written (checked in `rules.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    #[serde(default)]
    pub blocked_words: Vec<String>,
    #[serde(default)]
    pub blocked_link_domains: Vec<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub applies_below_level: Option<i64>,
    pub rate_limit: Option<RateLimitSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    #[serde(default, deserialize_with = "lenient")]
    pub messages: Option<u32>,
    #[serde(default, deserialize_with = "lenient")]
    pub per_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSection {
    pub level: Option<String>,
    pub format: Option<String>,
}

/// Accepts a scalar written natively (`true`, `5`) or as a string (`"true"`, `"5"`), because
/// environment overrides always arrive as strings.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + Deserialize<'de>,
    T::Err: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Native(T),
        Text(String),
    }
    match Option::<Either<T>>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Either::Native(value)) => Ok(Some(value)),
        Some(Either::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|error| serde::de::Error::custom(format!("{text:?}: {error}"))),
    }
}
