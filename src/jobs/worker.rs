//! The job worker: claims runnable jobs within this process's bounds, runs each under a renewed
//! lease, and records how the attempt ended — retry with backoff and jitter, wait out a rate
//! limit, pause while the tenant's homeserver refuses our token or cannot be reached, fail with a
//! fix sentence, or `dead` once attempts are spent. A homeserver that is paused holds up only its
//! own tenants: their jobs are not claimed (they wait, neither failed nor dead) while every other
//! tenant's are. `jobs.max_parallel` and `jobs.per_tenant` are read on every round, so a reload
//! (SIGHUP) applies them at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tenant_tasks::TenantTasks;
use tokio::sync::watch;
use tracing::Instrument;

use super::error::JobError;
use super::{ensure_room, follow_upgrade, teardown_room};
use crate::app::App;
use crate::homeservers::links::HomeserverLink;
use crate::matrix::RetryKind;
use crate::observability::health::TokenState;
use crate::store::jobs::{self, ClaimLimits, Job, Outcome};
use crate::store::room_changes;
use crate::store::unix_ms;

/// How often the worker looks for work without being woken (jobs queued by another replica,
/// retries coming due).
const POLL: Duration = Duration::from_millis(500);
/// First retry delay; doubles per attempt up to `MAX_BACKOFF`, with ±50 % jitter.
const BASE_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// When a job finds our token refused, it is looked at again after this (the worker also waits
/// for the token to be accepted before it claims anything).
const TOKEN_PAUSE: Duration = Duration::from_secs(5);
/// How long shutdown lets attempts in flight finish; the rest are handed back (queued again, the
/// attempt not counted) for another replica to take at once.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let owner = app.config().jobs.worker_id.clone();
    let now = unix_ms(app.clock.now());
    match app
        .store
        .write_in_background(move |c| jobs::reclaim_own(c, &owner, now))
        .await
    {
        Ok(0) => {}
        Ok(count) => tracing::info!(
            count,
            "took back the jobs this worker held before it stopped"
        ),
        Err(error) => {
            tracing::warn!(%error, "could not take back this worker's earlier jobs; their leases will lapse")
        }
    }
    let mut running = TenantTasks::new("job attempt");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let capacity = app.config().jobs.max_parallel.saturating_sub(running.len());
        let mut claimed_any = false;
        if capacity > 0
            && let Some(paused) = paused_tenants(&app)
        {
            match claim(&app, capacity, running.per_tenant(), &paused).await {
                Ok(claimed) => {
                    for job in claimed {
                        claimed_any = true;
                        running.spawn(job.tenant_id.clone(), attempt(app.clone(), job));
                    }
                }
                Err(error) => tracing::warn!(%error, "could not claim jobs; retrying"),
            }
        }
        if claimed_any {
            continue;
        }
        tokio::select! {
            _ = running.next_ended() => {}
            _ = app.jobs_wakeup.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
    running.stop(SHUTDOWN_GRACE).await;
    hand_back(&app).await;
}

/// Queues again, without counting their attempt, the jobs this worker still holds after the
/// grace period: another replica takes them now, not after their lease lapses.
async fn hand_back(app: &Arc<App>) {
    let owner = app.config().jobs.worker_id.clone();
    let now = unix_ms(app.clock.now());
    match app
        .store
        .write_in_background(move |c| jobs::hand_back(c, &owner, now))
        .await
    {
        Ok(0) => {}
        Ok(count) => {
            tracing::info!(
                count,
                "handed back the jobs not finished within the grace period"
            )
        }
        Err(error) => {
            tracing::warn!(%error, "could not hand back the jobs in hand; they run again once their leases lapse")
        }
    }
}

/// The configured tenants whose homeserver jobs may not call now; `None` when no homeserver may
/// be called (nothing to claim).
fn paused_tenants(app: &App) -> Option<HashSet<String>> {
    let links = app.links();
    let paused = links.paused();
    if paused.is_empty() {
        return Some(HashSet::new());
    }
    if paused.len() == links.iter().count() {
        return None;
    }
    let config = app.config();
    Some(
        config
            .tenants
            .iter()
            .filter(|tenant| paused.contains(&tenant.homeserver.as_str()))
            .map(|tenant| tenant.id.clone())
            .collect(),
    )
}

