//! `migrate-db --from URL --to URL` (DESIGN §14): moves the daemon's own database to another
//! backend — SQLite to PostgreSQL when one machine is outgrown, or back — with every daemon on it
//! stopped. The target must be empty; both must be at this binary's migrations. Every table is
//! copied in one transaction on the target, ids and sequences kept, then counted and checksummed on
//! both sides; the transaction commits only when every table matches. The URLs may carry
//! passwords: they are never printed (a backend, host and database name at most).

use anyhow::{Context, bail};

use crate::config::DatabaseUrl;
use crate::store::{DbConnection, StoreError, migrations, port, presence};

fn parse(flag: &str, url: &str) -> anyhow::Result<DatabaseUrl> {
    DatabaseUrl::parse(url)
        .map_err(|error| anyhow::anyhow!("{flag}: {}", error.replace("database.url", "the URL")))
}

fn connect(flag: &str, url: &DatabaseUrl) -> anyhow::Result<DbConnection> {
    crate::store::connection::connect(url, std::time::Duration::from_secs(10))
        .with_context(|| format!("{flag}: cannot connect to the {}", url.describe()))
}

/// One table's line of the report.
struct Copied {
    table: String,
    rows: u64,
    checksum: String,
}

pub fn run(from: &str, to: &str) -> anyhow::Result<()> {
    let (from, to) = (parse("--from", from)?, parse("--to", to)?);
    if from.describe() == to.describe() {
        bail!(
            "--from and --to name the same database ({}): give the database to copy to",
            from.describe()
        );
    }
    if let DatabaseUrl::Sqlite(path) = &from
        && !path.exists()
    {
        bail!("--from: the SQLite file {} does not exist", path.display());
    }
    for (flag, url) in [("--from", &from), ("--to", &to)] {
        if presence::is_held(url).with_context(|| {
            format!(
                "{flag}: cannot tell whether a daemon uses the {}",
                url.describe()
            )
        })? {
            bail!(
                "a daemon is running on the {} ({flag}): stop every `serve` using it (scale the deployment to 0), then run migrate-db again",
                url.describe()
            );
        }
    }
    let mut source = connect("--from", &from)?;
    let pending = migrations::pending(&mut source)?;
    if !pending.is_empty() {
        bail!(
            "the source ({}) lacks {} migration(s) this binary has ({}): apply them with `openmeet-appservice migrate` on it first, or run the migrate-db of the binary that last served it",
            from.describe(),
            pending.len(),
            pending.join(", ")
        );
    }
    let unknown = migrations::unknown_applied(&mut source)?;
    if !unknown.is_empty() {
        bail!(
            "the source ({}) has migrations this binary does not know ({}): a newer version wrote it; run migrate-db with that version",
            from.describe(),
            unknown.join(", ")
        );
    }
    let mut target = connect("--to", &to)?;
    let unknown = migrations::unknown_applied(&mut target)?;
    if !unknown.is_empty() {
        bail!(
            "the target ({}) has migrations this binary does not know ({}): give an empty database",
            to.describe(),
            unknown.join(", ")
        );
    }
    migrations::run_pending(&mut target)?;
    let tables = port::tables(&mut source)?;
    let target_tables = port::tables(&mut target)?;
    if tables != target_tables {
        bail!(
            "the source's tables ({}) differ from those this binary's migrations make ({}): was the source changed by hand?",
            tables.join(", "),
            target_tables.join(", ")
        );
    }
    for table in &tables {
        let rows = port::count(&mut target, table)?;
        if rows > 0 {
            bail!(
                "the target ({}) is not empty: {table} has {rows} row(s). migrate-db copies into an empty database only; give a new one",
                to.describe()
            );
        }
    }
    eprintln!("copying {} to {} ...", from.describe(), to.describe());
    let started = std::time::Instant::now();
    let copied = target.write(|target| copy(&mut source, target, &tables))?;
    println!(
        "{:<28} {:>10}  checksum (sha-256 sum of rows, equal on both sides)",
        "table", "rows"
    );
    for table in &copied {
        println!("{:<28} {:>10}  {}", table.table, table.rows, table.checksum);
    }
    let rows: u64 = copied.iter().map(|t| t.rows).sum();
    eprintln!(
        "copied {rows} row(s) in {} table(s) in {:.1} s; counts and checksums are equal on both sides. Point database.url at the {} and start the daemon",
        copied.len(),
        started.elapsed().as_secs_f64(),
        to.describe()
    );
    Ok(())
}

/// Copies every table, carries the id sequences on, and compares both sides.
fn copy(
    source: &mut DbConnection,
    target: &mut DbConnection,
    tables: &[String],
) -> Result<Vec<Copied>, StoreError> {
    let mut copied = Vec::new();
    let tables = port::in_key_order(target, tables)?;
    for table in &tables {
        let source_columns = port::columns(source, table)?;
        let target_columns = port::columns(target, table)?;
        let names =
            |columns: &[port::Column]| columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if names(&source_columns) != names(&target_columns) {
            return Err(StoreError::Migration(format!(
                "{table}'s columns differ: the source has {}, the target {}",
                names(&source_columns).join(", "),
                names(&target_columns).join(", ")
            )));
        }
        let columns: Vec<port::Column> = source_columns
            .iter()
            .zip(&target_columns)
            .map(|(s, t)| port::Column {
                name: s.name.clone(),
                kind: s.kind.merged(t.kind),
            })
            .collect();
        port::copy_table(source, target, table, &columns)?;
        let has_id = columns
            .iter()
            .any(|c| c.name == "id" && c.kind == port::Kind::Int);
        if has_id && port::has_sequence(target, table)? {
            let last = port::last_issued(source, table)?.unwrap_or(0);
            port::continue_after(target, table, last)?;
        }
        let (before, after) = (
            port::tally_table(source, table, &columns)?,
            port::tally_table(target, table, &columns)?,
        );
        if before != after {
            return Err(StoreError::Migration(format!(
                "{table} differs after the copy ({} row(s), checksum {} on the source; {} row(s), checksum {} on the target): nothing was committed",
                before.rows, before.checksum, after.rows, after.checksum
            )));
        }
        copied.push(Copied {
            table: table.clone(),
            rows: after.rows,
            checksum: after.checksum,
        });
    }
    Ok(copied)
}
