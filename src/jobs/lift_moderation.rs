//! `lift_moderation`: a ban or mute given with `expires_in_seconds` lifts by itself. The job is
//! queued due at the expiry under a key per ban or mute, so setting the expiry again moves it and
//! lifting the ban or mute first cancels it (see [`schedule`]). It has no room, so waiting for its
//! time holds up none of the room's jobs; when due it lifts the row, writes the audit entry and
//! queues the convergence in one transaction.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{JobError, converge_tenant, ensure_room};
use crate::app::App;
use crate::store::jobs::{self as job_store, Job, NewJob};
use crate::store::moderation::{self, Kind, Scope};
use crate::store::moderation_log::{self, NewEntry};
use crate::store::rooms as room_store;
use crate::store::{DbConnection, StoreError, unix_ms};

pub const KIND: &str = "lift_moderation";

/// The audit log's reason for a lifting that was due.
const EXPIRED: &str = "expired";

#[derive(Serialize, Deserialize)]
struct Payload {
    kind: String,
    /// 0: tenant-wide.
    room_key: i64,
    user_id: String,
}

/// The key of the lifting of `kind` for `user_id` in `scope`.
fn key(kind: Kind, scope: Scope, user_id: &str) -> String {
    format!("lift:{}:{}:{user_id}", kind.as_str(), scope.room_key())
}

/// Schedules the lifting at `expires_at` (replacing the time of one already scheduled), or with
/// `None` cancels it.
pub fn schedule(
    conn: &mut DbConnection,
    tenant_id: &str,
    scope: Scope,
    user_id: &str,
    kind: Kind,
    expires_at: Option<i64>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let key = key(kind, scope, user_id);
    match expires_at {
        Some(at) => {
            let job = NewJob {
                tenant_id: tenant_id.to_owned(),
                room_key: None,
                kind: KIND.to_owned(),
                payload: json!(Payload {
                    kind: kind.as_str().to_owned(),
                    room_key: scope.room_key(),
                    user_id: user_id.to_owned(),
                }),
            };
            crate::store::job_keys::enqueue_keyed(conn, &job, &key, at, now_ms)?;
        }
        None => {
            crate::store::job_keys::cancel_keyed(conn, tenant_id, &key, now_ms)?;
        }
    }
    Ok(())
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let payload: Payload = super::payload(job)?;
    let kind = Kind::try_from(payload.kind).map_err(JobError::Permanent)?;
    let scope = match payload.room_key {
        0 => Scope::Tenant,
        key => Scope::Room(key),
    };
    let (tenant, job_id, now) = (job.tenant_id.clone(), job.id, unix_ms(app.clock.now()));
    let user_id = payload.user_id;
    let lifted = app
        .store
        .write(move |c| {
            c.write(|c| {
                let Some(row) = moderation::get(c, &tenant, scope, &user_id, kind)? else {
                    return Ok(None);
                };
                // Lifted already, made permanent, or moved later (a new job then has that time).
                if !row.in_force() || row.expires_at.is_none_or(|at| at > now) {
                    return Ok(None);
                }
                moderation::lift(c, &tenant, scope, &user_id, kind, now)?;
                let room = match scope {
                    Scope::Room(key) => room_store::get(c, key)?,
                    Scope::Tenant => None,
                };
                let converging = match (&room, scope) {
                    (Some(room), _) if room.status.is_live() => {
                        if !job_store::has_queued(c, room.id, ensure_room::KIND)? {
                            job_store::enqueue(c, &ensure_room::new_job(room), now)?;
                        }
                        true
                    }
                    (_, Scope::Tenant) => {
                        converge_tenant::queue(c, &tenant, now)?;
                        true
                    }
                    _ => false,
                };
                let entry = NewEntry {
                    tenant_id: tenant.clone(),
                    action: kind.action(false).to_owned(),
                    user_id: user_id.clone(),
                    room: room.map(|room| (room.kind.as_str().to_owned(), room.slug)),
                    reason: Some(EXPIRED.to_owned()),
                    actor: None,
                    expires_at: row.expires_at,
                    job_id: Some(job_id),
                };
                moderation_log::append(c, &entry, now)?;
                Ok::<_, StoreError>(Some(converging))
            })
        })
        .await?;
    let Some(converging) = lifted else {
        return Ok(json!({"skipped": "not in force, or no longer due"}));
    };
    app.metrics
        .moderation_actions
        .with_label_values(&[kind.action(false), "expired"])
        .inc();
    app.jobs_wakeup.notify_one();
    Ok(json!({"lifted": kind.as_str(), "converging": converging}))
}
