//! The job queue: durable, at-least-once work, claimed under a lease.
//!
//! Guarantees:
//! - A job is taken by one worker at a time: PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so
//!   several daemons can share one queue; SQLite claims inside `BEGIN IMMEDIATE` (one process).
//! - Jobs of one room run one at a time, in id order: a job is not taken while an earlier job of
//!   its room is queued or running — also while that one waits for a retry.
//! - A claim holds a lease; a worker renews it while it works. A running job whose lease lapsed
//!   (its worker crashed) is taken again, and a worker reclaims its own jobs at start-up.
//! - Every claim counts an attempt; the caller decides when attempts are spent (`dead`).
//! - A job keeps its `txn_prefix` for life, so the client-server transaction ids it sends are the
//!   same on every attempt and Synapse deduplicates them.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::Serialize;

use super::schema::jobs;
use super::{DbConnection, StoreError};
use crate::{on_backend, write_transaction};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const DEAD: &str = "dead";
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = jobs)]
pub struct Job {
    pub id: i64,
    pub tenant_id: String,
    pub room_key: Option<i64>,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub run_after: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub last_error: Option<String>,
    pub result: Option<String>,
    pub txn_prefix: String,
    pub created_at: i64,
    pub updated_at: i64,
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
            jobs::status.eq(QUEUED),
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
struct Candidate {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    tenant_id: String,
}

/// What a claim may take.
pub struct ClaimLimits<'a> {
    /// At most this many jobs in all.
    pub total: usize,
    /// How many more jobs a tenant may start now (its bound less what it runs).
    pub tenant_room: &'a dyn Fn(&str) -> usize,
}

const CANDIDATES_POSTGRES: &str = "
SELECT j.id, j.tenant_id FROM jobs j
WHERE ((j.status = 'queued' AND j.run_after <= $1) OR (j.status = 'running' AND j.lease_expires_at < $1))
  AND NOT EXISTS (
    SELECT 1 FROM jobs e
    WHERE e.room_key = j.room_key AND e.id < j.id AND e.status IN ('queued', 'running'))
ORDER BY j.id
LIMIT $2
FOR UPDATE OF j SKIP LOCKED";

const CANDIDATES_SQLITE: &str = "
SELECT j.id, j.tenant_id FROM jobs j
WHERE ((j.status = 'queued' AND j.run_after <= ?1) OR (j.status = 'running' AND j.lease_expires_at < ?1))
  AND NOT EXISTS (
    SELECT 1 FROM jobs e
    WHERE e.room_key = j.room_key AND e.id < j.id AND e.status IN ('queued', 'running'))
ORDER BY j.id
LIMIT ?2";

/// Claims runnable jobs for `owner` until `lease_until`, oldest first, within `limits`.
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
    // Look at more candidates than we may take: some belong to tenants at their bound.
    let look_at = (limits.total * 4) as i64;
    let sql = match conn {
        DbConnection::Postgres(_) => CANDIDATES_POSTGRES,
        DbConnection::Sqlite(_) => CANDIDATES_SQLITE,
    };
    let claimed = write_transaction!(conn, c => {
        let candidates: Vec<Candidate> = diesel::sql_query(sql)
            .bind::<BigInt, _>(now_ms)
            .bind::<BigInt, _>(look_at)
            .load(c)?;
        let mut taken: std::collections::HashMap<String, usize> = Default::default();
        let chosen: Vec<i64> = candidates
            .into_iter()
            .filter(|candidate| {
                let count = taken.entry(candidate.tenant_id.clone()).or_default();
                let ok = *count < (limits.tenant_room)(&candidate.tenant_id);
                *count += usize::from(ok);
                ok
            })
            .take(limits.total)
            .map(|candidate| candidate.id)
            .collect();
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(jobs::table.filter(jobs::id.eq_any(&chosen)))
            .set((
                jobs::status.eq(RUNNING),
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
            .filter(jobs::status.eq(RUNNING))
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
        Outcome::Succeeded { result } => (SUCCEEDED, None, None, Some(result.to_string()), 0),
        Outcome::Retry { run_after, error } => {
            (QUEUED, Some(*run_after), Some(error.as_str()), None, 0)
        }
        Outcome::Pause { run_after, error } => {
            (QUEUED, Some(*run_after), Some(error.as_str()), None, 1)
        }
        Outcome::Failed { error } => (FAILED, None, Some(error.as_str()), None, 0),
        Outcome::Dead { error } => (DEAD, None, Some(error.as_str()), None, 0),
    };
    let held = jobs::table
        .filter(jobs::id.eq(id))
        .filter(jobs::status.eq(RUNNING))
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

/// At start-up: the jobs `owner` was running when it stopped go back to the queue at once.
pub fn reclaim_own(conn: &mut DbConnection, owner: &str, now_ms: i64) -> Result<usize, StoreError> {
    let reclaimed = on_backend!(conn, c => diesel::update(
        jobs::table.filter(jobs::status.eq(RUNNING)).filter(jobs::lease_owner.eq(owner)),
    )
    .set((
        jobs::status.eq(QUEUED),
        jobs::run_after.eq(now_ms),
        jobs::lease_owner.eq(None::<String>),
        jobs::lease_expires_at.eq(None::<i64>),
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
    status: Option<&str>,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<Job>, StoreError> {
    let list = on_backend!(conn, c => {
        let mut query = jobs::table.select(Job::as_select()).order(jobs::id.desc()).limit(limit).into_boxed();
        if let Some(status) = status {
            query = query.filter(jobs::status.eq(status.to_owned()));
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
        jobs::table.filter(jobs::id.eq(id)).filter(jobs::status.eq_any([FAILED, DEAD, CANCELLED])),
    )
    .set((jobs::status.eq(QUEUED), jobs::attempts.eq(0), jobs::run_after.eq(now_ms), jobs::updated_at.eq(now_ms)))
    .execute(c))?;
    Ok(updated == 1)
}

/// An operator's cancel: a queued job will not run.
pub fn cancel(conn: &mut DbConnection, id: i64, now_ms: i64) -> Result<bool, StoreError> {
    let updated = on_backend!(conn, c => diesel::update(
        jobs::table.filter(jobs::id.eq(id)).filter(jobs::status.eq(QUEUED)),
    )
    .set((jobs::status.eq(CANCELLED), jobs::updated_at.eq(now_ms)))
    .execute(c))?;
    Ok(updated == 1)
}

/// Whether a job of `kind` waits for `room_key` (queued, not yet running).
pub fn has_queued(conn: &mut DbConnection, room_key: i64, kind: &str) -> Result<bool, StoreError> {
    let count: i64 = on_backend!(conn, c => jobs::table
        .filter(jobs::room_key.eq(room_key))
        .filter(jobs::kind.eq(kind))
        .filter(jobs::status.eq(QUEUED))
        .count()
        .get_result(c))?;
    Ok(count > 0)
}

/// The newest job of a room.
pub fn latest_for_room(conn: &mut DbConnection, room_key: i64) -> Result<Option<Job>, StoreError> {
    let job = on_backend!(conn, c => jobs::table
        .filter(jobs::room_key.eq(room_key))
        .order(jobs::id.desc())
        .select(Job::as_select())
        .first(c)
        .optional())?;
    Ok(job)
}
