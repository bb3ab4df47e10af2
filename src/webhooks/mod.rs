//! Webhook delivery (DESIGN §7.4): each tenant's outbox events POSTed to its webhook, signed the
//! Standard Webhooks way.
//!
//! Guarantees:
//! - At least once, in seq order per tenant: the cursor (`webhook_deliveries.delivered_seq`)
//!   moves only after the receiver answered 2xx, and the next event is sent only then. A crash
//!   between the answer and the cursor's update sends that event again, with the same
//!   `webhook-id` (`{tenant}-{seq}`): receivers deduplicate by it.
//! - Tenants are independent: each has its own cursor, lease and backoff, and is delivered by its
//!   own task, so a failing endpoint holds back only its own tenant's later events.
//! - A failed attempt (no answer within [`deliver::TIMEOUT`], or not 2xx) is retried with capped
//!   exponential backoff and jitter; an event still failing [`GIVE_UP_AFTER`] after its first
//!   failure is given up — counted in `failed_total` with its last error, shown in `status` and
//!   metrics — and the cursor moves on to the next one.
//! - One replica at a time delivers a tenant's events: it holds the tenant row's lease (taken by
//!   an `UPDATE … WHERE` no other lease is in force), renewed with every acknowledgement; a
//!   crashed replica's lease lapses after [`LEASE`] and a restarted one takes its own back at
//!   once; a replica stopping on SIGTERM ends its leases. A request never outlives the lease ([`deliver::TIMEOUT`] is shorter).
//! - A webhook new to the config starts at its tenant's current outbox head (the feed serves
//!   older events); one changed by a reload is tried at once with the new URL and key; one
//!   removed keeps its cursor, so adding it back resumes where it stopped.
//! - The secret is never logged, stored or put in an error: only the signature it makes leaves.

pub(crate) mod deliver;
pub(crate) mod sign;
pub(crate) mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::jobs::tenant_tasks::TenantTasks;
use tokio::sync::watch;

use crate::app::App;
use crate::config::{Config, webhook::Webhook};
use crate::store::{unix_ms, webhook_deliveries};

/// How often the worker looks for due deliveries without being woken (events appended by another
/// replica or process, retries coming due).
pub const POLL: Duration = Duration::from_secs(1);
/// How long a claim on a tenant holds without renewal.
pub const LEASE: Duration = Duration::from_secs(60);
/// How long an event is retried from its first failure before it is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How often the lag gauges are read from the database (the table sees every replica's work).
const GAUGES_REFRESH: Duration = Duration::from_secs(15);
/// How long shutdown lets deliveries in flight finish; then every lease this replica holds is
/// ended, so another replica delivers those tenants at once.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Delivers every tenant's events until `shutdown` turns true.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let http = match deliver::http_client() {
        Ok(http) => http,
        Err(error) => {
            tracing::error!("webhooks are not delivered: {error}");
            return;
        }
    };
    let mut seen: Option<Arc<Config>> = None;
    let mut webhooks: HashMap<String, Webhook> = HashMap::new();
    let mut running = TenantTasks::new("webhook delivery");
    let mut gauges_read: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let config = app.config();
        if !seen.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, &config)) {
            match follow_config(&app, &config, &mut webhooks).await {
                Ok(()) => seen = Some(config),
                Err(error) => {
                    tracing::warn!(%error, "could not record the configured webhooks; retrying")
                }
            }
        }
        let active = running.per_tenant();
        let idle: Vec<String> = webhooks
            .keys()
            .filter(|t| !active.contains_key(*t))
            .cloned()
            .collect();
        match claim(&app, idle).await {
            Ok(claimed) => {
                for delivery in claimed {
                    let tenant = delivery.tenant.clone();
                    let session =
                        deliver::session(app.clone(), http.clone(), delivery, shutdown.clone());
                    running.spawn(tenant, session);
                }
            }
            Err(error) => tracing::warn!(%error, "could not look for webhook deliveries; retrying"),
        }
        if gauges_read.is_none_or(|at| at.elapsed() >= GAUGES_REFRESH) {
            refresh_gauges(&app, &webhooks).await;
            gauges_read = Some(Instant::now());
        }
        tokio::select! {
            _ = running.next_ended() => {}
            _ = app.webhooks_wakeup.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
    running.stop(SHUTDOWN_GRACE).await;
    let owner = app.config().jobs.worker_id.clone();
    if let Err(error) = app
        .store
        .write_in_background(move |c| webhook_deliveries::release_all(c, &owner))
        .await
    {
        tracing::warn!(%error, "could not end this replica's webhook leases; they lapse within a minute");
    }
}

/// Gives every configured webhook its delivery row (a new one starts at the outbox head) and
/// makes a changed one due at once; `webhooks` becomes the configured set.
async fn follow_config(
    app: &App,
    config: &Config,
    webhooks: &mut HashMap<String, Webhook>,
) -> Result<(), crate::store::StoreError> {
    let configured: HashMap<String, Webhook> = config
        .tenants
        .iter()
        .filter_map(|tenant| Some((tenant.id.clone(), tenant.webhook.clone()?)))
        .collect();
    let changed: Vec<String> = configured
        .iter()
        .filter(|(tenant, webhook)| webhooks.get(*tenant).is_some_and(|old| old != *webhook))
        .map(|(tenant, _)| tenant.clone())
        .collect();
    let tenants: Vec<String> = configured.keys().cloned().collect();
    let now = unix_ms(app.clock.now());
    let created = app
        .store
        .write_in_background(move |c| {
            let mut created = Vec::new();
            for tenant in &tenants {
                if webhook_deliveries::ensure(c, tenant, now)? {
                    created.push(tenant.clone());
                }
            }
            for tenant in &changed {
                webhook_deliveries::retry_now(c, tenant, now)?;
            }
            Ok(created)
        })
        .await?;
    for tenant in created {
        tracing::info!(%tenant, "webhook configured: delivering the tenant's events from its current outbox head");
    }
    for tenant in webhooks.keys().filter(|t| !configured.contains_key(*t)) {
        tracing::info!(%tenant, "webhook removed from the config: the tenant's deliveries stop (its cursor is kept)");
    }
    *webhooks = configured;
    Ok(())
}

/// Claims the due tenants among `tenants` for this replica.
async fn claim(
    app: &App,
    tenants: Vec<String>,
) -> Result<Vec<webhook_deliveries::Delivery>, crate::store::StoreError> {
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    let owner = app.config().jobs.worker_id.clone();
    let now = unix_ms(app.clock.now());
    let due = {
        let owner = owner.clone();
        app.store
            .run(move |c| webhook_deliveries::due(c, &tenants, &owner, now))
            .await?
    };
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let lease_until = now + LEASE.as_millis() as i64;
    app.store
        .write_in_background(move |c| {
            let mut claimed = Vec::new();
            for tenant in &due {
                claimed.extend(webhook_deliveries::claim(
                    c,
                    tenant,
                    &owner,
                    now,
                    lease_until,
                )?);
            }
            Ok(claimed)
        })
        .await
}

/// Sets the lag gauges of the configured webhooks from the database.
async fn refresh_gauges(app: &App, webhooks: &HashMap<String, Webhook>) {
    let now = unix_ms(app.clock.now());
    match app.store.run(webhook_deliveries::progress).await {
        Ok(progress) => {
            let configured: Vec<&String> = webhooks.keys().collect();
            status::set_gauges(&app.metrics, &progress, &configured, now);
        }
        Err(error) => {
            tracing::warn!(%error, "could not read the webhook deliveries for their gauges")
        }
    }
}
