//! The durable work between inbound and outbound traffic: the worker that runs queued jobs (and
//! `feed`, what a job's end tells the platform), one file per job kind with `ensure_room`'s steps,
//! and the pruner that keeps the tables within their retention. What Synapse delivered is worked
//! through by the inbox processor (`crate::inbox`), which queues jobs here.

pub(crate) mod converge_tenant;
pub(crate) mod create_room;
pub(crate) mod decline_invite;
pub(crate) mod diagnose;
mod ensure_directory;
mod ensure_moderation;
pub(crate) mod ensure_room;
mod ensure_settings;
mod error;
mod feed;
pub(crate) mod follow_upgrade;
pub(crate) mod forward_report;
mod in_room;
pub(crate) mod lift_moderation;

pub mod prune;
pub(crate) mod redact_user;
mod repair_room;
pub(crate) mod send_direct_message;
pub(crate) mod send_message;
pub(crate) mod teardown_room;
pub(crate) mod tenant_tasks;
pub(crate) mod worker;

use std::sync::Arc;

pub use self::error::JobError;
use crate::app::App;
use crate::store::jobs::Job;

/// The job kinds that carry a room's declaration out: the room's latest one of these is what an
/// unchanged PUT or a repeated DELETE answers with, and how it ended is the room's status.
pub const DECLARATION_KINDS: &[&str] =
    &[ensure_room::KIND, follow_upgrade::KIND, teardown_room::KIND];

/// Every slug the room has had (the current one included) with its alias on its tenant's
/// homeserver.
async fn slug_aliases(
    app: &Arc<App>,
    room: &crate::store::rooms::Room,
) -> Result<Vec<(String, ruma::OwnedRoomAliasId)>, JobError> {
    let room_key = room.id;
    let slugs = app
        .store
        .run(move |c| crate::store::rooms::slugs(c, room_key))
        .await?;
    let kind = room.kind;
    let config = app.config();
    let server = config
        .homeserver_of(&room.tenant_id)
        .unwrap_or_else(|| config.default_homeserver())
        .homeserver
        .server_name
        .clone();
    Ok(slugs
        .into_iter()
        .filter_map(|slug| {
            let alias = crate::rooms::alias(kind, &slug, &room.tenant_id, &server).ok()?;
            Some((slug, alias))
        })
        .collect())
}

/// The job's payload as `T`.
fn payload<T: serde::de::DeserializeOwned>(job: &Job) -> Result<T, JobError> {
    serde_json::from_str(&job.payload).map_err(|error| {
        JobError::Permanent(format!(
            "the job's payload is not readable ({error}): cancel the job"
        ))
    })
}

/// The tenant a job or room belongs to, or the job's permanent failure when the config no longer
/// has it.
fn configured_tenant<'c>(
    config: &'c crate::config::Config,
    tenant_id: &str,
) -> Result<&'c crate::config::Tenant, JobError> {
    config.tenant(tenant_id).ok_or_else(|| {
        JobError::Permanent(format!(
            "tenant {tenant_id} is no longer configured: add it back to tenants, or cancel the job"
        ))
    })
}

/// The bot of the job's tenant, registered and named.
async fn tenant_bot(app: &Arc<App>, job: &Job) -> Result<ruma::OwnedUserId, JobError> {
    let config = app.config();
    let tenant = configured_tenant(&config, &job.tenant_id)?;
    app.ensure_bot(tenant).await?;
    Ok(config.bot_user_id(tenant))
}

/// Runs one attempt of `job` by its kind.
pub async fn execute(app: &Arc<App>, job: &Job) -> Result<serde_json::Value, JobError> {
    match job.kind.as_str() {
        ensure_room::KIND => ensure_room::run(app, job).await,
        teardown_room::KIND => teardown_room::run(app, job).await,
        decline_invite::KIND => decline_invite::run(app, job).await,
        follow_upgrade::KIND => follow_upgrade::run(app, job).await,
        send_message::KIND => send_message::run(app, job).await,
        send_direct_message::KIND => send_direct_message::run(app, job).await,
        converge_tenant::KIND => converge_tenant::run(app, job).await,
        lift_moderation::KIND => lift_moderation::run(app, job).await,
        redact_user::KIND => redact_user::run(app, job).await,
        forward_report::KIND => forward_report::run(app, job).await,
        other => Err(JobError::Permanent(format!(
            "unknown job kind {other:?}: it was queued by a newer version of the daemon; upgrade this one"
        ))),
    }
}
