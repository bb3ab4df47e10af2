//! The retention pruner: at start and then every [`INTERVAL`], deletes what `retention` no longer
//! keeps (see `store/retention.rs`), table by table in batches of [`BATCH`] rows. Each batch is its
//! own background write — on SQLite acknowledgements take the writer first — and the pruner yields
//! between batches and stops between them on shutdown. With several replicas one prunes: the
//! holder of the `pruner` role (`leadership`), which stops between batches when it loses it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::leadership;
use crate::store::retention::{self, BATCH, Table};
use crate::store::{StoreError, unix_ms};

/// How often the pruner runs: retention is counted in days, so hourly is close enough.
pub const INTERVAL: Duration = Duration::from_secs(3_600);

/// Prunes now and every [`INTERVAL`] until `shutdown` turns true, while this replica holds the
/// `pruner` role (waiting until it does).
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = app.leadership.wait_for(leadership::PRUNER) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let leader = || app.leadership.holds(leadership::PRUNER);
        if let Err(error) = prune(&app, &shutdown, &leader).await {
            tracing::warn!(%error, "could not prune old rows; trying again in an hour");
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// One pass: deletes every row older than its window, as of the app's clock and the config in
/// force, asking `go_on` before each batch. Returns the rows deleted per table.
pub async fn prune(
    app: &App,
    shutdown: &watch::Receiver<bool>,
    go_on: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<(Table, usize)>, StoreError> {
    let windows = app.config().retention;
    let now = unix_ms(app.clock.now());
    let mut deleted = Vec::new();
    for table in Table::ALL {
        let window = match table {
            Table::Jobs | Table::ModerationLog | Table::OutboxEvents => windows.jobs,
            Table::InboxEvents
            | Table::AsTransactions
            | Table::Quarantine
            | Table::Reports
            | Table::ReportEvents => windows.inbox,
        };
        let cutoff = now - window.as_millis() as i64;
        let mut total = 0;
        loop {
            if *shutdown.borrow() || !go_on() {
                return Ok(deleted);
            }
            let batch = app
                .store
                .write_in_background(move |c| retention::prune_batch(c, table, cutoff))
                .await?;
            app.metrics
                .retention_deleted
                .with_label_values(&[table.name()])
                .inc_by(batch as u64);
            total += batch;
            if batch < BATCH {
                break;
            }
            tokio::task::yield_now().await;
        }
        if table == Table::InboxEvents && total > 0 {
            app.store.forget_pruned_events().await?;
        }
        if total > 0 {
            tracing::info!(
                table = table.name(),
                deleted = total,
                "pruned rows older than the retention window"
            );
        }
        deleted.push((table, total));
    }
    Ok(deleted)
}