async fn claim(
    app: &Arc<App>,
    capacity: usize,
    busy: HashMap<String, usize>,
    paused: &HashSet<String>,
) -> Result<Vec<Job>, crate::store::StoreError> {
    let config = app.config();
    let settings = &config.jobs;
    let per_tenant = settings.per_tenant;
    let owner = settings.worker_id.clone();
    let now = unix_ms(app.clock.now());
    let lease_until = now + settings.lease.as_millis() as i64;
    let paused = paused.clone();
    app.store
        .write_in_background(move |c| {
            let limits = ClaimLimits {
                total: capacity,
                per_tenant,
                running: &busy,
                paused: &paused,
            };
            jobs::claim(c, &owner, now, lease_until, &limits)
        })
        .await
}

/// One attempt at `job`, in a span carrying its kind, id, tenant and room.
async fn attempt(app: Arc<App>, job: Job) {
    let span = tracing::info_span!("job", kind = %job.kind, job_id = job.id, tenant = %job.tenant_id, room_key = job.room_key);
    async move {
        let started = Instant::now();
        // Aborted when the attempt ends or is cut short at a stop (dropped with it).
        let renewal = tokio::spawn(renew_lease(app.clone(), job.id)).abort_handle();
        let _renewal = AbortOnDrop(renewal);
        let result = super::execute(&app, &job).await;
        drop(_renewal);
        let now = unix_ms(app.clock.now());
        let (label, outcome) = outcome(&app, &job, result, now);
        app.metrics.jobs.with_label_values(&[&job.kind, label]).inc();
        app.metrics.job_seconds.with_label_values(&[&job.kind]).observe(started.elapsed().as_secs_f64());
        let owner = app.config().jobs.worker_id.clone();
        let (id, room, ended) = (job.id, failing_room(&job), job.clone());
        let finished = app.store.write_in_background(move |c| c.write(|c| {
            let held = jobs::finish(c, id, &owner, &outcome, now)?;
            if let (true, Some((room_key, teardown)), Some(error)) = (held, room, outcome.final_error()) {
                room_changes::record_job_failure(c, room_key, id, error, teardown, now)?;
            }
            if held {
                super::feed::job_finished(c, &ended, &outcome, now)?;
            }
            Ok(held)
        }));
        match finished.await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the lease lapsed before the attempt ended; another worker took the job"),
            Err(error) => tracing::warn!(%error, "could not record how the attempt ended; the lease will lapse and it runs again"),
        }
        app.jobs_wakeup.notify_one();
        app.webhooks_wakeup.notify_one();
    }
    .instrument(span)
    .await;
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The declared room whose status shows how `job` ended, and whether the job is its teardown.
fn failing_room(job: &Job) -> Option<(i64, bool)> {
    let room_key = job.room_key?;
    match job.kind.as_str() {
        ensure_room::KIND | follow_upgrade::KIND => Some((room_key, false)),
        teardown_room::KIND => Some((room_key, true)),
        _ => None,
    }
}

/// Keeps the lease while the attempt runs.
async fn renew_lease(app: Arc<App>, id: i64) {
    let lease = app.config().jobs.lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        let owner = app.config().jobs.worker_id.clone();
        let until = unix_ms(app.clock.now()) + lease.as_millis() as i64;
        if let Err(error) = app
            .store
            .write_in_background(move |c| jobs::renew(c, &owner, &[id], until))
            .await
        {
            tracing::warn!(%error, "could not renew a job's lease");
        }
    }
}

