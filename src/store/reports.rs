//! Reports members made about a managed room or one of its events (DESIGN §7.3 "Across the
//! tenant"): stored with their `report.created` event and the job that forwards them to the
//! homeserver if the reporter's own forward did not get there, read oldest first by the platform.
//! They hold chat content, so the pruner deletes them after `retention.inbox_days`.

use diesel::prelude::*;

use super::jobs::{self, Job, NewJob};
use super::outbox::{self, EventData};
use super::schema::reports;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// A report as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = reports)]
pub struct Report {
    pub id: i64,
    pub tenant_id: String,
    pub room_kind: String,
    pub room_slug: String,
    pub room_id: String,
    /// `None`: the room itself was reported.
    pub event_id: Option<String>,
    pub reporter: String,
    pub reason: Option<String>,
    pub score: Option<i64>,
    pub event_sender: Option<String>,
    pub event_type: Option<String>,
    /// A JSON object.
    pub event_content: Option<String>,
    /// Unix ms.
    pub at: i64,
    pub forwarded_at: Option<i64>,
    pub forward_error: Option<String>,
}

/// A report to store.
#[derive(Debug, Clone, Default)]
pub struct NewReport {
    pub tenant_id: String,
    pub room_kind: String,
    pub room_slug: String,
    pub room_id: String,
    pub event_id: Option<String>,
    pub reporter: String,
    pub reason: Option<String>,
    pub score: Option<i64>,
    pub event_sender: Option<String>,
    pub event_type: Option<String>,
    pub event_content: Option<String>,
}

/// Stores `report`, appends `event` (its `report.created`) to the tenant's outbox and queues
/// `forward` (due at `forward_at`), in one write transaction: the tenant never hears of a report
/// that was not kept, and a report is never kept without the job that makes sure the homeserver
/// gets it.
pub fn create(
    conn: &mut DbConnection,
    report: &NewReport,
    event: impl FnOnce(&Report) -> EventData,
    forward: impl FnOnce(&Report) -> NewJob,
    now_ms: i64,
    forward_at: i64,
) -> Result<(Report, Job), StoreError> {
    conn.write(|conn| {
        let stored = on_backend!(conn, c => diesel::insert_into(reports::table)
            .values((
                reports::tenant_id.eq(&report.tenant_id),
                reports::room_kind.eq(&report.room_kind),
                reports::room_slug.eq(&report.room_slug),
                reports::room_id.eq(&report.room_id),
                reports::event_id.eq(&report.event_id),
                reports::reporter.eq(&report.reporter),
                reports::reason.eq(&report.reason),
                reports::score.eq(report.score),
                reports::event_sender.eq(&report.event_sender),
                reports::event_type.eq(&report.event_type),
                reports::event_content.eq(&report.event_content),
                reports::at.eq(now_ms),
            ))
            .returning(Report::as_returning())
            .get_result(c))?;
        let place = Some((stored.room_kind.as_str(), stored.room_slug.as_str()));
        outbox::append(conn, &stored.tenant_id, place, &event(&stored), now_ms)?;
        let job = jobs::enqueue(conn, &forward(&stored), forward_at)?;
        Ok((stored, job))
    })
}

/// Records how forwarding report `id` ended: reached the homeserver (`error` `None`), or refused
/// by it for good (`error`: what it answered). Either way it is not forwarded again.
pub fn mark_forwarded(
    conn: &mut DbConnection,
    id: i64,
    error: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::update(reports::table.find(id))
        .set((reports::forwarded_at.eq(now_ms), reports::forward_error.eq(error)))
        .execute(c))?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, id: i64) -> Result<Option<Report>, StoreError> {
    let report = on_backend!(conn, c => reports::table
        .find(id)
        .select(Report::as_select())
        .first(c)
        .optional())?;
    Ok(report)
}

/// The tenant's reports after id `after`, oldest first, at most `limit`.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<Report>, StoreError> {
    let found = on_backend!(conn, c => reports::table
        .filter(reports::tenant_id.eq(tenant_id))
        .filter(reports::id.gt(after))
        .order(reports::id)
        .limit(limit)
        .select(Report::as_select())
        .load(c))?;
    Ok(found)
}

/// Makes the report's `forward_report` job `job_id` due now (it was queued for later): the
/// reporter's own forward did not reach the homeserver, so the job takes over at once.
pub fn forward_now(conn: &mut DbConnection, job_id: i64, now_ms: i64) -> Result<(), StoreError> {
    use super::jobs::JobStatus;
    use super::schema::jobs as queue;
    on_backend!(conn, c => diesel::update(
        queue::table
            .filter(queue::id.eq(job_id))
            .filter(queue::status.eq(JobStatus::Queued)),
    )
    .set((queue::run_after.eq(now_ms), queue::updated_at.eq(now_ms)))
    .execute(c))?;
    Ok(())
}
