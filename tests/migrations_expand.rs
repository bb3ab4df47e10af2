#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Expand, then contract (migrations/README.md, DESIGN §15): while a new release rolls out, the
//! previous one runs beside it on the migrated database, so a migration may only add. Each migration
//! is applied in turn to a fresh database of each backend, and everything the schema offered
//! before it — every table's columns, and every unique key (an `ON CONFLICT` target) — must still be
//! there after it, unless its `up.sql` is a marked contract step (a line starting `-- contract:`
//! saying why the previous release no longer reads what it removes). A table rebuilt under its own
//! name (SQLite's way to change a constraint) passes when it keeps every column and key.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::sql_types::{Integer, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};

/// What the schema offers a reader: `table.column`, and `unique table(columns)`.
type Shape = BTreeSet<String>;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Pair {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Unique {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    is_unique: i32,
}

fn sqlite_shape(conn: &mut SqliteConnection) -> Shape {
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .unwrap();
    let mut shape = Shape::new();
    for table in tables.iter().map(|t| &t.name) {
        let columns: Vec<Name> =
            diesel::sql_query(format!("SELECT name FROM pragma_table_info('{table}')"))
                .load(conn)
                .unwrap();
        shape.extend(columns.iter().map(|c| format!("{table}.{}", c.name)));
        let indexes: Vec<Unique> = diesel::sql_query(format!(
            "SELECT name, \"unique\" AS is_unique FROM pragma_index_list('{table}')"
        ))
        .load(conn)
        .unwrap();
        for index in indexes.iter().filter(|i| i.is_unique == 1) {
            let columns: Vec<Name> = diesel::sql_query(format!(
                "SELECT name FROM pragma_index_info('{}') ORDER BY seqno",
                index.name
            ))
            .load(conn)
            .unwrap();
            let columns: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            shape.insert(format!("unique {table}({})", columns.join(", ")));
        }
    }
    shape
}

fn postgres_shape(conn: &mut PgConnection) -> Shape {
    let columns: Vec<Pair> = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS name \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .unwrap();
    let mut shape: Shape = columns
        .iter()
        .map(|c| format!("{}.{}", c.table_name, c.name))
        .collect();
    let keys: Vec<Pair> = diesel::sql_query(
        "SELECT t.relname::text AS table_name, \
                string_agg(a.attname::text, ', ' ORDER BY array_position(i.indkey, a.attnum)) AS name \
         FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema() \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(i.indkey) \
         WHERE i.indisunique AND i.indpred IS NULL GROUP BY t.relname, i.indexrelid",
    )
    .load(conn)
    .unwrap();
    shape.extend(
        keys.iter()
            .map(|k| format!("unique {}({})", k.table_name, k.name)),
    );
    shape
}

/// Applies the migrations under `dir` one by one; returns, for each that took away part of the
/// shape without being a marked contract step, its name and what it took.
fn removals<C, DB>(
    conn: &mut C,
    dir: &Path,
    shape: impl Fn(&mut C) -> Shape,
) -> Vec<(String, Vec<String>)>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    FileBasedMigrations: MigrationSource<DB>,
{
    let source = FileBasedMigrations::from_path(dir).unwrap();
    let mut names: Vec<String> = MigrationSource::<DB>::migrations(&source)
        .unwrap()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    names.sort();
    let mut found = Vec::new();
    for name in names {
        let before = shape(conn);
        conn.run_next_migration(FileBasedMigrations::from_path(dir).unwrap())
            .unwrap();
        let after = shape(conn);
        let removed: Vec<String> = before.difference(&after).cloned().collect();
        let up = std::fs::read_to_string(dir.join(&name).join("up.sql")).unwrap_or_default();
        let contract = up
            .lines()
            .any(|line| line.trim_start().starts_with("-- contract:"));
        if !removed.is_empty() && !contract {
            found.push((name, removed));
        }
    }
    found
}

fn migrations(backend: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend)
}

#[test]
fn every_sqlite_migration_only_adds_unless_marked_a_contract_step() {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    let removed = removals(&mut conn, &migrations("sqlite"), sqlite_shape);
    assert!(
        removed.is_empty(),
        "these migrations take away what the previous release reads: {removed:?}; keep it until the \
         release after (expand, then contract), or mark the up.sql with a `-- contract:` line saying why \
         the previous release no longer reads it"
    );
}

#[test]
fn every_postgres_migration_only_adds_unless_marked_a_contract_step() {
    let url = support::postgres::fresh_database("expand");
    let mut conn = PgConnection::establish(&url).unwrap();
    let removed = removals(&mut conn, &migrations("postgres"), postgres_shape);
    drop(conn);
    support::postgres::drop_database(&url);
    assert!(
        removed.is_empty(),
        "these migrations take away what the previous release reads: {removed:?}; keep it until the \
         release after (expand, then contract), or mark the up.sql with a `-- contract:` line saying why \
         the previous release no longer reads it"
    );
}

/// A migration set written here: a table, then one that renames a column, one that rebuilds the
/// table keeping its columns (allowed), and one that drops a column as a marked contract step.
#[test]
fn a_rename_is_caught_a_rebuild_that_keeps_everything_passes_and_a_marked_contract_passes() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, up: &str| {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("up.sql"), up).unwrap();
        std::fs::write(folder.join("down.sql"), "SELECT 1;").unwrap();
    };
    write(
        "2026-01-01-000001_make",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL UNIQUE, b TEXT);",
    );
    write(
        "2026-01-01-000002_rebuild",
        "CREATE TABLE t_new (id INTEGER PRIMARY KEY, a TEXT NOT NULL UNIQUE, b TEXT, c TEXT);\n\
         INSERT INTO t_new (id, a, b) SELECT id, a, b FROM t;\nDROP TABLE t;\nALTER TABLE t_new RENAME TO t;",
    );
    write(
        "2026-01-01-000003_rename",
        "ALTER TABLE t RENAME COLUMN b TO bee;",
    );
    write(
        "2026-01-01-000004_contract",
        "-- contract: nothing reads c since the release before this one\nALTER TABLE t DROP COLUMN c;",
    );
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    conn.batch_execute("SELECT 1").unwrap();
    let removed = removals(&mut conn, dir.path(), sqlite_shape);
    assert_eq!(
        removed,
        [(
            "2026-01-01-000003_rename".to_owned(),
            vec!["t.b".to_owned()]
        )]
    );
}
