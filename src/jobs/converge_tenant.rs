//! `converge_tenant`: a tenant-wide ban or mute changed, so every live room of the tenant gets an
//! `ensure_room` (which reads the tenant-wide rows). The rooms are queued a page at a time, each
//! page in one transaction, skipping rooms whose `ensure_room` already waits; a re-run after a
//! crash starts over and queues only what is missing. The job has no room, so it holds up none.
//!
//! A fan-out may name its rooms (`{"rooms": [key, …]}`, a user move's): then only those of them
//! still live are queued. Such a job is not the tenant's keyed one, so a tenant-wide call never
//! takes it for the fan-out it needs.

use std::sync::Arc;

use serde::Deserialize;
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

/// Queues a fan-out to these rooms of the tenant only (not the tenant's keyed one).
pub fn queue_rooms(
    conn: &mut DbConnection,
    tenant_id: &str,
    room_keys: &[i64],
    now_ms: i64,
) -> Result<Job, StoreError> {
    let job = NewJob {
        tenant_id: tenant_id.to_owned(),
        room_key: None,
        kind: KIND.to_owned(),
        payload: json!({"rooms": room_keys}),
    };
    job_store::enqueue(conn, &job, now_ms)
}

/// Queues `job`'s fan-out again (to the same rooms, or the whole tenant): for a repeated call
/// whose earlier fan-out ended badly.
pub fn again(conn: &mut DbConnection, job: &Job, now_ms: i64) -> Result<Job, StoreError> {
    match serde_json::from_str::<Payload>(&job.payload) {
        Ok(Payload { rooms: Some(rooms) }) => queue_rooms(conn, &job.tenant_id, &rooms, now_ms),
        _ => queue(conn, &job.tenant_id, now_ms),
    }
}

/// A fan-out's payload: `rooms` when it names them, else every live room of the tenant.
#[derive(Deserialize)]
struct Payload {
    rooms: Option<Vec<i64>>,
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let payload: Payload = super::payload(job)?;
    if let Some(rooms) = payload.rooms {
        return run_for(app, job, rooms).await;
    }
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

/// The fan-out to the rooms a job names: those still live, in one transaction per page.
async fn run_for(app: &Arc<App>, job: &Job, named: Vec<i64>) -> Result<Value, JobError> {
    let (mut rooms, mut queued) = (0, 0);
    for page in named.chunks(PAGE as usize) {
        let (tenant, now, page) = (
            job.tenant_id.clone(),
            unix_ms(app.clock.now()),
            page.to_vec(),
        );
        let (live, added) = app
            .store
            .write(move |c| {
                c.write(|c| {
                    let keys = moderation::live_among(c, &tenant, &page)?;
                    let mut added = 0;
                    for &key in &keys {
                        if !job_store::has_queued(c, key, create_room::KIND)? {
                            job_store::enqueue(c, &create_room::new_job_for(&tenant, key), now)?;
                            added += 1;
                        }
                    }
                    Ok::<_, StoreError>((keys.len(), added))
                })
            })
            .await?;
        app.jobs_wakeup.notify_one();
        rooms += live;
        queued += added;
    }
    tracing::info!(tenant = %job.tenant_id, rooms, queued, "queued the named rooms to converge");
    Ok(json!({"rooms": rooms, "queued": queued}))
}
