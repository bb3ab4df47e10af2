//! The job queue at a glance, per tenant: what `GET /v1/status`, `status` and the queue gauges
//! show.

use diesel::prelude::*;
use serde::Serialize;

use super::jobs::JobStatus;
use super::schema::{jobs, rooms};
use super::{DbConnection, StoreError};
use crate::on_backend;

/// One tenant's queue. Tenants without queued or running jobs, or jobs that ended failed or dead
/// in the window, have no entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantQueue {
    pub tenant_id: String,
    pub queued: i64,
    pub running: i64,
    /// Jobs that ended `failed` (permanent error) in the window.
    pub failed: i64,
    /// Jobs that ended `dead` (attempts spent) in the window.
    pub dead: i64,
    /// When the oldest queued job was queued (unix ms).
    pub oldest_queued_created_at: Option<i64>,
    /// The earliest time a queued job may run (unix ms): in the past, it is overdue by that much.
    pub oldest_queued_run_after: Option<i64>,
}

/// A job that ended `failed` or `dead`, as operators need to see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedJob {
    pub id: i64,
    pub tenant_id: String,
    pub kind: String,
    pub status: JobStatus,
    /// `tenant/kind/slug` of the job's room (its current slug), when the job has one.
    pub room: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// Queued and running jobs per tenant, and those that ended failed or dead since `ended_since_ms`,
/// in one grouped query, ordered by tenant.
pub fn queue_by_tenant(
    conn: &mut DbConnection,
    ended_since_ms: i64,
) -> Result<Vec<TenantQueue>, StoreError> {
    type Row = (String, JobStatus, i64, Option<i64>, Option<i64>);
    let rows: Vec<Row> = on_backend!(conn, c => jobs::table
        .filter(
            jobs::status
                .eq_any([JobStatus::Queued, JobStatus::Running])
                .or(jobs::status.eq_any(JobStatus::ENDED_BADLY).and(jobs::updated_at.ge(ended_since_ms))),
        )
        .group_by((jobs::tenant_id, jobs::status))
        .select((
            jobs::tenant_id,
            jobs::status,
            diesel::dsl::count_star(),
            diesel::dsl::min(jobs::created_at),
            diesel::dsl::min(jobs::run_after),
        ))
        .load(c))?;
    let mut tenants: Vec<TenantQueue> = Vec::new();
    for (tenant_id, status, count, oldest_created, oldest_run_after) in rows {
        let index = match tenants.iter().position(|t| t.tenant_id == tenant_id) {
            Some(index) => index,
            None => {
                tenants.push(TenantQueue {
                    tenant_id,
                    ..TenantQueue::default()
                });
                tenants.len() - 1
            }
        };
        let tenant = &mut tenants[index];
        match status {
            JobStatus::Queued => {
                tenant.queued = count;
                tenant.oldest_queued_created_at = oldest_created;
                tenant.oldest_queued_run_after = oldest_run_after;
            }
            JobStatus::Running => tenant.running = count,
            JobStatus::Failed => tenant.failed = count,
            JobStatus::Dead => tenant.dead = count,
            JobStatus::Succeeded | JobStatus::Cancelled => {}
        }
    }
    tenants.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
    Ok(tenants)
}

/// A tenant's newest jobs that ended failed or dead since `ended_since_ms`, at most `limit`,
/// newest first.
pub fn latest_failed(
    conn: &mut DbConnection,
    tenant_id: &str,
    ended_since_ms: i64,
    limit: i64,
) -> Result<Vec<FailedJob>, StoreError> {
    type Row = (
        i64,
        String,
        String,
        JobStatus,
        i32,
        Option<String>,
        i64,
        Option<(String, String, String)>,
    );
    let rows: Vec<Row> = on_backend!(conn, c => jobs::table
        .left_join(rooms::table)
        .filter(jobs::tenant_id.eq(tenant_id))
        .filter(jobs::status.eq_any(JobStatus::ENDED_BADLY))
        .filter(jobs::updated_at.ge(ended_since_ms))
        .order(jobs::id.desc())
        .limit(limit)
        .select((
            jobs::id,
            jobs::tenant_id,
            jobs::kind,
            jobs::status,
            jobs::attempts,
            jobs::last_error,
            jobs::updated_at,
            (rooms::tenant_id, rooms::kind, rooms::slug).nullable(),
        ))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(
            |(id, tenant_id, kind, status, attempts, last_error, updated_at, room)| FailedJob {
                id,
                tenant_id,
                kind,
                status,
                room: room.map(|(tenant, kind, slug)| format!("{tenant}/{kind}/{slug}")),
                attempts,
                last_error,
                updated_at,
            },
        )
        .collect())
}

