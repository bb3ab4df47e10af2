//! The job queue: durable, at-least-once work, claimed under a lease.
//!
//! Guarantees:
//! - A job is taken by one worker at a time: PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so
//!   several daemons can share one queue; SQLite claims inside `BEGIN IMMEDIATE` (one process).
//! - Jobs of one room run one at a time, in id order: a job is not taken while an earlier job of
//!   its room is queued or running — also while that one waits for a retry.
//! - Tenants take turns: each tenant's oldest runnable jobs are candidates up to its bound, and
//!   free slots go first to the tenants running the fewest jobs, so a tenant's backlog never holds
//!   up another tenant's first job.
//! - A paused tenant (its homeserver refuses our token or cannot be reached) has no candidates:
//!   its jobs stay queued, attempts untouched, and take no slot from other tenants.
//! - A claim holds a lease; a worker renews it while it works. A running job whose lease lapsed
//!   (its worker crashed) is taken again, and a worker reclaims its own jobs at start-up.
//! - Every claim counts an attempt; the caller decides when attempts are spent (`dead`).
//! - A job keeps its `txn_prefix` for life, so the client-server transaction ids it sends are the
//!   same on every attempt and Synapse deduplicates them.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::Serialize;

pub use super::job_status::JobStatus;
use super::schema::jobs;
use super::{DbConnection, StoreError};
use crate::{on_backend, write_transaction};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = jobs)]
pub struct Job {
    pub id: i64,
    pub tenant_id: String,
    pub room_key: Option<i64>,
    pub kind: String,
    pub payload: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub run_after: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub txn_prefix: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// What the job is for, per tenant (see [`enqueue_keyed`]); `None` for most jobs.
    pub key: Option<String>,
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub tenant_id: String,
    pub room_key: Option<i64>,
    pub kind: String,
    pub payload: serde_json::Value,
}

/// Queues `job`; it may run from `now_ms`.
pub fn enqueue(conn: &mut DbConnection, job: &NewJob, now_ms: i64) -> Result<Job, StoreError> {
    let txn_prefix = crate::config::secret::random_token()[..20].to_owned();
    let row = on_backend!(conn, c => diesel::insert_into(jobs::table)
        .values((
            jobs::tenant_id.eq(&job.tenant_id),
            jobs::room_key.eq(job.room_key),
            jobs::kind.eq(&job.kind),
            jobs::payload.eq(job.payload.to_string()),
            jobs::status.eq(JobStatus::Queued),
            jobs::attempts.eq(0),
            jobs::run_after.eq(now_ms),
            jobs::txn_prefix.eq(&txn_prefix),
            jobs::created_at.eq(now_ms),
            jobs::updated_at.eq(now_ms),
        ))
        .returning(Job::as_returning())
        .get_result(c))?;
    Ok(row)
}

#[derive(QueryableByName)]
struct TenantRow {
    #[diesel(sql_type = Text)]
    tenant_id: String,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// What a claim may take.
pub struct ClaimLimits<'a> {
    /// At most this many jobs in all.
    pub total: usize,
    /// At most this many jobs of one tenant running at once.
    pub per_tenant: usize,
    /// The jobs each tenant already runs (tenants not named run none).
    pub running: &'a HashMap<String, usize>,
    /// Tenants none of whose jobs may be taken now (their homeserver is paused).
    pub paused: &'a HashSet<String>,
}

/// The tenants with queued or running jobs: a loose index scan over `jobs_runnable_by_tenant`,
/// one probe per tenant however long the queues are.
const TENANTS_WITH_WORK: &str = "
WITH RECURSIVE tenants(tenant_id) AS (
  SELECT MIN(tenant_id) FROM jobs WHERE status IN ('queued', 'running')
  UNION ALL
  SELECT (SELECT MIN(j.tenant_id) FROM jobs j
          WHERE j.status IN ('queued', 'running') AND j.tenant_id > t.tenant_id)
  FROM tenants t WHERE t.tenant_id IS NOT NULL
)
SELECT tenant_id FROM tenants WHERE tenant_id IS NOT NULL";

