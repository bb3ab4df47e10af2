#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Inbound with several homeservers (DESIGN §13, issue 13 part 3), on SQLite and PostgreSQL: the
//! hs_token says which homeserver is calling; its transactions are deduplicated and its txnId
//! resets detected on their own; user and alias queries answer for its users and its tenants'
//! aliases only. No Synapse is needed: nothing here calls a homeserver except a query for one of
//! the second homeserver's own users, which finds it unreachable.

mod support;

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Backend;
use support::daemon::{Daemon, DaemonConfig, ExtraHomeserver};
use support::events;
use support::inbox_rows;

on_both_backends!(
    each_homeserver_has_its_own_transactions_and_resets,
    queries_answer_for_the_calling_homeservers_users_and_aliases_only,
    each_homeserver_is_offered_the_directories_of_its_own_tenants,
);

const SECOND: &str = "second";
const SECOND_SERVER: &str = "second.openmeet.invalid";

/// A daemon serving the default homeserver (tenant `tenantA`) and [`SECOND`] (tenant `tenantB`).
async fn daemon(name: &str, backend: Backend) -> Daemon {
    let mut config = DaemonConfig::new(name, backend.database_url(name));
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    let unreachable = format!("http://127.0.0.1:{}", support::python::free_port());
    let mut second = ExtraHomeserver::new(SECOND, &unreachable, SECOND_SERVER);
    second.tenants.push("tenantB".into());
    config.homeservers.push(second);
    Daemon::start(config).await
}

/// Pushes a transaction as homeserver `hs_token` would.
async fn push(daemon: &Daemon, hs_token: &str, txn_id: &str, event_ids: &[&str]) -> StatusCode {
    let events: Vec<Value> = event_ids
        .iter()
        .map(|id| {
            events::message(
                id,
                "!room:test.openmeet.invalid",
                "@alice:test.openmeet.invalid",
                "hi",
            )
        })
        .collect();
    let (status, answer) = daemon
        .appservice(
            Method::PUT,
            &format!("/_matrix/app/v1/transactions/{txn_id}"),
            Some(hs_token),
            Some(events::transaction(&events)),
        )
        .await;
    assert_eq!(answer, json!({}), "txn {txn_id}");
    status
}

/// (event id, the homeserver that delivered it) of every stored event, oldest first.
fn stored(daemon: &Daemon) -> Vec<(String, String)> {
    let mut events: Vec<_> = daemon
        .inbox_events()
        .into_iter()
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap().to_owned();
            (field("event_id"), field("homeserver"))
        })
        .collect();
    events.reverse();
    events
}

async fn each_homeserver_has_its_own_transactions_and_resets(backend: Backend) {
    let daemon = daemon("inbound_txns", backend).await;
    let default = daemon.config.tokens.hs_token.clone();
    let second = daemon.config.homeservers[0].tokens.hs_token.clone();

    // txnId 1 from each homeserver: two transactions, both stored.
    assert_eq!(push(&daemon, &default, "1", &["$a"]).await, StatusCode::OK);
    assert_eq!(push(&daemon, &second, "1", &["$b"]).await, StatusCode::OK);
    // Each one's retry is a duplicate for its own homeserver only.
    assert_eq!(push(&daemon, &default, "1", &["$a"]).await, StatusCode::OK);
    assert_eq!(push(&daemon, &second, "1", &["$b"]).await, StatusCode::OK);
    for homeserver in ["default", SECOND] {
        let labels = format!("homeserver=\"{homeserver}\"");
        let duplicates = daemon
            .metric("openmeet_as_transactions_duplicate_total", &labels)
            .await;
        assert_eq!(duplicates, 1.0, "{homeserver}");
    }
    // The same body under the same txnId from the other homeserver is that homeserver's own
    // transaction (stored), though its event, already delivered, is not stored again.
    assert_eq!(push(&daemon, &second, "2", &["$a"]).await, StatusCode::OK);
    assert_eq!(push(&daemon, &default, "2", &["$a"]).await, StatusCode::OK);
    assert_eq!(
        daemon
            .metric("openmeet_as_transactions_duplicate_total", "")
            .await,
        2.0
    );
    let url = &daemon.config.database_url;
    let transactions = inbox_rows::transactions_by_id(url);
    assert_eq!(transactions.get("1"), Some(&2), "{transactions:?}");
    assert_eq!(transactions.get("2"), Some(&2), "{transactions:?}");
    assert_eq!(
        stored(&daemon),
        [
            ("$a".to_owned(), "default".to_owned()),
            ("$b".to_owned(), SECOND.to_owned())
        ]
    );

    // A reset is told per homeserver: the default one is far ahead, the second one is not reset
    // by counting on from where it is.
    for txn in 100..=110 {
        push(&daemon, &default, &txn.to_string(), &[&format!("$d{txn}")]).await;
    }
    push(&daemon, &second, "3", &["$s3"]).await;
    assert_eq!(
        daemon
            .metric("openmeet_as_transaction_id_resets_total", "")
            .await,
        0.0,
        "txnId 3 from the second homeserver follows its own 2"
    );
    push(&daemon, &default, "3", &["$d3"]).await;
    assert_eq!(
        daemon
            .metric(
                "openmeet_as_transaction_id_resets_total",
                "homeserver=\"default\""
            )
            .await,
        1.0,
        "txnId 3 from the default homeserver after 110 is its reset"
    );
}

