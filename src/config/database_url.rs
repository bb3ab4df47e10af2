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

/// The connection URL handed to libpq: the configured one, plus `gssencmode=disable` unless the
/// URL or the `PGGSSENCMODE` environment variable chooses. libpq's default (`prefer`) loads
/// Kerberos and looks for credentials at every connect: 1 MiB of the daemon's resident memory over
/// TLS, 4 MiB without (22.9 → 22.0 and 19.0 → 14.7 MiB idle), for credentials it never has. A
/// server that demands GSS encryption refuses the connection saying so, and
/// `?gssencmode=prefer` (or `require`) in `database.url` asks for it again.
pub fn for_libpq(url: &str, env_gssencmode: Option<&str>) -> String {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let chosen = query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("gssencmode"));
    if chosen || env_gssencmode.is_some_and(|mode| !mode.is_empty()) {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}gssencmode=disable")
}

#[cfg(test)]
mod tests {
    use super::for_libpq;

    #[test]
    fn gss_encryption_is_off_unless_the_url_or_the_environment_chooses() {
        assert_eq!(
            for_libpq("postgres://u:p@db:5432/openmeet", None),
            "postgres://u:p@db:5432/openmeet?gssencmode=disable"
        );
        assert_eq!(
            for_libpq("postgres://u@db/openmeet?sslmode=require", None),
            "postgres://u@db/openmeet?sslmode=require&gssencmode=disable"
        );
        for chosen in [
            "postgres://u@db/openmeet?gssencmode=prefer",
            "postgres://u@db/openmeet?sslmode=require&gssencmode=require",
        ] {
            assert_eq!(for_libpq(chosen, None), chosen);
        }
        let plain = "postgres://u@db/openmeet";
        assert_eq!(for_libpq(plain, Some("prefer")), plain);
        assert_eq!(
            for_libpq(plain, Some("")),
            format!("{plain}?gssencmode=disable")
        );
    }
}
