//! `database.url`: the backend is named by the scheme; a PostgreSQL URL may carry a password.

use std::path::PathBuf;

use reqwest::Url;

use super::Secret;

/// Which backend the URL's scheme names; a PostgreSQL URL may carry a password, so it is a secret.
#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(Secret),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("database.url sqlite:// needs a file path, e.g. sqlite://./data/openmeet-appservice.db.".into());
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(Secret::new(url)))
        } else {
            Err("database.url must start with sqlite:// (one machine) or postgres:// (production, several replicas).".into())
        }
    }

    /// A description safe for logs: the backend and, for PostgreSQL, host and database only.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite file {}", path.display()),
            Self::Postgres(url) => match Url::parse(url.expose()) {
                Ok(parsed) => format!(
                    "postgres at {}{}",
                    parsed.host_str().unwrap_or("localhost"),
                    parsed.path()
                ),
                Err(_) => "postgres".to_owned(),
            },
        }
    }
}
