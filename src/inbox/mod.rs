//! Synapse → us, after the acknowledgement (DESIGN §6): the inbox processor takes stored events
//! oldest first, records what each one is, and marks it
//! processed in the same database transaction (a crash leaves the batch pending, so nothing is
//! lost; a batch is never half-marked). One process works the inbox at a time, which keeps every
//! room in order.
//!
//! What each event is comes from `classify.rs`; the batch's follow-up (`repairs.rs`) acts on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

pub(crate) mod classify;
mod members;
mod repairs;

use self::classify::classify;
use crate::app::App;
use crate::observability::metrics::Metrics;
use crate::store::inbox::PendingEvent;
use crate::store::inbox_views;
use crate::store::unix_ms;

/// Events per database transaction.
const BATCH: i64 = 500;
/// How long the processor lets a burst gather once woken: under a steady stream of transactions it
/// would otherwise wake, read, classify and commit once for every one of them. Each batch costs a
/// commit and the pages it rewrites whatever its size, so under Synapse's steady stream a longer
/// wait is less CPU per event; nothing waits for the processor but the events' effects.
const GATHER: Duration = Duration::from_millis(10);
/// How often the processor looks for work without being woken (events stored by another replica).
const POLL: Duration = Duration::from_secs(1);
/// How often housekeeping runs while the processor is busy.
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// How often at most when it goes idle (under a steady trickle of transactions it goes idle after
/// every one, and reading the depth each time would cost more than the events).
const IDLE_HOUSEKEEPING: Duration = Duration::from_millis(100);

/// Works the inbox until `shutdown` turns true.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut last_housekeeping = Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let worked = match process_batch(&app).await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%error, "the inbox processor could not reach the database; retrying");
                0
            }
        };
        let due = if worked == 0 {
            IDLE_HOUSEKEEPING
        } else {
            HOUSEKEEPING
        };
        if last_housekeeping.elapsed() >= due {
            housekeeping(&app).await;
            last_housekeeping = Instant::now();
        }
        if worked > 0 {
            app.webhooks_wakeup.notify_one();
        }
        if worked == 0 {
            tokio::select! {
                _ = app.inbox_wakeup.notified() => tokio::time::sleep(GATHER).await,
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Processes one batch; returns how many events it handled.
pub async fn process_batch(app: &Arc<App>) -> Result<usize, crate::store::StoreError> {
    process_batch_with(app, |_| {}).await
}

/// [`process_batch`], calling `before` with each event before it is classified: the seam through
/// which a test holds the processor in the middle of a batch.
pub async fn process_batch_with(
    app: &Arc<App>,
    mut before: impl FnMut(&PendingEvent) + Send + 'static,
) -> Result<usize, crate::store::StoreError> {
    let config = app.config().clone();
    let now = unix_ms(app.clock.now());
    let processed = app
        .store
        .process_inbox(
            BATCH,
            now,
            {
                let config = config.clone();
                move |event| {
                    before(event);
                    classify(&config, event).handled()
                }
            },
            repairs::follow_up(config, now),
        )
        .await?;
    let debug = tracing::enabled!(tracing::Level::DEBUG);
    for (event, handled) in &processed {
        if handled.quarantine.is_some() || debug {
            let _span = tracing::warn_span!("inbox.event", room_id = %event.room_id, event_id = %event.event_id).entered();
            match &handled.quarantine {
                Some(reason) => {
                    app.metrics.events_quarantined.inc();
                    tracing::warn!(%reason, "quarantined");
                }
                None => {
                    tracing::debug!(event_type = %event.event_type, outcome = %handled.outcome, "processed")
                }
            }
        }
    }
    count_processed(
        &app.metrics,
        processed.iter().map(|(event, _)| event.event_type.as_str()),
    );
    Ok(processed.len())
}

/// Counts processed events by type: the processor's, and the settled ones the acknowledgement
/// stored processed. Per label once per batch, not per event.
pub fn count_processed<'a>(metrics: &Metrics, event_types: impl Iterator<Item = &'a str>) {
    let mut by_label: Vec<(&str, u64)> = Vec::new();
    for event_type in event_types {
        let label = Metrics::event_type_label(event_type);
        match by_label.iter_mut().find(|(known, _)| *known == label) {
            Some((_, count)) => *count += 1,
            None => by_label.push((label, 1)),
        }
    }
    for (label, count) in by_label {
        metrics
            .events_processed
            .with_label_values(&[label])
            .inc_by(count);
    }
}

/// Between batches, not on the request path: the depth gauges. (SQLite's checkpoints run in a
/// task of their own: `store/checkpoint.rs`.)
async fn housekeeping(app: &Arc<App>) {
    if let Ok((pending, oldest)) = app.store.run(inbox_views::pending_summary).await {
        app.metrics.inbox_depth.set(pending);
        let age = oldest.map_or(0.0, |oldest| {
            (unix_ms(app.clock.now()) - oldest).max(0) as f64 / 1000.0
        });
        app.metrics.inbox_oldest_age_seconds.set(age);
    }
}
