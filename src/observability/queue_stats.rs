//! The job-queue gauges per tenant (queued, running, dead, oldest queued age), refreshed from the
//! database: the worker only sees its own jobs, the table sees every replica's. One replica
//! exports them, the holder of the `queue_gauges` role (`leadership`); the others export none, so
//! a sum over pods counts each job once and an alert fires once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::leadership;
use crate::observability::metrics::Metrics;
use crate::store::status::{self, TenantQueue};
use crate::store::unix_ms;

/// How often the gauges are read from the database.
pub const REFRESH: Duration = Duration::from_secs(15);

/// Refreshes the gauges now and every [`REFRESH`] until `shutdown` turns true, while this replica
/// holds the `queue_gauges` role.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut seen = HashSet::new();
    loop {
        if !app.leadership.holds(leadership::QUEUE_GAUGES) {
            if !std::mem::take(&mut seen).is_empty() {
                clear(&app.metrics);
            }
            tokio::select! {
                () = app.leadership.wait_for(leadership::QUEUE_GAUGES) => continue,
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
        // Failed and dead jobs count within the retention window, as in the status report.
        let since = unix_ms(app.clock.now()) - app.config().retention.jobs.as_millis() as i64;
        let now = unix_ms(app.clock.now());
        match app
            .store
            .run(move |c| {
                let queues = status::queue_by_tenant(c, since)?;
                Ok((queues, status::scheduled_due_by_tenant(c, now)?))
            })
            .await
        {
            Ok((queues, due)) => {
                seen.extend(app.config().tenants.iter().map(|t| t.id.clone()));
                set(&app.metrics, &queues, &mut seen, now);
                set_scheduled_due(&app.metrics, &due, &seen);
            }
            Err(error) => tracing::warn!(%error, "could not read the job queue for its gauges"),
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Sets every tenant's gauges from `queues`; tenants in `seen` without an entry (their queue
/// emptied) are set to 0 rather than left at their last value.
fn set(metrics: &Metrics, queues: &[TenantQueue], seen: &mut HashSet<String>, now_ms: i64) {
    seen.extend(queues.iter().map(|q| q.tenant_id.clone()));
    for tenant in seen.iter() {
        let queue = queues.iter().find(|q| &q.tenant_id == tenant);
        let queue = queue.cloned().unwrap_or_default();
        let labels = [tenant.as_str()];
        metrics
            .jobs_queued
            .with_label_values(&labels)
            .set(queue.queued);
        metrics
            .jobs_running
            .with_label_values(&labels)
            .set(queue.running);
        metrics.jobs_dead.with_label_values(&labels).set(queue.dead);
        let age = queue
            .oldest_queued_created_at
            .map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0);
        metrics
            .jobs_oldest_queued_age_seconds
            .with_label_values(&labels)
            .set(age);
    }
}

/// Drops every series: another replica exports them now.
fn clear(metrics: &Metrics) {
    for gauge in [
        &metrics.jobs_queued,
        &metrics.jobs_running,
        &metrics.jobs_dead,
        &metrics.jobs_scheduled_due,
    ] {
        gauge.reset();
    }
    metrics.jobs_oldest_queued_age_seconds.reset();
}

/// Sets every seen tenant's count of scheduled jobs that are due and wait still (0 when none).
fn set_scheduled_due(metrics: &Metrics, due: &[(String, i64)], seen: &HashSet<String>) {
    for tenant in seen.iter().chain(due.iter().map(|(tenant, _)| tenant)) {
        let count = due.iter().find(|(t, _)| t == tenant).map_or(0, |(_, n)| *n);
        metrics
            .jobs_scheduled_due
            .with_label_values(&[tenant.as_str()])
            .set(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(tenant: &str, queued: i64, dead: i64, oldest: Option<i64>) -> TenantQueue {
        TenantQueue {
            tenant_id: tenant.into(),
            queued,
            running: 1,
            failed: 0,
            dead,
            oldest_queued_created_at: oldest,
            oldest_queued_run_after: oldest,
        }
    }

    #[test]
    fn a_tenant_whose_queue_empties_drops_to_zero() {
        let metrics = Metrics::new();
        let mut seen = HashSet::new();
        set(
            &metrics,
            &[queue("a", 3, 1, Some(1_000)), queue("b", 1, 0, Some(5_000))],
            &mut seen,
            11_000,
        );
        let text = metrics.render();
        assert!(
            text.contains("openmeet_as_jobs_queued{tenant=\"a\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("openmeet_as_jobs_dead{tenant=\"a\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("openmeet_as_jobs_running{tenant=\"b\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("openmeet_as_jobs_oldest_queued_age_seconds{tenant=\"a\"} 10"),
            "{text}"
        );

        set(
            &metrics,
            &[queue("b", 2, 0, Some(9_000))],
            &mut seen,
            11_000,
        );
        let text = metrics.render();
        assert!(
            text.contains("openmeet_as_jobs_queued{tenant=\"a\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("openmeet_as_jobs_dead{tenant=\"a\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("openmeet_as_jobs_running{tenant=\"a\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("openmeet_as_jobs_oldest_queued_age_seconds{tenant=\"a\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("openmeet_as_jobs_queued{tenant=\"b\"} 2"),
            "{text}"
        );
    }
}