/// One tenant's oldest runnable jobs: due, or running on a lapsed lease, with no earlier job of
/// their room queued or running. PostgreSQL locks them (skipping jobs another claim holds).
const RUNNABLE_POSTGRES: &str = "
SELECT j.id FROM jobs j
WHERE j.tenant_id = $1 AND j.status IN ('queued', 'running')
  AND ((j.status = 'queued' AND j.run_after <= $2) OR (j.status = 'running' AND j.lease_expires_at < $2))
  AND NOT EXISTS (
    SELECT 1 FROM jobs e
    WHERE e.room_key = j.room_key AND e.id < j.id AND e.status IN ('queued', 'running'))
ORDER BY j.id
LIMIT $3
FOR UPDATE OF j SKIP LOCKED";

const RUNNABLE_SQLITE: &str = "
SELECT j.id FROM jobs j
WHERE j.tenant_id = ?1 AND j.status IN ('queued', 'running')
  AND ((j.status = 'queued' AND j.run_after <= ?2) OR (j.status = 'running' AND j.lease_expires_at < ?2))
  AND NOT EXISTS (
    SELECT 1 FROM jobs e
    WHERE e.room_key = j.room_key AND e.id < j.id AND e.status IN ('queued', 'running'))
ORDER BY j.id
LIMIT ?3";

/// Claims runnable jobs for `owner` until `lease_until`, within `limits`, tenants taking turns.
pub fn claim(
    conn: &mut DbConnection,
    owner: &str,
    now_ms: i64,
    lease_until: i64,
    limits: &ClaimLimits<'_>,
) -> Result<Vec<Job>, StoreError> {
    if limits.total == 0 {
        return Ok(Vec::new());
    }
    let runnable = match conn {
        DbConnection::Postgres(_) => RUNNABLE_POSTGRES,
        DbConnection::Sqlite(_) => RUNNABLE_SQLITE,
    };
    let claimed = write_transaction!(conn, c => {
        let tenants: Vec<TenantRow> = diesel::sql_query(TENANTS_WITH_WORK).load(c)?;
        // (turn, id): a tenant's first candidate has the turn after the jobs it already runs.
        let mut candidates: Vec<(usize, i64)> = Vec::new();
        for TenantRow { tenant_id } in tenants {
            if limits.paused.contains(&tenant_id) {
                continue;
            }
            let busy = limits.running.get(&tenant_id).copied().unwrap_or(0);
            let room = limits.per_tenant.saturating_sub(busy).min(limits.total);
            if room == 0 {
                continue;
            }
            let ids: Vec<IdRow> = diesel::sql_query(runnable)
                .bind::<Text, _>(&tenant_id)
                .bind::<BigInt, _>(now_ms)
                .bind::<BigInt, _>(room as i64)
                .load(c)?;
            candidates.extend(ids.into_iter().enumerate().map(|(i, row)| (busy + i, row.id)));
        }
        candidates.sort_unstable();
        let chosen: Vec<i64> = candidates.into_iter().take(limits.total).map(|(_, id)| id).collect();
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(jobs::table.filter(jobs::id.eq_any(&chosen)))
            .set((
                jobs::status.eq(JobStatus::Running),
                jobs::lease_owner.eq(owner),
                jobs::lease_expires_at.eq(lease_until),
                jobs::attempts.eq(jobs::attempts + 1),
                jobs::updated_at.eq(now_ms),
            ))
            .returning(Job::as_returning())
            .get_results(c)
    })?;
    let mut claimed: Vec<Job> = claimed;
    claimed.sort_by_key(|job| job.id);
    Ok(claimed)
}

/// Extends the leases `owner` holds on `ids`; returns how many it still held.
pub fn renew(
    conn: &mut DbConnection,
    owner: &str,
    ids: &[i64],
    lease_until: i64,
) -> Result<usize, StoreError> {
    let renewed = on_backend!(conn, c => diesel::update(
        jobs::table
            .filter(jobs::id.eq_any(ids))
            .filter(jobs::status.eq(JobStatus::Running))
            .filter(jobs::lease_owner.eq(owner)),
    )
    .set(jobs::lease_expires_at.eq(lease_until))
    .execute(c))?;
    Ok(renewed)
}

