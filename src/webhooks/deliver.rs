//! One tenant's delivery session, run while this replica holds the tenant's lease: POST the next
//! event, move the cursor on a 2xx, go on until caught up; on a failure schedule the retry (or
//! give the event up once it has failed for [`GIVE_UP_AFTER`]) and end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use super::{GIVE_UP_AFTER, LEASE, sign};
use crate::app::App;
use crate::config::webhook::Webhook;
use crate::jobs::worker::backoff;
use crate::store::outbox::{self, OutboxEvent};
use crate::store::webhook_deliveries::{self, Delivery};
use crate::store::{StoreError, unix_ms};

/// Upper bound for one POST, connection included; shorter than [`LEASE`], so a request never
/// outlives the claim it was made under.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a refusing receiver's answer goes into `last_error`.
const ANSWER_EXCERPT: usize = 200;

/// The HTTP client for every webhook: rustls, [`TIMEOUT`], no redirects (a 3xx is a failure
/// that names the fix).
pub fn http_client() -> Result<reqwest::Client, String> {
    // reqwest is built without a default crypto provider; ring is ours. A second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("openmeet-appservice/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| format!("the HTTP client for webhooks could not be set up ({error}): install the system's CA certificates (Debian: apt-get install ca-certificates)"))
}

/// Delivers `claimed.tenant`'s events under the lease just claimed, in a span naming the tenant,
/// until caught up or `shutdown` turns true (then after the event in flight).
pub async fn session(
    app: Arc<App>,
    http: reqwest::Client,
    claimed: Delivery,
    shutdown: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("webhook", tenant = %claimed.tenant);
    async move {
        if let Err(error) = deliver(&app, &http, claimed, &shutdown).await {
            tracing::warn!(%error, "could not record a webhook delivery; the lease will lapse and it is tried again");
        }
    }
    .instrument(span)
    .await;
}

async fn deliver(
    app: &App,
    http: &reqwest::Client,
    claimed: Delivery,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let owner = app.config().jobs.worker_id.clone();
    let tenant = claimed.tenant;
    let (mut cursor, mut attempts, mut failing_since) = (
        claimed.delivered_seq,
        claimed.attempts,
        claimed.failing_since_ms,
    );
    loop {
        let webhook = app.config().tenant(&tenant).and_then(|t| t.webhook.clone());
        let next = {
            let tenant = tenant.clone();
            app.store
                .run(move |c| outbox::list_after(c, &tenant, cursor, 1))
                .await?
        };
        let (Some(webhook), Some(event), false) =
            (webhook, next.into_iter().next(), *shutdown.borrow())
        else {
            let (tenant, owner) = (tenant.clone(), owner.clone());
            return app
                .store
                .write_in_background(move |c| webhook_deliveries::release(c, &tenant, &owner))
                .await;
        };
        let result = post(app, http, &webhook, &event).await;
        let now = unix_ms(app.clock.now());
        let lease_until = now + LEASE.as_millis() as i64;
        let seq = event.seq;
        let held = match result {
            Ok(()) => {
                tracing::debug!(seq, event_type = %event.event_type, "webhook delivered");
                app.metrics
                    .webhook_deliveries
                    .with_label_values(&[tenant.as_str(), "delivered"])
                    .inc();
                let (tenant, owner) = (tenant.clone(), owner.clone());
                app.store
                    .write_in_background(move |c| {
                        webhook_deliveries::acknowledged(c, &tenant, &owner, seq, now, lease_until)
                    })
                    .await?
            }
            Err(error)
                if now - failing_since.unwrap_or(now) >= GIVE_UP_AFTER.as_millis() as i64 =>
            {
                let since = failing_since.unwrap_or(now);
                let error = format!(
                    "gave up on event {seq} ({}) after {} attempts over {} h: {error}",
                    event.event_type,
                    attempts + 1,
                    (now - since) / 3_600_000
                );
                tracing::warn!(seq, %error, "webhook delivery failed for good; going on with the next event");
                app.metrics
                    .webhook_deliveries
                    .with_label_values(&[tenant.as_str(), "failed"])
                    .inc();
                let (tenant, owner) = (tenant.clone(), owner.clone());
                app.store
                    .write_in_background(move |c| {
                        webhook_deliveries::given_up(
                            c,
                            &tenant,
                            &owner,
                            seq,
                            &error,
                            now,
                            lease_until,
                        )
                    })
                    .await?
            }
            Err(error) => {
                attempts += 1;
                let since = failing_since.unwrap_or(now);
                let delay = backoff(attempts);
                tracing::info!(seq, attempts, retry_in_ms = delay.as_millis() as u64, %error, "webhook delivery failed; retrying");
                app.metrics
                    .webhook_deliveries
                    .with_label_values(&[tenant.as_str(), "retry"])
                    .inc();
                let (tenant, owner) = (tenant.clone(), owner.clone());
                let next_attempt = now + delay.as_millis() as i64;
                let held = app
                    .store
                    .write_in_background(move |c| {
                        webhook_deliveries::attempt_failed(
                            c,
                            &tenant,
                            &owner,
                            &error,
                            since,
                            now,
                            next_attempt,
                        )
                    })
                    .await?;
                if !held {
                    tracing::warn!(
                        "the webhook lease lapsed during the attempt; another replica delivers this tenant now"
                    );
                }
                return Ok(());
            }
        };
        if !held {
            tracing::warn!(
                "the webhook lease lapsed during the attempt; another replica delivers this tenant now"
            );
            return Ok(());
        }
        (cursor, attempts, failing_since) = (seq, 0, None);
    }
}

/// POSTs `event` to `webhook`, signed for this attempt; `Err` with a sentence (never the secret,
/// never the URL) when the receiver did not answer 2xx.
async fn post(
    app: &App,
    http: &reqwest::Client,
    webhook: &Webhook,
    event: &OutboxEvent,
) -> Result<(), String> {
    let id = format!("{}-{}", event.tenant, event.seq);
    let body = serde_json::to_vec(&event.published())
        .unwrap_or_else(|error| unreachable!("an outbox event serializes: {error}"));
    let timestamp = unix_ms(app.clock.now()).div_euclid(1000);
    let signature = sign::signature(&webhook.key, &id, timestamp, &body);
    let response = http
        .post(webhook.url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|error| format!("the webhook could not be reached: {}", describe(error)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let answer = response.text().await.unwrap_or_default();
    let mut excerpt: String = answer
        .chars()
        .filter(|c| !c.is_control())
        .take(ANSWER_EXCERPT)
        .collect();
    if !excerpt.is_empty() {
        excerpt = format!(": {excerpt}");
    }
    let hint = if status.is_redirection() {
        " (webhooks do not follow redirects: configure the final URL)"
    } else {
        ""
    };
    Err(format!("the webhook answered HTTP {status}{hint}{excerpt}"))
}

/// A reqwest error with its causes, without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