/// Per tenant, the scheduled jobs whose time has come by `now_ms` and that wait still: queued with
/// a key for a time later than when they were queued (the lifting of a timed ban or mute), and due.
pub fn scheduled_due_by_tenant(
    conn: &mut DbConnection,
    now_ms: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = on_backend!(conn, c => jobs::table
        .filter(jobs::status.eq(JobStatus::Queued))
        .filter(jobs::key.is_not_null())
        .filter(jobs::run_after.gt(jobs::created_at))
        .filter(jobs::run_after.le(now_ms))
        .group_by(jobs::tenant_id)
        .select((jobs::tenant_id, diesel::dsl::count_star()))
        .load(c))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Database, DatabaseUrl};
    use crate::store::Store;
    use crate::store::jobs::{self, NewJob, Outcome};
    use crate::store::rooms::{self, Declaration};

    fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}/status.db", dir.path().display());
        let store = Store::new(&Database {
            url: DatabaseUrl::parse(&url).expect("a valid URL"),
            migrate_on_start: true,
            max_connections: 2,
            acquire_timeout: std::time::Duration::from_secs(5),
        });
        store.migrate().expect("migrations apply");
        store
    }

    fn job(tenant: &str, room_key: Option<i64>) -> NewJob {
        NewJob {
            tenant_id: tenant.into(),
            room_key,
            kind: "ensure_room".into(),
            payload: serde_json::json!({}),
        }
    }

    #[test]
    fn queues_are_counted_per_tenant_and_failed_jobs_name_their_room() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store(&dir);
        let conn = &mut *store.connection().expect("a connection");
        let declaration = Declaration {
            tenant_id: "tenantA".into(),
            homeserver: "default".into(),
            kind: crate::rooms::RoomKind::Event,
            slug: "party".into(),
            name: "Party Chat".into(),
            topic: None,
            visibility: crate::rooms::Visibility::Private,
        };
        let room = rooms::declare(conn, &declaration, 0).expect("declared").0;
        let doomed = jobs::enqueue(conn, &job("tenantA", Some(room.id)), 1_000).expect("queued");
        jobs::enqueue(conn, &job("tenantA", None), 2_000).expect("queued");
        jobs::enqueue(conn, &job("tenantB", None), 3_000).expect("queued");
        let limits = jobs::ClaimLimits {
            paused: &Default::default(),
            total: 1,
            per_tenant: 1,
            running: &Default::default(),
        };
        let claimed = jobs::claim(conn, "w", 5_000, 60_000, &limits).expect("claimed");
        assert_eq!(claimed[0].id, doomed.id);
        let dead = Outcome::Dead {
            error: "gave up after 1 attempts: HTTP 500".into(),
        };
        assert!(jobs::finish(conn, doomed.id, "w", &dead, 6_000).expect("finished"));

        let queues = queue_by_tenant(conn, 0).expect("summary");
        assert_eq!(
            queues,
            vec![
                TenantQueue {
                    tenant_id: "tenantA".into(),
                    queued: 1,
                    running: 0,
                    failed: 0,
                    dead: 1,
                    oldest_queued_created_at: Some(2_000),
                    oldest_queued_run_after: Some(2_000),
                },
                TenantQueue {
                    tenant_id: "tenantB".into(),
                    queued: 1,
                    running: 0,
                    failed: 0,
                    dead: 0,
                    oldest_queued_created_at: Some(3_000),
                    oldest_queued_run_after: Some(3_000),
                },
            ]
        );
        assert!(
            queue_by_tenant(conn, 6_001).expect("summary")[0].dead == 0,
            "a job that ended before the window is not counted"
        );
        let dead = latest_failed(conn, "tenantA", 0, 20).expect("dead jobs");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].status, jobs::JobStatus::Dead);
        assert!(
            latest_failed(conn, "tenantA", 6_001, 20)
                .expect("none")
                .is_empty()
        );
        assert_eq!(dead[0].room.as_deref(), Some("tenantA/event/party"));
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some("gave up after 1 attempts: HTTP 500")
        );
        assert!(
            latest_failed(conn, "tenantB", 0, 20)
                .expect("none")
                .is_empty()
        );
    }
}
