//! Copying the daemon's database to another backend (`migrate-db`, DESIGN §14): every table, its
//! rows as they are (ids kept), and the id sequences carried past the last id ever issued — so the
//! events feed continues, a transaction Synapse retries is still a duplicate, and due jobs still
//! fire. Then each table is read back from both sides, counted and checksummed.
//!
//! Tables and columns are read from the databases themselves, so a table added by a later
//! migration is copied without a change here. A value travels as text with its column's kind
//! (integer, boolean, JSON, text), which both backends read back the same way.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{DbConnection, StoreError};

mod sequences;
pub use sequences::{continue_after, has_sequence, last_issued};

/// How a column's values are compared and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Bool,
    Json,
    Text,
}

impl Kind {
    fn of_postgres(data_type: &str) -> Self {
        match data_type {
            "bigint" | "integer" | "smallint" => Self::Int,
            "boolean" => Self::Bool,
            "json" | "jsonb" => Self::Json,
            _ => Self::Text,
        }
    }

    fn of_sqlite(declared: &str) -> Self {
        let declared = declared.to_ascii_uppercase();
        if declared.contains("INT") {
            Self::Int
        } else if declared.contains("BOOL") {
            Self::Bool
        } else if declared.contains("JSON") {
            Self::Json
        } else {
            Self::Text
        }
    }

    /// The kind both sides agree on: SQLite keeps JSON and booleans in text and integer columns.
    pub fn merged(self, other: Self) -> Self {
        match (self, other) {
            (Self::Json, _) | (_, Self::Json) => Self::Json,
            (Self::Bool, _) | (_, Self::Bool) => Self::Bool,
            (Self::Int, _) | (_, Self::Int) => Self::Int,
            _ => Self::Text,
        }
    }

    fn postgres_type(self) -> &'static str {
        match self {
            Self::Int => "bigint",
            Self::Bool => "boolean",
            Self::Json => "json",
            Self::Text => "text",
        }
    }
}

/// A table's column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// One table as both sides hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub rows: u64,
    /// Independent of row order (the backends sort text differently): the sum of each row's
    /// SHA-256, as hex.
    pub checksum: String,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    #[diesel(column_name = type_)]
    declared: String,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    row: String,
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = Nullable<BigInt>)]
    n: Option<i64>,
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The daemon's tables (not the migrations' bookkeeping), by name.
pub fn tables(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let names: Vec<Name> = match conn {
        DbConnection::Postgres(c) => diesel::sql_query(
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> '__diesel_schema_migrations' ORDER BY table_name",
        )
        .load(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' ORDER BY name",
        )
        .load(c)?,
    };
    Ok(names.into_iter().map(|n| n.name).collect())
}

