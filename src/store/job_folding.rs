//! Folding a room's changes into the job that waits for it (DESIGN §15): a change to a room whose
//! declaration job is queued, not yet running, needs no job of its own, because that job reads the
//! declaration when it runs. A job already running read it before the change, so then the change
//! needs a new job.

use diesel::prelude::*;

use super::jobs::{Job, JobStatus};
use super::schema::jobs;
use super::{DbConnection, StoreError};

/// The room's newest job among `kinds` when it is of `kind` and still queued: the job a change to
/// the room's declaration folds into. One statement (over the `jobs_room` index), called in the
/// change's write transaction; on PostgreSQL the newest job's row is share-locked until that
/// transaction ends, so no worker claims it (the claim skips locked rows) before the change is
/// committed and visible to the job; SQLite's one writer already keeps the claim out. A job being
/// claimed meanwhile is read once the claim commits, running, and not returned: the caller then
/// queues a new one.
pub fn waiting_for_room(
    conn: &mut DbConnection,
    room_key: i64,
    kinds: &[&str],
    kind: &str,
) -> Result<Option<Job>, StoreError> {
    let newest = jobs::table
        .filter(jobs::room_key.eq(room_key))
        .filter(jobs::kind.eq_any(kinds))
        .order(jobs::id.desc());
    let job: Option<Job> = match conn {
        DbConnection::Postgres(c) => newest
            .select(Job::as_select())
            .for_share()
            .first(c)
            .optional(),
        DbConnection::Sqlite(c) => newest.select(Job::as_select()).first(c).optional(),
    }?;
    Ok(job.filter(|job| job.kind == kind && job.status == JobStatus::Queued))
}
