//! `database`: where the daemon keeps its state, and how it pools connections.

use std::time::Duration;

use super::database_url::DatabaseUrl;
use super::file::DatabaseSection;

#[derive(Debug, Clone)]
pub struct Database {
    pub url: DatabaseUrl,
    pub migrate_on_start: bool,
    pub max_connections: u32,
    /// How long a request waits for a database connection before it is answered as an outage.
    pub acquire_timeout: Duration,
}

impl Database {
    pub fn validate(section: DatabaseSection, p: &mut Vec<String>) -> Option<Self> {
        let url = match (section.url, section.url_file) {
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
        let max_connections = section.max_connections.unwrap_or(10);
        if max_connections == 0 {
            p.push("database.max_connections must be at least 1.".into());
        }
        Some(Self {
            url: url?,
            migrate_on_start: section.migrate_on_start.unwrap_or(true),
            max_connections,
            acquire_timeout: Duration::from_millis(section.acquire_timeout_ms.unwrap_or(5_000)),
        })
    }
}