/// How a running job ends its attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded {
        result: serde_json::Value,
    },
    /// Back to the queue until `run_after` (backoff or a rate limit).
    Retry {
        run_after: i64,
        error: String,
    },
    /// Back to the queue until `run_after` without spending an attempt: the daemon's credential
    /// was refused, which is not the job's fault.
    Pause {
        run_after: i64,
        error: String,
    },
    Failed {
        error: String,
    },
    Dead {
        error: String,
    },
}

impl Outcome {
    /// The error of an attempt that ends the job with its work undone (`failed`, `dead`).
    pub fn final_error(&self) -> Option<&str> {
        match self {
            Self::Failed { error } | Self::Dead { error } => Some(error),
            _ => None,
        }
    }
}

/// Ends `owner`'s attempt at job `id`. Returns false when `owner` no longer held it (its lease
/// lapsed and another worker took it): then nothing is written.
pub fn finish(
    conn: &mut DbConnection,
    id: i64,
    owner: &str,
    outcome: &Outcome,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let (status, run_after, error, result, refund) = match outcome {
        Outcome::Succeeded { result } => (
            JobStatus::Succeeded,
            None,
            None,
            Some(result.to_string()),
            0,
        ),
        Outcome::Retry { run_after, error } => (
            JobStatus::Queued,
            Some(*run_after),
            Some(error.as_str()),
            None,
            0,
        ),
        Outcome::Pause { run_after, error } => (
            JobStatus::Queued,
            Some(*run_after),
            Some(error.as_str()),
            None,
            1,
        ),
        Outcome::Failed { error } => (JobStatus::Failed, None, Some(error.as_str()), None, 0),
        Outcome::Dead { error } => (JobStatus::Dead, None, Some(error.as_str()), None, 0),
    };
    let held = jobs::table
        .filter(jobs::id.eq(id))
        .filter(jobs::status.eq(JobStatus::Running))
        .filter(jobs::lease_owner.eq(owner));
    let updated = on_backend!(conn, c => diesel::update(held)
        .set((
            jobs::status.eq(status),
            jobs::run_after.eq(run_after.unwrap_or(now_ms)),
            jobs::lease_owner.eq(None::<String>),
            jobs::lease_expires_at.eq(None::<i64>),
            jobs::last_error.eq(error),
            jobs::result.eq(result),
            jobs::attempts.eq(jobs::attempts - refund),
            jobs::updated_at.eq(now_ms),
        ))
        .execute(c))?;
    Ok(updated == 1)
}

/// At start-up: the jobs `owner` was running when it stopped go back to the queue at once (their
/// attempt counted: the process that made it crashed, perhaps because of the job).
pub fn reclaim_own(conn: &mut DbConnection, owner: &str, now_ms: i64) -> Result<usize, StoreError> {
    requeue_held(conn, owner, now_ms, 0)
}

/// At a stop (SIGTERM): the jobs `owner` could not finish within the grace period go back to the
/// queue at once without their attempt counted, for another replica to take now rather than after
/// their lease lapses.
pub fn hand_back(conn: &mut DbConnection, owner: &str, now_ms: i64) -> Result<usize, StoreError> {
    requeue_held(conn, owner, now_ms, 1)
}

fn requeue_held(
    conn: &mut DbConnection,
    owner: &str,
    now_ms: i64,
    refund: i32,
) -> Result<usize, StoreError> {
    let reclaimed = on_backend!(conn, c => diesel::update(
        jobs::table.filter(jobs::status.eq(JobStatus::Running)).filter(jobs::lease_owner.eq(owner)),
    )
    .set((
        jobs::status.eq(JobStatus::Queued),
        jobs::run_after.eq(now_ms),
        jobs::lease_owner.eq(None::<String>),
        jobs::lease_expires_at.eq(None::<i64>),
        jobs::attempts.eq(jobs::attempts - refund),
        jobs::updated_at.eq(now_ms),
    ))
    .execute(c))?;
    Ok(reclaimed)
}

