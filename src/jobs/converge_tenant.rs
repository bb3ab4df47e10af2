//! `converge_tenant`: a tenant-wide ban or mute changed, so every live room of the tenant gets an
//! `ensure_room` (which reads the tenant-wide rows). The rooms are queued a page at a time, each
//! page in one transaction, skipping rooms whose `ensure_room` already waits; a re-run after a
//! crash starts over and queues only what is missing. The job has no room, so it holds up none.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{JobError, create_room};
use crate::app::App;
use crate::store::jobs::{self as job_store, Job, JobStatus, NewJob};
use crate::store::{DbConnection, StoreError, moderation, unix_ms};

pub const KIND: &str = "converge_tenant";

/// One queued fan-out per tenant: a second tenant-wide call before it runs is answered with it.
const KEY: &str = "converge_tenant";

/// Rooms queued per transaction.
const PAGE: i64 = 500;

/// Queues the tenant's fan-out (or returns the one already waiting).
pub fn queue(conn: &mut DbConnection, tenant_id: &str, now_ms: i64) -> Result<Job, StoreError> {
    let job = NewJob {
        tenant_id: tenant_id.to_owned(),
        room_key: None,
        kind: KIND.to_owned(),
        payload: json!({}),
    };
    crate::store::job_keys::enqueue_keyed(conn, &job, KEY, now_ms, now_ms)
}

/// The tenant's latest fan-out, unless it ended badly: what a tenant-wide call that changes
/// nothing answers with. Otherwise a fresh one is queued.
pub fn queue_if_changed(
    conn: &mut DbConnection,
    tenant_id: &str,
    changed: bool,
    now_ms: i64,
) -> Result<Job, StoreError> {
    match crate::store::job_keys::find_keyed(conn, tenant_id, KEY)? {
        Some(job)
            if !changed && !job.status.ended_badly() && job.status != JobStatus::Cancelled =>
        {
            Ok(job)
        }
        _ => queue(conn, tenant_id, now_ms),
    }
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let (mut after, mut rooms, mut queued) = (0, 0, 0);
    loop {
        let (tenant, now) = (job.tenant_id.clone(), unix_ms(app.clock.now()));
        let (keys, added) = app
            .store
            .write(move |c| {
                c.write(|c| {
                    let keys = moderation::live_room_keys(c, &tenant, after, PAGE)?;
                    let mut added = 0;
                    for &key in &keys {
                        if !job_store::has_queued(c, key, create_room::KIND)? {
                            job_store::enqueue(c, &create_room::new_job_for(&tenant, key), now)?;
                            added += 1;
                        }
                    }
                    Ok::<_, StoreError>((keys, added))
                })
            })
            .await?;
        app.jobs_wakeup.notify_one();
        rooms += keys.len();
        queued += added;
        match keys.last() {
            Some(&last) if keys.len() as i64 == PAGE => after = last,
            _ => break,
        }
    }
    tracing::info!(tenant = %job.tenant_id, rooms, queued, "queued the tenant's rooms to converge");
    Ok(json!({"rooms": rooms, "queued": queued}))
}
