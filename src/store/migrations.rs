//! The embedded migrations of both backends (see `migrations/README.md`).

use diesel::RunQueryDsl;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{DbConnection, StoreError};

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Key of the PostgreSQL advisory lock that lets one replica migrate while the others wait.
const MIGRATION_LOCK: i64 = 0x006f_6d61_736d_6967; // "omasmig"

/// Applies pending migrations and returns the names of those applied.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    change(conn, Change::ApplyPending)
}

/// Reverts the `count` most recently applied migrations, newest first (to roll the binary back
/// past a release whose schema the older one cannot use); returns their names.
pub fn revert_last(conn: &mut DbConnection, count: usize) -> Result<Vec<String>, StoreError> {
    change(conn, Change::RevertLast(count))
}

#[derive(Clone, Copy)]
enum Change {
    ApplyPending,
    RevertLast(usize),
}

/// Makes `change` with the backend's migrations; on PostgreSQL under the advisory lock, so one
/// replica migrates while the others wait.
fn change(conn: &mut DbConnection, change: Change) -> Result<Vec<String>, StoreError> {
    let changed = match conn {
        DbConnection::Postgres(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(c)?;
            let result = make(c, || POSTGRES, change);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(c)?;
            result
        }
        DbConnection::Sqlite(c) => make(c, || SQLITE, change),
    };
    changed.map_err(|error| StoreError::Migration(error.to_string()))
}

fn make<DB: diesel::backend::Backend>(
    harness: &mut impl MigrationHarness<DB>,
    // Each harness call takes the source by value; the embedded sets are constants.
    source: fn() -> EmbeddedMigrations,
    change: Change,
) -> diesel::migration::Result<Vec<String>> {
    match change {
        Change::ApplyPending => harness
            .run_pending_migrations(source())
            .map(|v| v.iter().map(ToString::to_string).collect()),
        Change::RevertLast(count) => (0..count)
            .map(|_| {
                harness
                    .revert_last_migration(source())
                    .map(|v| v.to_string())
            })
            .collect(),
    }
}

/// Names of the migrations not yet applied.
pub fn pending(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let pending = match conn {
        DbConnection::Postgres(c) => c
            .pending_migrations(POSTGRES)
            .map(|list| list.iter().map(|m| m.name().to_string()).collect()),
        DbConnection::Sqlite(c) => c
            .pending_migrations(SQLITE)
            .map(|list| list.iter().map(|m| m.name().to_string()).collect()),
    };
    pending.map_err(|error| StoreError::Migration(error.to_string()))
}

/// Versions of the migrations applied to the database that this binary does not have: a newer
/// binary wrote it.
pub fn unknown_applied(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    fn unknown<DB: diesel::backend::Backend>(
        harness: &mut impl MigrationHarness<DB>,
        source: EmbeddedMigrations,
    ) -> diesel::migration::Result<Vec<String>>
    where
        EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
    {
        let known: Vec<String> = diesel::migration::MigrationSource::<DB>::migrations(&source)?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
        Ok(harness
            .applied_migrations()?
            .iter()
            .map(ToString::to_string)
            .filter(|version| !known.contains(version))
            .collect())
    }
    let found = match conn {
        DbConnection::Postgres(c) => unknown(c, POSTGRES),
        DbConnection::Sqlite(c) => unknown(c, SQLITE),
    };
    found.map_err(|error| StoreError::Migration(error.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn names(backend: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn migrations_of_both_backends_stay_in_step() {
        let (postgres, sqlite) = (names("postgres"), names("sqlite"));
        assert!(!postgres.is_empty());
        assert_eq!(
            postgres, sqlite,
            "migrations/postgres and migrations/sqlite must hold the same names"
        );
    }

    #[test]
    fn every_postgres_table_and_column_is_commented() {
        for name in names("postgres") {
            let sql = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations/postgres")
                    .join(&name)
                    .join("up.sql"),
            )
            .unwrap();
            for table in sql.split("CREATE TABLE ").skip(1) {
                let table_name = table.split_whitespace().next().unwrap();
                assert!(
                    sql.contains(&format!("COMMENT ON TABLE {table_name} ")),
                    "{name}: {table_name} has no comment"
                );
                let body = &table[..table.find(");").unwrap()];
                for line in body.lines().skip(1) {
                    let column = line.split_whitespace().next().unwrap_or("");
                    if column.is_empty()
                        || ["CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "id"].contains(&column)
                    {
                        continue;
                    }
                    assert!(
                        sql.contains(&format!("COMMENT ON COLUMN {table_name}.{column} ")),
                        "{name}: {table_name}.{column} has no comment"
                    );
                }
            }
        }
    }
}