/// How the attempt ends, and its metric label.
fn outcome(
    app: &App,
    job: &Job,
    result: Result<serde_json::Value, JobError>,
    now: i64,
) -> (&'static str, Outcome) {
    let error = match result {
        Ok(result) => {
            tracing::info!("job succeeded");
            return ("succeeded", Outcome::Succeeded { result });
        }
        Err(error) => error,
    };
    let sentence = error.sentence();
    // Every call of the job went to its tenant's homeserver: that one is refusing or away.
    let link: Arc<HomeserverLink> = app.link_of_tenant(&job.tenant_id);
    let (health, homeserver) = (&link.health, link.id.as_str());
    match error.retry_kind() {
        RetryKind::RateLimited(wait) => {
            app.metrics
                .rate_limit_waits
                .with_label_values(&[homeserver])
                .inc();
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "rate limited by the homeserver; waiting"
            );
            (
                "rate_limited",
                Outcome::Pause {
                    run_after: now + wait.as_millis() as i64,
                    error: sentence,
                },
            )
        }
        RetryKind::CredentialRejected => {
            app.metrics
                .token_rejected
                .with_label_values(&[homeserver])
                .inc();
            if health.set_token(TokenState::Rejected) != TokenState::Rejected {
                let registration = if homeserver == crate::config::DEFAULT_ID {
                    "openmeet-appservice registration".to_owned()
                } else {
                    format!("openmeet-appservice registration --homeserver {homeserver}")
                };
                tracing::error!(
                    homeserver,
                    "the homeserver refuses our as_token ({sentence}): its tenants' jobs pause until it is accepted again. Synapse has not loaded this registration, or the tokens differ: regenerate it with `{registration}`, update app_service_config_files and restart that Synapse."
                );
                health.recheck.notify_one();
            }
            (
                "paused",
                Outcome::Pause {
                    run_after: now + TOKEN_PAUSE.as_millis() as i64,
                    error: sentence,
                },
            )
        }
        RetryKind::Unavailable => {
            app.metrics
                .homeserver_unreachable
                .with_label_values(&[homeserver])
                .inc();
            if health.set_reachable(false) {
                tracing::warn!(
                    homeserver,
                    "the homeserver cannot be reached ({sentence}): its tenants' jobs wait until it answers again"
                );
                health.recheck.notify_one();
            }
            (
                "paused",
                Outcome::Pause {
                    run_after: now + backoff(job.attempts).as_millis() as i64,
                    error: sentence,
                },
            )
        }
        RetryKind::UserNotRegistered => {
            // Synapse's database was reset (or a user was deactivated): register our users again.
            tracing::warn!(%sentence, "the homeserver does not know one of our users; registering again");
            app.forget_registered();
            (
                "retry",
                Outcome::Retry {
                    run_after: now,
                    error: sentence,
                },
            )
        }
        RetryKind::Transient if job.attempts >= app.config().jobs.max_attempts => {
            tracing::warn!(attempts = job.attempts, %sentence, "job is dead: out of attempts");
            (
                "dead",
                Outcome::Dead {
                    error: format!("gave up after {} attempts: {sentence}", job.attempts),
                },
            )
        }
        RetryKind::Transient => {
            let delay = backoff(job.attempts);
            tracing::info!(retry_in_ms = delay.as_millis() as u64, %sentence, "job will be retried");
            (
                "retry",
                Outcome::Retry {
                    run_after: now + delay.as_millis() as i64,
                    error: sentence,
                },
            )
        }
        RetryKind::Permanent => {
            tracing::warn!(%sentence, "job failed");
            ("failed", Outcome::Failed { error: sentence })
        }
    }
}

/// Capped exponential backoff with ±50 % jitter, so retries of many jobs spread out.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(1, 20) as u32 - 1;
    let base = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF);
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    base.mul_f64(0.5 + f64::from(byte[0]) / 255.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempts in 1..=30 {
            let delay = backoff(attempts);
            let base = BASE_BACKOFF
                .saturating_mul(2u32.saturating_pow((attempts.min(20) - 1) as u32))
                .min(MAX_BACKOFF);
            assert!(
                delay >= base.mul_f64(0.5) && delay <= base.mul_f64(1.5),
                "attempt {attempts}: {delay:?}"
            );
        }
        assert!(backoff(1) <= Duration::from_millis(1500));
        assert!(backoff(30) <= MAX_BACKOFF.mul_f64(1.5));
    }
}
