//! A tenant's webhook delivery as `GET /v1/status` and `status` show it, and its gauges.

use serde::{Deserialize, Serialize};

use crate::clock::duration;
use crate::config::webhook::Webhook;
use crate::observability::metrics::Metrics;
use crate::store::webhook_deliveries::Progress;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookStatus {
    /// Whether the config in force gives the tenant a webhook (a removed one keeps its cursor).
    pub configured: bool,
    /// Scheme, host and port events go to; the path is left out (it may carry a token).
    pub endpoint: Option<String>,
    /// The outbox seq up to which events were acknowledged or given up.
    pub delivered_seq: i64,
    /// The seq of the tenant's newest event.
    pub head_seq: i64,
    /// Events not delivered yet.
    pub lag_events: i64,
    /// Since the oldest undelivered event happened; `null` when caught up.
    pub oldest_undelivered_age_seconds: Option<f64>,
    /// Failed attempts at the next event.
    pub attempts: i32,
    /// When the next event first failed; `null` while deliveries succeed.
    pub failing_since_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    pub last_delivered_at_ms: Option<i64>,
    /// Events given up after failing for the whole retry window.
    pub failed_total: i64,
    /// The last event given up (read it from the feed).
    pub last_failed_seq: Option<i64>,
}

impl WebhookStatus {
    /// The status of a tenant with `webhook` configured and/or a delivery row; `None` with neither.
    pub fn of(webhook: Option<&Webhook>, progress: Option<&Progress>, now_ms: i64) -> Option<Self> {
        let endpoint = webhook.map(|w| w.url.origin().ascii_serialization());
        let Some(progress) = progress else {
            // Configured, and its row not made yet (the worker makes it at its next round).
            return webhook.map(|_| Self {
                configured: true,
                endpoint,
                delivered_seq: 0,
                head_seq: 0,
                lag_events: 0,
                oldest_undelivered_age_seconds: None,
                attempts: 0,
                failing_since_ms: None,
                last_error: None,
                last_error_at_ms: None,
                last_delivered_at_ms: None,
                failed_total: 0,
                last_failed_seq: None,
            });
        };
        let delivery = &progress.delivery;
        Some(Self {
            configured: webhook.is_some(),
            endpoint,
            delivered_seq: delivery.delivered_seq,
            head_seq: progress.head,
            lag_events: (progress.head - delivery.delivered_seq).max(0),
            oldest_undelivered_age_seconds: progress
                .oldest_undelivered_at_ms
                .map(|at| (now_ms - at).max(0) as f64 / 1000.0),
            attempts: delivery.attempts,
            failing_since_ms: delivery.failing_since_ms,
            last_error: delivery.last_error.clone(),
            last_error_at_ms: delivery.last_error_ms,
            last_delivered_at_ms: delivery.last_delivered_ms,
            failed_total: delivery.failed_total,
            last_failed_seq: delivery.last_failed_seq,
        })
    }
}

/// The webhook lines of the terminal table: one per tenant (its id) with a webhook or a cursor,
/// its last error under it.
pub fn table<'a>(
    webhooks: impl Iterator<Item = (&'a str, &'a WebhookStatus)>,
    now_ms: i64,
) -> String {
    let mut out = String::new();
    for (tenant, webhook) in webhooks {
        if out.is_empty() {
            out.push_str("\nWEBHOOKS (delivered/head; events given up after 24 h of failures count as failed)\n");
        }
        let oldest = webhook
            .oldest_undelivered_age_seconds
            .map_or_else(|| "-".into(), duration);
        let failing = webhook.failing_since_ms.map_or_else(
            || "no".into(),
            |since| format!("for {}", duration((now_ms - since).max(0) as f64 / 1000.0)),
        );
        out.push_str(&format!(
            "tenant {}  {}  delivered {}/{}  lag {} (oldest {})  failing {}  attempts {}  failed {}\n",
            tenant,
            webhook.endpoint.as_deref().unwrap_or("(removed from the config)"),
            webhook.delivered_seq,
            webhook.head_seq,
            webhook.lag_events,
            oldest,
            failing,
            webhook.attempts,
            webhook.failed_total,
        ));
        if let Some(error) = &webhook.last_error {
            let ago = webhook.last_error_at_ms.map_or_else(String::new, |at| {
                format!(" ({} ago)", duration((now_ms - at).max(0) as f64 / 1000.0))
            });
            out.push_str(&format!("    last error{ago}: {error}\n"));
        }
    }
    out
}

/// Sets the lag gauges of the tenants in `configured` from `progress`; a tenant whose webhook
/// was removed loses its series (its lag is nobody's concern until it is added back).
pub fn set_gauges(metrics: &Metrics, progress: &[Progress], configured: &[&String], now_ms: i64) {
    for entry in progress {
        let labels = [entry.delivery.tenant.as_str()];
        if !configured.contains(&&entry.delivery.tenant) {
            let _ = metrics.webhook_lag_events.remove_label_values(&labels);
            let _ = metrics
                .webhook_oldest_undelivered_age_seconds
                .remove_label_values(&labels);
            continue;
        }
        metrics
            .webhook_lag_events
            .with_label_values(&labels)
            .set((entry.head - entry.delivery.delivered_seq).max(0));
        metrics
            .webhook_oldest_undelivered_age_seconds
            .with_label_values(&labels)
            .set(
                entry
                    .oldest_undelivered_at_ms
                    .map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0),
            );
    }
}
