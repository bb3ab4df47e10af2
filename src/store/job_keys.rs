//! Jobs with a key: what a job is for, per tenant. A scheduled job (the lifting of a timed ban or
//! mute) is replaced or cancelled by a later one with its key; a message's Idempotency-Key answers
//! a repeated call with the first job.

use diesel::prelude::*;
use diesel::sql_types::Text;

use super::jobs::{Job, JobStatus, NewJob};
use super::schema::jobs;
use super::{DbConnection, StoreError};
use crate::{on_backend, write_transaction};

/// Queues `job` under `key` (unique per tenant among queued jobs) to run from `run_after`. A job
/// with that key already queued is replaced: it takes the new payload and time, so setting an
/// expiry again moves it instead of adding a second lifting.
pub fn enqueue_keyed(
    conn: &mut DbConnection,
    job: &NewJob,
    key: &str,
    run_after: i64,
    now_ms: i64,
) -> Result<Job, StoreError> {
    let job = write_transaction!(conn, c => {
        let replaced: Option<Job> = diesel::update(
            jobs::table
                .filter(jobs::tenant_id.eq(&job.tenant_id))
                .filter(jobs::key.eq(key))
                .filter(jobs::status.eq(JobStatus::Queued)),
        )
        .set((
            jobs::payload.eq(job.payload.to_string()),
            jobs::run_after.eq(run_after),
            jobs::updated_at.eq(now_ms),
        ))
        .returning(Job::as_returning())
        .get_result(c)
        .optional()?;
        if let Some(replaced) = replaced {
            return Ok(replaced);
        }
        diesel::insert_into(jobs::table)
            .values((
                jobs::tenant_id.eq(&job.tenant_id),
                jobs::room_key.eq(job.room_key),
                jobs::kind.eq(&job.kind),
                jobs::payload.eq(job.payload.to_string()),
                jobs::status.eq(JobStatus::Queued),
                jobs::attempts.eq(0),
                jobs::run_after.eq(run_after),
                jobs::txn_prefix.eq(&crate::config::secret::random_token()[..20]),
                jobs::created_at.eq(now_ms),
                jobs::updated_at.eq(now_ms),
                jobs::key.eq(key),
            ))
            .returning(Job::as_returning())
            .get_result(c)
    })?;
    Ok(job)
}

/// Cancels the queued job with `key`; returns whether there was one.
pub fn cancel_keyed(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let cancelled = on_backend!(conn, c => diesel::update(
        jobs::table
            .filter(jobs::tenant_id.eq(tenant_id))
            .filter(jobs::key.eq(key))
            .filter(jobs::status.eq(JobStatus::Queued)),
    )
    .set((jobs::status.eq(JobStatus::Cancelled), jobs::updated_at.eq(now_ms)))
    .execute(c))?;
    Ok(cancelled > 0)
}

/// The newest job of the tenant with `key`, whatever its status (a repeated call with the same
/// Idempotency-Key answers with it).
pub fn find_keyed(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
) -> Result<Option<Job>, StoreError> {
    let job = on_backend!(conn, c => jobs::table
        .filter(jobs::tenant_id.eq(tenant_id))
        .filter(jobs::key.eq(key))
        .order(jobs::id.desc())
        .select(Job::as_select())
        .first(c)
        .optional())?;
    Ok(job)
}

/// Queues `job` under `key` unless the tenant already has a job with that key (any status): then
/// that one is returned and nothing is queued (`false`). The answer to a repeated call with the
/// same Idempotency-Key; on PostgreSQL an advisory lock on the key makes replicas answering the
/// same key at once queue one job between them.
pub fn enqueue_once(
    conn: &mut DbConnection,
    job: &NewJob,
    key: &str,
    now_ms: i64,
) -> Result<(Job, bool), StoreError> {
    conn.write(|conn| {
        if let DbConnection::Postgres(c) = &mut *conn {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind::<Text, _>(format!("jobs.key\n{}\n{key}", job.tenant_id))
                .execute(c)?;
        }
        if let Some(first) = find_keyed(conn, &job.tenant_id, key)? {
            return Ok((first, false));
        }
        Ok((enqueue_keyed(conn, job, key, now_ms, now_ms)?, true))
    })
}