/// The tables ordered so that every table comes after the tables its foreign keys point to: rows
/// are copied in that order (PostgreSQL checks a foreign key at each insert).
pub fn in_key_order(conn: &mut DbConnection, tables: &[String]) -> Result<Vec<String>, StoreError> {
    let mut references = BTreeMap::new();
    for table in tables {
        let names: Vec<Name> = match conn {
            DbConnection::Postgres(c) => diesel::sql_query(
                "SELECT DISTINCT ccu.table_name::text AS name \
                 FROM information_schema.table_constraints tc \
                 JOIN information_schema.constraint_column_usage ccu \
                   ON tc.constraint_name = ccu.constraint_name AND tc.table_schema = ccu.table_schema \
                 WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema() \
                   AND tc.table_name = $1",
            )
            .bind::<Text, _>(table)
            .load(c)?,
            DbConnection::Sqlite(c) => diesel::sql_query(format!(
                "SELECT DISTINCT \"table\" AS name FROM pragma_foreign_key_list('{}')",
                table.replace('\'', "''")
            ))
            .load(c)?,
        };
        let names: Vec<String> = names
            .into_iter()
            .map(|n| n.name)
            .filter(|n| n != table)
            .collect();
        references.insert(table.clone(), names);
    }
    let mut ordered: Vec<String> = Vec::new();
    while ordered.len() < tables.len() {
        let ready: Vec<String> = tables
            .iter()
            .filter(|t| !ordered.contains(t))
            .filter(|t| {
                references[*t]
                    .iter()
                    .all(|r| ordered.contains(r) || !tables.contains(r))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(StoreError::Migration(
                "the tables' foreign keys point at each other in a circle: they cannot be copied in order".into(),
            ));
        }
        ordered.extend(ready);
    }
    Ok(ordered)
}

/// The table's columns with their kinds, by name.
pub fn columns(conn: &mut DbConnection, table: &str) -> Result<Vec<Column>, StoreError> {
    let mut columns: Vec<Column> = match conn {
        DbConnection::Postgres(c) => diesel::sql_query(
            "SELECT column_name::text AS name, data_type::text AS data_type \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind::<Text, _>(table)
        .load::<PgColumn>(c)?
        .into_iter()
        .map(|c| Column { kind: Kind::of_postgres(&c.data_type), name: c.name })
        .collect(),
        DbConnection::Sqlite(c) => diesel::sql_query(format!(
            "SELECT name, type AS type_ FROM pragma_table_info('{}')",
            table.replace('\'', "''")
        ))
        .load::<SqliteColumn>(c)?
        .into_iter()
        .map(|c| Column { kind: Kind::of_sqlite(&c.declared), name: c.name })
        .collect(),
    };
    columns.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(columns)
}

/// Rows in the table.
pub fn count(conn: &mut DbConnection, table: &str) -> Result<u64, StoreError> {
    let sql = format!("SELECT COUNT(*) AS n FROM {}", quoted(table));
    let n: Number = crate::on_backend!(conn, c => diesel::sql_query(&sql).get_result(c))?;
    Ok(n.n.unwrap_or(0).max(0) as u64)
}

/// Every row of the table as column → value, values in their JSON form.
fn rows(
    conn: &mut DbConnection,
    table: &str,
    columns: &[Column],
) -> Result<Vec<BTreeMap<String, Value>>, StoreError> {
    let rows: Vec<Row> = match conn {
        DbConnection::Postgres(c) => diesel::sql_query(format!(
            "SELECT row_to_json(t)::text AS row FROM {} t",
            quoted(table)
        ))
        .load(c)?,
        DbConnection::Sqlite(c) => {
            let pairs: Vec<String> = columns
                .iter()
                .map(|column| {
                    format!(
                        "'{}', {}",
                        column.name.replace('\'', "''"),
                        quoted(&column.name)
                    )
                })
                .collect();
            diesel::sql_query(format!(
                "SELECT json_object({}) AS row FROM {}",
                pairs.join(", "),
                quoted(table)
            ))
            .load(c)?
        }
    };
    rows.into_iter()
        .map(|row| {
            serde_json::from_str(&row.row).map_err(|error| {
                StoreError::Migration(format!("a row of {table} does not read as JSON: {error}"))
            })
        })
        .collect()
}

/// A value in the one form both backends compare and write: `None` for NULL.
fn cell(kind: Kind, value: &Value) -> Option<String> {
    match (kind, value) {
        (_, Value::Null) => None,
        (Kind::Bool, Value::Bool(b)) => Some(if *b { "1" } else { "0" }.to_owned()),
        (Kind::Bool, Value::Number(n)) => {
            Some(if n.as_i64() == Some(0) { "0" } else { "1" }.to_owned())
        }
        // JSON kept as text (SQLite) or as JSON (PostgreSQL): compared and written re-serialized.
        (Kind::Json, Value::String(text)) => Some(match serde_json::from_str::<Value>(text) {
            Ok(parsed) => parsed.to_string(),
            Err(_) => text.clone(),
        }),
        (Kind::Json, other) => Some(other.to_string()),
        (_, Value::String(text)) => Some(text.clone()),
        (_, other) => Some(other.to_string()),
    }
}

/// The table's rows as cells in `columns`' order.
fn cells(
    conn: &mut DbConnection,
    table: &str,
    columns: &[Column],
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    Ok(rows(conn, table, columns)?
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|column| cell(column.kind, row.get(&column.name).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect())
}

fn tally(rows: &[Vec<Option<String>>]) -> Tally {
    let mut sum = [0u8; 32];
    for row in rows {
        let digest = Sha256::digest(serde_json::to_vec(row).unwrap_or_default());
        // Sum as a 256-bit little-endian number, wrapping.
        let mut carry = 0u16;
        for (total, byte) in sum.iter_mut().zip(digest.iter()) {
            let added = u16::from(*total) + u16::from(*byte) + carry;
            *total = (added & 0xff) as u8;
            carry = added >> 8;
        }
    }
    Tally {
        rows: rows.len() as u64,
        checksum: sum.iter().rev().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Counts and checksums `table` with `columns` (the kinds both sides agree on).
pub fn tally_table(
    conn: &mut DbConnection,
    table: &str,
    columns: &[Column],
) -> Result<Tally, StoreError> {
    Ok(tally(&cells(conn, table, columns)?))
}

/// Rows per `INSERT`: within both backends' limits on bound parameters.
fn batch(columns: usize) -> usize {
    (30_000 / columns.max(1)).clamp(1, 500)
}

/// Copies `table`'s rows from `from` to `to` (in the caller's transaction on `to`).
pub fn copy_table(
    from: &mut DbConnection,
    to: &mut DbConnection,
    table: &str,
    columns: &[Column],
) -> Result<u64, StoreError> {
    let rows = cells(from, table, columns)?;
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    for chunk in rows.chunks(batch(columns.len())) {
        let mut values = Vec::with_capacity(chunk.len());
        let mut n = 0;
        for _ in chunk {
            let row: Vec<String> = columns
                .iter()
                .map(|column| {
                    n += 1;
                    match to {
                        DbConnection::Postgres(_) => {
                            format!("${n}::{}", column.kind.postgres_type())
                        }
                        DbConnection::Sqlite(_) => "?".to_owned(),
                    }
                })
                .collect();
            values.push(format!("({})", row.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            quoted(table),
            names.join(", "),
            values.join(", ")
        );
        crate::on_backend!(to, c => {
            let mut query = diesel::sql_query(&sql).into_boxed();
            for value in chunk.iter().flatten() {
                query = query.bind::<Nullable<Text>, _>(value.clone());
            }
            query.execute(c)
        })?;
    }
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checksum_ignores_row_order_and_sees_any_change() {
        let a = vec![Some("1".to_owned()), None];
        let b = vec![Some("2".to_owned()), Some("x".to_owned())];
        assert_eq!(
            tally(&[a.clone(), b.clone()]),
            tally(&[b.clone(), a.clone()])
        );
        let changed = vec![Some("2".to_owned()), Some("y".to_owned())];
        assert_ne!(
            tally(&[a.clone(), b]).checksum,
            tally(&[a.clone(), changed]).checksum
        );
        let null_or_empty = vec![Some("1".to_owned()), Some(String::new())];
        assert_ne!(tally(&[a]).checksum, tally(&[null_or_empty]).checksum);
    }

    #[test]
    fn values_read_the_same_from_either_backend() {
        assert_eq!(
            cell(Kind::Bool, &Value::Bool(true)),
            cell(Kind::Bool, &serde_json::json!(1))
        );
        assert_eq!(
            cell(Kind::Json, &serde_json::json!("{\"b\": 1,  \"a\": [true]}")),
            cell(Kind::Json, &serde_json::json!({"a": [true], "b": 1}))
        );
        assert_eq!(
            cell(Kind::Int, &serde_json::json!(9_007_199_254_740_993_i64)),
            Some("9007199254740993".into())
        );
        assert_eq!(cell(Kind::Text, &Value::Null), None);
    }
}
