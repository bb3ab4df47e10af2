//! What operators see per homeserver — its as_token's state and last ping — and per tenant — its
//! homeserver and bot, whether the bot is registered, the job queue, the jobs that ended failed
//! or dead within `retention.jobs_days` and its webhook delivery — shared by `GET /v1/status`
//! (what the running daemon knows)
//! and `openmeet-appservice status` (which asks the homeserver itself, so it works while the
//! daemon is down). Never carries a secret.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

mod homeservers;
mod leaders;

pub use self::homeservers::{HomeserverState, HomeserverView};
use self::homeservers::{homeserver_status, ready_ping};
pub use self::leaders::LeaderStatus;
use crate::app::App;
use crate::clock::duration;
use crate::observability::health::TokenState;
use crate::store::jobs::JobStatus;
use crate::store::leader;
use crate::store::status::{self as queue_status, FailedJob, TenantQueue};
use crate::store::{StoreError, inbox_views, unix_ms, webhook_deliveries};
use crate::webhooks::status::WebhookStatus;

/// The newest failed and dead jobs shown per tenant (the queue counts them all).
pub const FAILED_JOBS_PER_TENANT: i64 = 100;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Status {
    pub version: String,
    /// The backend and where it is, without credentials.
    pub database: String,
    pub inbox: Inbox,
    pub ready: Ready,
    /// What the default homeserver last said about its as_token: `accepted`, `rejected` or
    /// `unknown` (each homeserver's is in `homeservers`).
    pub as_token: String,
    /// Every homeserver the config serves, the default one first.
    pub homeservers: Vec<HomeserverStatus>,
    /// The configured tenants in config order, then any other tenant that still has jobs.
    pub tenants: Vec<TenantStatus>,
    /// Each singleton role and the replica (`jobs.worker_id`) that runs it (DESIGN §15).
    pub leaders: Vec<LeaderStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HomeserverStatus {
    /// `default` for the top-level homeserver, else its `homeservers[].id`.
    pub id: String,
    pub server_name: String,
    /// What it last said about its as_token: `accepted`, `rejected` or `unknown`.
    pub as_token: String,
    /// Its last appservice ping round trip; `null` from the command (it cannot know).
    pub ping: Option<bool>,
    /// The token accepted and the last ping made; `null` from the command.
    pub healthy: Option<bool>,
    /// The ids of the configured tenants that live on it.
    pub tenants: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inbox {
    pub pending: i64,
    pub oldest_received_at_ms: Option<i64>,
}

/// The homeserver half of readiness: true when it holds for at least one homeserver.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ready {
    pub as_token: bool,
    /// The daemon's last appservice ping round trip made by a homeserver that accepts our token;
    /// `null` from the command (it cannot know).
    pub ping: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantStatus {
    pub id: String,
    /// `null` for a tenant that is no longer configured but still has jobs.
    pub name: Option<String>,
    /// The id of the homeserver it lives on; `null` for a tenant no longer configured.
    pub homeserver: Option<String>,
    pub bot: Option<String>,
    /// From the daemon: `true` once this process registered or found the bot, `false` for "not
    /// yet confirmed". From the command: what the homeserver answered, `null` if it could not ask.
    pub bot_registered: Option<bool>,
    /// What its homeserver last said about that homeserver's as_token.
    pub as_token: String,
    pub queue: Queue,
    /// The jobs that ended failed or dead within the retention window, newest first, at most
    /// [`FAILED_JOBS_PER_TENANT`].
    pub failed_jobs: Vec<FailedJobStatus>,
    /// The tenant's webhook delivery; `null` when it has no webhook.
    pub webhook: Option<WebhookStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Queue {
    pub queued: i64,
    pub running: i64,
    /// Jobs that ended `failed` within the retention window.
    pub failed: i64,
    /// Jobs that ended `dead` within the retention window.
    pub dead: i64,
    /// Since the oldest queued job was queued; `null` when nothing is queued.
    pub oldest_queued_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailedJobStatus {
    pub id: i64,
    pub kind: String,
    /// `failed` (permanent error) or `dead` (attempts spent).
    pub status: JobStatus,
    /// `tenant/kind/slug`, when the job is about a room.
    pub room: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at_ms: i64,
}

/// The status from the database and `homeserver`.
pub async fn collect(app: &App, homeserver: &HomeserverView) -> Result<Status, StoreError> {
    let config = app.config();
    let now = unix_ms(app.clock.now());
    let since = now - config.retention.jobs.as_millis() as i64;
    let (queues, failed_jobs, inbox, webhooks, leases) = app
        .store
        .run(move |conn| {
            let queues = queue_status::queue_by_tenant(conn, since)?;
            let mut failed_jobs = HashMap::new();
            for queue in queues.iter().filter(|q| q.failed + q.dead > 0) {
                let latest = queue_status::latest_failed(
                    conn,
                    &queue.tenant_id,
                    since,
                    FAILED_JOBS_PER_TENANT,
                )?;
                failed_jobs.insert(queue.tenant_id.clone(), latest);
            }
            let inbox = inbox_views::pending_summary(conn)?;
            let webhooks = webhook_deliveries::progress(conn)?;
            Ok((queues, failed_jobs, inbox, webhooks, leader::all(conn)?))
        })
        .await?;
    let leaders = leaders::of(app, &config, &leases, now);
    let token = token_label(homeserver.token(crate::config::DEFAULT_ID)).to_owned();
    let mut tenants: Vec<TenantStatus> = config
        .tenants
        .iter()
        .map(|tenant| {
            let bot = config.bot_user_id(tenant);
            TenantStatus {
                id: tenant.id.clone(),
                name: Some(tenant.name.clone()),
                homeserver: Some(tenant.homeserver.clone()),
                bot_registered: homeserver.registered(&bot),
                bot: Some(bot.to_string()),
                as_token: token_label(homeserver.token(&tenant.homeserver)).to_owned(),
                queue: Queue::default(),
                failed_jobs: Vec::new(),
                webhook: None,
            }
        })
        .collect();
    for queue in &queues {
        if !tenants.iter().any(|t| t.id == queue.tenant_id) {
            tenants.push(TenantStatus {
                id: queue.tenant_id.clone(),
                name: None,
                homeserver: None,
                bot: None,
                bot_registered: None,
                as_token: token.clone(),
                queue: Queue::default(),
                failed_jobs: Vec::new(),
                webhook: None,
            });
        }
    }
    for tenant in &mut tenants {
        if let Some(queue) = queues.iter().find(|q| q.tenant_id == tenant.id) {
            tenant.queue = queue_of(queue, now);
        }
        if let Some(failed) = failed_jobs.get(&tenant.id) {
            tenant.failed_jobs = failed.iter().map(failed_job).collect();
        }
        let webhook = config.tenant(&tenant.id).and_then(|t| t.webhook.as_ref());
        let progress = webhooks.iter().find(|p| p.delivery.tenant == tenant.id);
        tenant.webhook = WebhookStatus::of(webhook, progress, now);
    }
    Ok(Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: config.database.url.describe(),
        inbox: Inbox {
            pending: inbox.0,
            oldest_received_at_ms: inbox.1,
        },
        ready: Ready {
            as_token: homeserver
                .homeservers
                .iter()
                .any(|h| h.token == TokenState::Accepted),
            ping: ready_ping(homeserver),
        },
        as_token: token,
        homeservers: homeserver
            .homeservers
            .iter()
            .map(|state| homeserver_status(&config, state))
            .collect(),
        tenants,
        leaders,
    })
}

pub fn token_label(state: TokenState) -> &'static str {
    match state {
        TokenState::Accepted => "accepted",
        TokenState::Rejected => "rejected",
        TokenState::Unknown => "unknown",
    }
}

fn queue_of(queue: &TenantQueue, now_ms: i64) -> Queue {
    Queue {
        queued: queue.queued,
        running: queue.running,
        failed: queue.failed,
        dead: queue.dead,
        oldest_queued_age_seconds: queue
            .oldest_queued_created_at
            .map(|at| (now_ms - at).max(0) as f64 / 1000.0),
    }
}

fn failed_job(job: &FailedJob) -> FailedJobStatus {
    FailedJobStatus {
        id: job.id,
        kind: job.kind.clone(),
        status: job.status,
        room: job.room.clone(),
        attempts: job.attempts,
        last_error: job.last_error.clone(),
        updated_at_ms: job.updated_at,
    }
}

impl Status {
    /// A table of tenants, then each failed or dead job with its last error, for a terminal.
    pub fn to_table(&self, now_ms: i64) -> String {
        let mut rows = vec![
            [
                "TENANT",
                "BOT",
                "REGISTERED",
                "TOKEN",
                "QUEUED",
                "RUNNING",
                "FAILED",
                "DEAD",
                "OLDEST",
            ]
            .map(str::to_owned),
        ];
        for tenant in &self.tenants {
            rows.push([
                tenant.id.clone(),
                tenant
                    .bot
                    .clone()
                    .unwrap_or_else(|| "(not configured)".into()),
                match tenant.bot_registered {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "unknown".into(),
                },
                tenant.as_token.clone(),
                tenant.queue.queued.to_string(),
                tenant.queue.running.to_string(),
                tenant.queue.failed.to_string(),
                tenant.queue.dead.to_string(),
                tenant
                    .queue
                    .oldest_queued_age_seconds
                    .map_or_else(|| "-".into(), duration),
            ]);
        }
        let mut out = columns(&rows);
        let mut homeservers =
            vec![["HOMESERVER", "SERVER NAME", "TOKEN", "PING", "TENANTS"].map(str::to_owned)];
        for homeserver in &self.homeservers {
            homeservers.push([
                homeserver.id.clone(),
                homeserver.server_name.clone(),
                homeserver.as_token.clone(),
                match homeserver.ping {
                    Some(true) => "ok".into(),
                    Some(false) => "failing".into(),
                    None => "-".into(),
                },
                homeserver.tenants.join(", "),
            ]);
        }
        out.push('\n');
        out.push_str(&columns(&homeservers));
        let failed: Vec<_> = self
            .tenants
            .iter()
            .flat_map(|t| t.failed_jobs.iter().map(move |job| (t, job)))
            .collect();
        if !failed.is_empty() {
            out.push_str("\nFAILED AND DEAD JOBS (newest first; the same PUT or DELETE, or `jobs retry <id>`, queues one again)\n");
        }
        for (tenant, job) in failed {
            let ago = duration((now_ms - job.updated_at_ms).max(0) as f64 / 1000.0);
            out.push_str(&format!(
                "job {}  {}  tenant {}  {}  room {}  attempts {}  {} ago\n    {}\n",
                job.id,
                job.status,
                tenant.id,
                job.kind,
                job.room.as_deref().unwrap_or("-"),
                job.attempts,
                ago,
                job.last_error.as_deref().unwrap_or("(no error recorded)"),
            ));
        }
        let webhooks = (self.tenants.iter())
            .filter_map(|tenant| Some((tenant.id.as_str(), tenant.webhook.as_ref()?)));
        out.push_str(&crate::webhooks::status::table(webhooks, now_ms));
        out.push_str(&leaders::table(&self.leaders, now_ms));
        out
    }
}

/// Rows of cells as left-aligned columns two spaces apart.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        Status {
            version: "0.1.0".into(),
            database: "sqlite file x.db".into(),
            inbox: Inbox {
                pending: 0,
                oldest_received_at_ms: None,
            },
            ready: Ready {
                as_token: true,
                ping: None,
            },
            as_token: "accepted".into(),
            homeservers: vec![
                HomeserverStatus {
                    id: "default".into(),
                    server_name: "example.org".into(),
                    as_token: "accepted".into(),
                    ping: Some(true),
                    healthy: Some(true),
                    tenants: vec!["tenantA".into()],
                },
                HomeserverStatus {
                    id: "eu".into(),
                    server_name: "eu.example.org".into(),
                    as_token: "rejected".into(),
                    ping: Some(false),
                    healthy: Some(false),
                    tenants: vec![],
                },
            ],
            tenants: vec![TenantStatus {
                id: "tenantA".into(),
                name: Some("Tenant A".into()),
                homeserver: Some("default".into()),
                bot: Some("@openmeet-bot-tenanta:example.org".into()),
                bot_registered: Some(true),
                as_token: "accepted".into(),
                queue: Queue {
                    queued: 2,
                    running: 0,
                    failed: 0,
                    dead: 1,
                    oldest_queued_age_seconds: Some(185.0),
                },
                failed_jobs: vec![FailedJobStatus {
                    id: 7,
                    kind: "ensure_room".into(),
                    status: JobStatus::Dead,
                    room: Some("tenantA/event/party".into()),
                    attempts: 3,
                    last_error: Some("gave up after 3 attempts: HTTP 500".into()),
                    updated_at_ms: 1_000,
                }],
                webhook: None,
            }],
            leaders: vec![
                LeaderStatus {
                    role: "pruner".into(),
                    holder: Some("pod-a:8009".into()),
                    expires_at_ms: Some(71_000),
                },
                LeaderStatus {
                    role: "watchdog:default".into(),
                    holder: None,
                    expires_at_ms: None,
                },
            ],
        }
    }

    #[test]
    fn the_table_shows_each_tenant_and_each_failed_job_with_its_error() {
        let table = status().to_table(61_000);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("TENANT ") && lines[0].ends_with("OLDEST"),
            "{table}"
        );
        assert!(
            lines[1].contains("tenantA")
                && lines[1].contains("yes")
                && lines[1].contains("accepted")
                && lines[1].ends_with("3m05s"),
            "{table}"
        );
        assert!(
            table.contains("\nHOMESERVER  SERVER NAME     TOKEN     PING     TENANTS\ndefault     example.org     accepted  ok       tenantA\neu          eu.example.org  rejected  failing\n"),
            "{table}"
        );
        assert!(table.contains("job 7  dead  tenant tenantA  ensure_room  room tenantA/event/party  attempts 3  1m00s ago"), "{table}");
        assert!(
            table.contains("    gave up after 3 attempts: HTTP 500"),
            "{table}"
        );
        assert!(
            table.contains("\nROLE              RUN BY                              LEASE\npruner            pod-a:8009                          10s left\nwatchdog:default  nobody now (taken within a second)  -\n"),
            "{table}"
        );
    }
}
