//! Before the runs: the member users in Synapse, and the processes a run measures (Synapse's,
//! PostgreSQL's server); plus the one HTTP call helper every client here uses.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::common::daemon::SERVER_NAME;
use crate::support::matrix_client::http_client;
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

/// Registers `count` ordinary users (`bench-member-NNN`, no login) and returns their ids.
pub async fn register_members(hs: &str, count: usize) -> Vec<String> {
    let client = http_client();
    let limit = Arc::new(Semaphore::new(8));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let (client, limit, hs) = (client.clone(), limit.clone(), hs.to_owned());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("the semaphore is open");
            let localpart = format!("bench-member-{i:03}");
            register_member(&client, &hs, &localpart).await;
            (i, format!("@{localpart}:{SERVER_NAME}"))
        });
    }
    let mut users = vec![String::new(); count];
    while let Some(done) = tasks.join_next().await {
        let (i, user) = done.expect("a registration panicked");
        users[i] = user;
    }
    users
}

/// `POST /register` with the dummy stage (Synapse here needs no verification).
async fn register_member(client: &reqwest::Client, hs: &str, localpart: &str) {
    let url = format!("{hs}/_matrix/client/v3/register");
    let mut body = json!({
        "username": localpart,
        "password": format!("{localpart}-bench-password"),
        "inhibit_login": true,
        "auth": {"type": "m.login.dummy"},
    });
    for _ in 0..2 {
        let (status, answer) = send_json(client, Method::POST, &url, None, Some(&body)).await;
        if status.is_success() {
            return;
        }
        // An older flow: first a session, then the dummy stage within it.
        match answer["session"].as_str() {
            Some(session) if status == StatusCode::UNAUTHORIZED => {
                body["auth"]["session"] = json!(session);
            }
            _ => panic!("registering {localpart}: {status} {answer}"),
        }
    }
    panic!("registering {localpart}: the dummy stage did not complete");
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
