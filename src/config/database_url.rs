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

/// The connection URL handed to libpq: the configured one, with two defaults of libpq's changed
/// where the URL and libpq's environment variables leave them open (`env` reads one):
///
/// - `gssencmode=disable` unless the URL or `PGGSSENCMODE` chooses. libpq's default (`prefer`)
///   loads Kerberos and looks for credentials at every connect: 1 MiB of the daemon's resident
///   memory over TLS, 4 MiB without (22.9 → 22.0 and 19.0 → 14.7 MiB idle), for credentials it
///   never has. A server that demands GSS encryption refuses the connection saying so, and
///   `?gssencmode=prefer` (or `require`) asks for it again.
/// - `sslmode=disable` when the server is on this host (a loopback address or `localhost`) and
///   neither the URL (no `ssl…` parameter, no `host`/`hostaddr` that could point elsewhere) nor
///   `PGSSLMODE`/`PGHOSTADDR` says otherwise. libpq's default (`prefer`) encrypts without checking
///   the server, which on loopback protects nothing — libpq does not encrypt a Unix socket either
///   — and initialising OpenSSL for it was 3.9 MiB of the daemon's idle memory (22.8 → 18.9 MiB).
///   Anywhere else libpq's default stands; `?sslmode=require` asks for TLS on loopback too.
pub fn for_libpq(url: &str, env: impl Fn(&str) -> Option<String>) -> String {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let keys: Vec<&str> = (query.split('&'))
        .filter_map(|pair| pair.split('=').next())
        .collect();
    let set = |name: &str| env(name).is_some_and(|value| !value.is_empty());
    let mut added = Vec::new();
    if !keys.contains(&"gssencmode") && !set("PGGSSENCMODE") {
        added.push("gssencmode=disable");
    }
    let tls_chosen = keys
        .iter()
        .any(|key| key.starts_with("ssl") || ["requiressl", "host", "hostaddr"].contains(key));
    if !tls_chosen && !set("PGSSLMODE") && !set("PGHOSTADDR") && on_loopback(url) {
        added.push("sslmode=disable");
    }
    if added.is_empty() {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{}", added.join("&"))
}

/// What to add to libpq's `message` when the server refused a connection for want of encryption
/// (its `pg_hba.conf` has only `hostssl` or `hostgssenc` lines for us) and [`for_libpq`] had turned
/// that encryption off, making `used` of the configured `url`: how to ask for it in `database.url`.
pub fn refusal_hint(url: &str, used: &str, message: &str) -> Option<&'static str> {
    if !message.contains("no encryption") {
        return None;
    }
    let turned_off = |parameter: &str| {
        used.contains(&format!("{parameter}=disable")) && !url.contains(&format!("{parameter}="))
    };
    let ssl_off = turned_off("sslmode");
    let gss_off = turned_off("gssencmode");
    match (ssl_off, gss_off) {
        (true, _) => Some(
            "the server wants encrypted connections, and the daemon does not ask for TLS to a \
             server on loopback unless told: add ?sslmode=require (or ?gssencmode=prefer for GSS) \
             to database.url",
        ),
        (false, true) => Some(
            "the server wants encrypted connections: add ?sslmode=require (TLS) or \
             ?gssencmode=prefer (GSS, which the daemon does not ask for unless told) to \
             database.url",
        ),
        (false, false) => None,
    }
}

/// Whether the URL's one host is this machine: `localhost` or a loopback address.
fn on_loopback(url: &str) -> bool {
    let Ok(parsed) = Url::parse(url) else {
        return false; // e.g. several hosts: libpq's own defaults stand
    };
    match parsed.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{for_libpq, refusal_hint};

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn gss_encryption_is_off_unless_the_url_or_the_environment_chooses() {
        assert_eq!(
            for_libpq("postgres://u:p@db:5432/openmeet", no_env),
            "postgres://u:p@db:5432/openmeet?gssencmode=disable"
        );
        assert_eq!(
            for_libpq("postgres://u@db/openmeet?sslmode=require", no_env),
            "postgres://u@db/openmeet?sslmode=require&gssencmode=disable"
        );
        for chosen in [
            "postgres://u@db/openmeet?gssencmode=prefer",
            "postgres://u@db/openmeet?sslmode=require&gssencmode=require",
        ] {
            assert_eq!(for_libpq(chosen, no_env), chosen);
        }
        let plain = "postgres://u@db/openmeet";
        let env = |value: &'static str| {
            move |name: &str| (name == "PGGSSENCMODE").then(|| value.to_owned())
        };
        assert_eq!(for_libpq(plain, env("prefer")), plain);
        assert_eq!(
            for_libpq(plain, env("")),
            format!("{plain}?gssencmode=disable")
        );
    }

    #[test]
    fn tls_is_off_on_loopback_unless_the_url_or_the_environment_chooses() {
        for local in [
            "postgres://u:p@127.0.0.1:5432/openmeet",
            "postgres://u@127.0.0.2/openmeet",
            "postgresql://u@localhost/openmeet",
            "postgres://u@LOCALHOST:5433/openmeet",
            "postgres://u@[::1]:5432/openmeet",
        ] {
            assert_eq!(
                for_libpq(local, no_env),
                format!("{local}?gssencmode=disable&sslmode=disable"),
                "{local}"
            );
        }
        // Another host, or TLS chosen in the URL or the environment: libpq's default stands.
        for kept in [
            "postgres://u@db.internal/openmeet",
            "postgres://u@10.0.0.5/openmeet",
            "postgres://u@localhost.example.org/openmeet",
            "postgres://u@127.0.0.1/openmeet?sslmode=require",
            "postgres://u@127.0.0.1/openmeet?sslrootcert=/ca.pem",
            "postgres://u@127.0.0.1/openmeet?hostaddr=10.0.0.5",
            "postgres://u@localhost/openmeet?host=/run/postgresql",
            "postgres://u@h1,h2/openmeet",
            "postgres:///openmeet",
        ] {
            assert!(
                !for_libpq(kept, no_env).contains("sslmode=disable"),
                "{kept}"
            );
        }
        let local = "postgres://u@127.0.0.1/openmeet";
        for variable in ["PGSSLMODE", "PGHOSTADDR"] {
            let env = |name: &str| (name == variable).then(|| "require".to_owned());
            assert_eq!(
                for_libpq(local, env),
                format!("{local}?gssencmode=disable"),
                "{variable}"
            );
        }
    }

    #[test]
    fn a_refusal_for_want_of_encryption_says_how_to_ask_for_it() {
        let refused = "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  no pg_hba.conf \
                       entry for host \"127.0.0.1\", user \"u\", database \"openmeet\", no encryption";
        let hint = |url: &str, message: &str| refusal_hint(url, &for_libpq(url, no_env), message);
        let local = "postgres://u@127.0.0.1/openmeet";
        assert!(hint(local, refused).is_some_and(|hint| hint.contains("?sslmode=require")));
        let remote = "postgres://u@db/openmeet";
        assert!(hint(remote, refused).is_some_and(|hint| hint.contains("?gssencmode=prefer")));
        // What the URL chose itself is not the daemon's doing.
        for chosen in [
            "postgres://u@db/openmeet?gssencmode=prefer",
            "postgres://u@db/openmeet?gssencmode=disable",
            "postgres://u@127.0.0.1/openmeet?sslmode=disable&gssencmode=disable",
        ] {
            assert_eq!(hint(chosen, refused), None, "{chosen}");
        }
        assert_eq!(hint(local, "password authentication failed"), None);
    }
}