/// `GET /_matrix/app/v1/{what}/{id}` as the homeserver whose hs_token is `token`: the status.
async fn query(daemon: &Daemon, token: &str, what: &str, id: &str) -> StatusCode {
    let path = format!("/_matrix/app/v1/{what}/{}", urlencode(id));
    daemon
        .appservice(Method::GET, &path, Some(token), None)
        .await
        .0
}

/// How many `kind` queries (`user` or `alias`) ended with `outcome`.
async fn outcomes(daemon: &Daemon, kind: &str, outcome: &str) -> f64 {
    let metric = format!("openmeet_as_{kind}_queries_total");
    daemon
        .metric(&metric, &format!("outcome=\"{outcome}\""))
        .await
}

async fn queries_answer_for_the_calling_homeservers_users_and_aliases_only(backend: Backend) {
    let daemon = daemon("inbound_queries", backend).await;
    let default = daemon.config.tokens.hs_token.clone();
    let second = daemon.config.homeservers[0].tokens.hs_token.clone();
    let bot_b = format!("@openmeet-bot-tenantb:{SECOND_SERVER}");
    let sender_a = "@openmeet-bot:test.openmeet.invalid";

    // The default homeserver asking for the second one's bot, and the second for the default
    // one's sender: not theirs.
    let not_found = StatusCode::NOT_FOUND;
    assert_eq!(query(&daemon, &default, "users", &bot_b).await, not_found);
    assert_eq!(query(&daemon, &second, "users", sender_a).await, not_found);
    assert_eq!(outcomes(&daemon, "user", "not_ours").await, 2.0);
    // The second homeserver asking for its own bot: ours, so the daemon tries to register it
    // there (that homeserver is not running, so it fails and says so).
    assert_eq!(query(&daemon, &second, "users", &bot_b).await, not_found);
    assert_eq!(outcomes(&daemon, "user", "not_ours").await, 2.0);
    assert_eq!(outcomes(&daemon, "user", "failed").await, 1.0);

    // Tenant B's alias on the second server, asked by the default homeserver: not its namespace.
    let alias_b = format!("#event-x-tenantB:{SECOND_SERVER}");
    assert_eq!(query(&daemon, &default, "rooms", &alias_b).await, not_found);
    assert_eq!(outcomes(&daemon, "alias", "not_ours").await, 1.0);
    // Tenant A's alias written with the second server's name, asked by the second homeserver:
    // tenant A does not live there.
    let alias_a_on_b = format!("#event-x-tenantA:{SECOND_SERVER}");
    assert_eq!(
        query(&daemon, &second, "rooms", &alias_a_on_b).await,
        not_found
    );
    assert_eq!(outcomes(&daemon, "alias", "unknown_tenant").await, 1.0);
    // Tenant B's alias asked by its own homeserver: looked up (no room is declared).
    assert_eq!(query(&daemon, &second, "rooms", &alias_b).await, not_found);
    assert_eq!(outcomes(&daemon, "alias", "undeclared").await, 1.0);
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// DESIGN §7.5: the `openmeet` protocol has one instance (a room directory) per tenant of the
/// homeserver that asks; another protocol is unknown.
async fn each_homeserver_is_offered_the_directories_of_its_own_tenants(backend: Backend) {
    let daemon = daemon("inbound_protocol", backend).await;
    let default = daemon.config.tokens.hs_token.clone();
    let second = daemon.config.homeservers[0].tokens.hs_token.clone();
    let path = "/_matrix/app/v1/thirdparty/protocol/openmeet";
    for (token, tenant, name) in [
        (&default, "tenantA", "Tenant A"),
        (&second, "tenantB", "Tenant B"),
    ] {
        let (status, answer) = daemon
            .appservice(Method::GET, path, Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer,
            json!({
                "user_fields": [], "location_fields": [], "icon": "", "field_types": {},
                "instances": [{"desc": name, "fields": {}, "network_id": tenant}],
            })
        );
    }
    let (status, answer) = daemon
        .appservice(
            Method::GET,
            "/_matrix/app/v1/thirdparty/protocol/irc",
            Some(&default),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["errcode"], "M_NOT_FOUND");
}
