//! The id sequences of a port: the last id a table's sequence issued on the source, and the
//! target's sequence carried past it, so ids are never issued twice (the events feed continues
//! after its last id even when the newest rows were pruned).

use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{QueryableByName, RunQueryDsl};

use super::{Name, Number, quoted};
use crate::store::{DbConnection, StoreError};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    n: i32,
}

/// The last id the `id` sequence of a table with an integer `id` issued, when it has one: PostgreSQL's serial sequence, or
/// SQLite's `sqlite_sequence` of an `AUTOINCREMENT` table. Pruned rows do not lower it.
pub fn last_issued(conn: &mut DbConnection, table: &str) -> Result<Option<i64>, StoreError> {
    match conn {
        DbConnection::Postgres(c) => {
            let sequence: Vec<Name> = diesel::sql_query(
                "SELECT pg_get_serial_sequence($1, 'id') AS name WHERE pg_get_serial_sequence($1, 'id') IS NOT NULL",
            )
            .bind::<Text, _>(quoted(table))
            .load(c)?;
            let Some(sequence) = sequence.into_iter().next() else {
                return Ok(None);
            };
            let n: Number = diesel::sql_query(format!(
                "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS n FROM {}",
                sequence.name
            ))
            .get_result(c)?;
            Ok(n.n)
        }
        DbConnection::Sqlite(c) => {
            let has: Count = diesel::sql_query(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
            )
            .get_result(c)?;
            if has.n == 0 {
                return Ok(None);
            }
            let n: Vec<Number> =
                diesel::sql_query("SELECT seq AS n FROM sqlite_sequence WHERE name = ?")
                    .bind::<Text, _>(table)
                    .load(c)?;
            Ok(n.into_iter().next().and_then(|n| n.n))
        }
    }
}

/// Whether the integer `id` of the table (which must have one) is issued by a sequence here.
pub fn has_sequence(conn: &mut DbConnection, table: &str) -> Result<bool, StoreError> {
    match conn {
        DbConnection::Postgres(c) => {
            let found: Vec<Name> = diesel::sql_query(
                "SELECT pg_get_serial_sequence($1, 'id') AS name WHERE pg_get_serial_sequence($1, 'id') IS NOT NULL",
            )
            .bind::<Text, _>(quoted(table))
            .load(c)?;
            Ok(!found.is_empty())
        }
        DbConnection::Sqlite(c) => {
            let found: Count = diesel::sql_query(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ? AND sql LIKE '%AUTOINCREMENT%'",
            )
            .bind::<Text, _>(table)
            .get_result(c)?;
            Ok(found.n > 0)
        }
    }
}

/// Makes the table's `id` sequence issue ids after `last` (and after every id it holds).
pub fn continue_after(conn: &mut DbConnection, table: &str, last: i64) -> Result<(), StoreError> {
    let max: Number = crate::on_backend!(conn, c => diesel::sql_query(format!(
        "SELECT MAX(id) AS n FROM {}", quoted(table)
    ))
    .get_result(c))?;
    let last = last.max(max.n.unwrap_or(0));
    match conn {
        DbConnection::Postgres(c) => {
            if last >= 1 {
                diesel::sql_query("SELECT setval(pg_get_serial_sequence($1, 'id'), $2, true)")
                    .bind::<Text, _>(quoted(table))
                    .bind::<BigInt, _>(last)
                    .execute(c)?;
            }
        }
        DbConnection::Sqlite(c) => {
            let updated =
                diesel::sql_query("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?")
                    .bind::<BigInt, _>(last)
                    .bind::<Text, _>(table)
                    .execute(c)?;
            if updated == 0 && last >= 1 {
                diesel::sql_query("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)")
                    .bind::<Text, _>(table)
                    .bind::<BigInt, _>(last)
                    .execute(c)?;
            }
        }
    }
    Ok(())
}
