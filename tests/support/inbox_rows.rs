//! What the daemon's database holds, read directly (not through the daemon), for tests that count
//! every stored row: events by event id and transactions by txnId.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How often each event id is stored in `inbox_events`.
pub fn events_by_id(database_url: &str) -> BTreeMap<String, i64> {
    grouped(
        database_url,
        "SELECT event_id AS key, COUNT(*) AS n FROM inbox_events GROUP BY event_id",
    )
}

/// How often each txnId is stored in `as_transactions`.
pub fn transactions_by_id(database_url: &str) -> BTreeMap<String, i64> {
    grouped(
        database_url,
        "SELECT txn_id AS key, COUNT(*) AS n FROM as_transactions GROUP BY txn_id",
    )
}

/// Stored events not yet processed.
pub fn pending(database_url: &str) -> i64 {
    grouped(
        database_url,
        "SELECT 'pending' AS key, COUNT(*) AS n FROM inbox_events WHERE processed_at IS NULL",
    )
    .into_values()
    .sum()
}

fn grouped(database_url: &str, sql: &str) -> BTreeMap<String, i64> {
    let rows: Vec<Counted> = if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut conn = super::sqlite_beside(path);
        diesel::sql_query(sql)
            .load(&mut conn)
            .unwrap_or_else(|e| panic!("`{sql}`: {e}"))
    } else {
        let mut conn =
            PgConnection::establish(database_url).expect("connect to the test's PostgreSQL");
        diesel::sql_query(sql)
            .load(&mut conn)
            .unwrap_or_else(|e| panic!("`{sql}`: {e}"))
    };
    rows.into_iter().map(|row| (row.key, row.n)).collect()
}
