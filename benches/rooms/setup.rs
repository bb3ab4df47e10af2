//! Before the runs: the member users in Synapse, and the processes a run measures (Synapse's,
//! PostgreSQL's server); plus the one HTTP call helper every client here uses.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::daemon::SERVER_NAME;
use crate::support::synapse::Synapse;

/// The server's version, and whether a connection to `url` made as the daemon makes it
/// (`config::for_libpq`: no TLS on loopback unless the URL asks) uses TLS.
pub fn postgres_server(url: &str) -> (String, bool) {
    use diesel::sql_types::{Bool, Text};
    use diesel::{Connection, PgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        version: String,
        #[diesel(sql_type = Bool)]
        tls: bool,
    }
    let url = openmeet_appservice::config::for_libpq(url, |name| std::env::var(name).ok());
    let mut conn = PgConnection::establish(&url).expect("connect to the benchmark's database");
    let row: Row = diesel::sql_query(
        "SELECT current_setting('server_version') AS version, \
         coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS tls",
    )
    .get_result(&mut conn)
    .expect("read the server's version and TLS state");
    (row.version, row.tls)
}

/// Registers `count` ordinary users (`bench-member-NNNN`, no login) and returns their ids.
pub async fn register_members(hs: &str, count: usize) -> Vec<String> {
    crate::support::matrix_client::register_many(hs, SERVER_NAME, "bench-member", count).await
}

/// One HTTP call with a JSON body and answer (`Value::Null` when the answer is not JSON).
pub async fn send_json(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method.clone(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("a JSON body"));
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .unwrap_or_else(|error| panic!("{method} {url}: reading the answer: {error}"));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Synapse's own process (synapse.py's child): the one whose command line names its config.
pub fn synapse_pid(synapse: &Synapse) -> u32 {
    let config = synapse
        .workdir
        .join("homeserver.yaml")
        .display()
        .to_string();
    crate::common::pids()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.contains(&b"synapse.app.homeserver".as_slice())
                    && args.contains(&config.as_bytes())
            })
        })
        .unwrap_or_else(|| panic!("no Synapse process runs with {config}"))
}