pub fn get(conn: &mut DbConnection, id: i64) -> Result<Option<Job>, StoreError> {
    let job =
        on_backend!(conn, c => jobs::table.find(id).select(Job::as_select()).first(c).optional())?;
    Ok(job)
}

/// Jobs newest first, optionally only those with `status` and of `kind`.
pub fn list(
    conn: &mut DbConnection,
    status: Option<JobStatus>,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<Job>, StoreError> {
    let list = on_backend!(conn, c => {
        let mut query = jobs::table.select(Job::as_select()).order(jobs::id.desc()).limit(limit).into_boxed();
        if let Some(status) = status {
            query = query.filter(jobs::status.eq(status));
        }
        if let Some(kind) = kind {
            query = query.filter(jobs::kind.eq(kind.to_owned()));
        }
        query.load(c)
    })?;
    Ok(list)
}

/// An operator's retry: a failed, dead or cancelled job is queued again with fresh attempts.
pub fn retry(conn: &mut DbConnection, id: i64, now_ms: i64) -> Result<bool, StoreError> {
    let updated = on_backend!(conn, c => diesel::update(
        jobs::table.filter(jobs::id.eq(id)).filter(jobs::status.eq_any([JobStatus::Failed, JobStatus::Dead, JobStatus::Cancelled])),
    )
    .set((jobs::status.eq(JobStatus::Queued), jobs::attempts.eq(0), jobs::run_after.eq(now_ms), jobs::updated_at.eq(now_ms)))
    .execute(c))?;
    Ok(updated == 1)
}

/// An operator's cancel: a queued job will not run.
pub fn cancel(conn: &mut DbConnection, id: i64, now_ms: i64) -> Result<bool, StoreError> {
    let updated = on_backend!(conn, c => diesel::update(
        jobs::table.filter(jobs::id.eq(id)).filter(jobs::status.eq(JobStatus::Queued)),
    )
    .set((jobs::status.eq(JobStatus::Cancelled), jobs::updated_at.eq(now_ms)))
    .execute(c))?;
    Ok(updated == 1)
}

/// Whether a job of `kind` waits for `room_key` (queued, not yet running).
pub fn has_queued(conn: &mut DbConnection, room_key: i64, kind: &str) -> Result<bool, StoreError> {
    let count: i64 = on_backend!(conn, c => jobs::table
        .filter(jobs::room_key.eq(room_key))
        .filter(jobs::kind.eq(kind))
        .filter(jobs::status.eq(JobStatus::Queued))
        .count()
        .get_result(c))?;
    Ok(count > 0)
}

/// The newest job of a room among `kinds` (the jobs that carry its declaration out, not, say, a
/// message sent in it).
pub fn latest_for_room(
    conn: &mut DbConnection,
    room_key: i64,
    kinds: &[&str],
) -> Result<Option<Job>, StoreError> {
    let job = on_backend!(conn, c => jobs::table
        .filter(jobs::room_key.eq(room_key))
        .filter(jobs::kind.eq_any(kinds))
        .order(jobs::id.desc())
        .select(Job::as_select())
        .first(c)
        .optional())?;
    Ok(job)
}

/// Replaces the payload of job `id` while `owner` runs it: how a long job records how far it got,
/// so that the next attempt (after a crash, a lapsed lease or a rate limit) continues from there.
/// Returns false when `owner` no longer holds it (then nothing is written).
pub fn save_progress(
    conn: &mut DbConnection,
    id: i64,
    owner: &str,
    payload: &serde_json::Value,
) -> Result<bool, StoreError> {
    let held = jobs::table
        .filter(jobs::id.eq(id))
        .filter(jobs::status.eq(JobStatus::Running))
        .filter(jobs::lease_owner.eq(owner));
    let updated = on_backend!(conn, c => diesel::update(held)
        .set(jobs::payload.eq(payload.to_string()))
        .execute(c))?;
    Ok(updated == 1)
}
