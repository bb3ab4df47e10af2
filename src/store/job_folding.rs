//! Folding a room's changes into the job that waits for it (DESIGN §15): a change to a room whose
//! declaration job is queued, not yet running, needs no job of its own, because that job reads the
//! declaration when it runs. A job already running read it before the change, so then the change
//! needs a new job.

use diesel::prelude::*;

use super::jobs::{Job, JobStatus};
use super::schema::jobs;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// The room's newest job among `kinds` when it is of `kind` and still queued: the job a change to
/// the room's declaration folds into. Called in the change's write transaction; on PostgreSQL the
/// row is share-locked until that transaction ends, so no worker claims it (the claim skips
/// locked rows) before the change is committed and visible to the job; SQLite's one writer
/// already keeps the claim out. A job claimed meanwhile is not returned (PostgreSQL checks the
/// locked row again), and the caller queues a new one.
pub fn waiting_for_room(
    conn: &mut DbConnection,
    room_key: i64,
    kinds: &[&str],
    kind: &str,
) -> Result<Option<Job>, StoreError> {
    let newest: Option<i64> = on_backend!(conn, c => jobs::table
        .filter(jobs::room_key.eq(room_key))
        .filter(jobs::kind.eq_any(kinds))
        .select(diesel::dsl::max(jobs::id))
        .first(c))?;
    let Some(newest) = newest else {
        return Ok(None);
    };
    let waiting = jobs::table
        .filter(jobs::id.eq(newest))
        .filter(jobs::kind.eq(kind))
        .filter(jobs::status.eq(JobStatus::Queued));
    let job = match conn {
        DbConnection::Postgres(c) => waiting
            .select(Job::as_select())
            .for_share()
            .first(c)
            .optional(),
        DbConnection::Sqlite(c) => waiting.select(Job::as_select()).first(c).optional(),
    }?;
    Ok(job)
}
