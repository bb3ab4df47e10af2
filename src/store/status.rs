//! The job queue at a glance, per tenant: what `GET /v1/status`, `status` and the queue gauges
//! show.

use diesel::prelude::*;
use serde::Serialize;

use super::jobs::{DEAD, QUEUED, RUNNING};
use super::schema::{jobs, rooms};
use super::{DbConnection, StoreError};
use crate::on_backend;

/// One tenant's queue. Tenants without queued, running or dead jobs have no entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantQueue {
    pub tenant_id: String,
    pub queued: i64,
    pub running: i64,
    pub dead: i64,
    /// When the oldest queued job was queued (unix ms).
    pub oldest_queued_created_at: Option<i64>,
    /// The earliest time a queued job may run (unix ms): in the past, it is overdue by that much.
    pub oldest_queued_run_after: Option<i64>,
}

/// A dead job, as operators need to see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadJob {
    pub id: i64,
    pub tenant_id: String,
    pub kind: String,
    /// `tenant/kind/slug` of the job's room (its current slug), when the job has one.
    pub room: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// Queued, running and dead jobs per tenant, in one grouped query, ordered by tenant.
pub fn queue_by_tenant(conn: &mut DbConnection) -> Result<Vec<TenantQueue>, StoreError> {
    type Row = (String, String, i64, Option<i64>, Option<i64>);
    let rows: Vec<Row> = on_backend!(conn, c => jobs::table
        .filter(jobs::status.eq_any([QUEUED, RUNNING, DEAD]))
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
        match status.as_str() {
            QUEUED => {
                tenant.queued = count;
                tenant.oldest_queued_created_at = oldest_created;
                tenant.oldest_queued_run_after = oldest_run_after;
            }
            RUNNING => tenant.running = count,
            _ => tenant.dead = count,
        }
    }
    tenants.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
    Ok(tenants)
}

/// A tenant's newest dead jobs, at most `limit`, newest first.
pub fn latest_dead(
    conn: &mut DbConnection,
    tenant_id: &str,
    limit: i64,
) -> Result<Vec<DeadJob>, StoreError> {
    type Row = (
        i64,
        String,
        String,
        i32,
        Option<String>,
        i64,
        Option<(String, String, String)>,
    );
    let rows: Vec<Row> = on_backend!(conn, c => jobs::table
        .left_join(rooms::table)
        .filter(jobs::tenant_id.eq(tenant_id))
        .filter(jobs::status.eq(DEAD))
        .order(jobs::id.desc())
        .limit(limit)
        .select((
            jobs::id,
            jobs::tenant_id,
            jobs::kind,
            jobs::attempts,
            jobs::last_error,
            jobs::updated_at,
            (rooms::tenant_id, rooms::kind, rooms::slug).nullable(),
        ))
        .load(c))?;
    Ok(rows
        .into_iter()
        .map(
            |(id, tenant_id, kind, attempts, last_error, updated_at, room)| DeadJob {
                id,
                tenant_id,
                kind,
                room: room.map(|(tenant, kind, slug)| format!("{tenant}/{kind}/{slug}")),
                attempts,
                last_error,
                updated_at,
            },
        )
        .collect())
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
    fn queues_are_counted_per_tenant_and_dead_jobs_name_their_room() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store(&dir);
        let conn = &mut *store.connection().expect("a connection");
        let declaration = Declaration {
            tenant_id: "tenantA".into(),
            kind: "event".into(),
            slug: "party".into(),
            name: "Party Chat".into(),
            topic: None,
            visibility: "private".into(),
        };
        let room = rooms::declare(conn, &declaration, 0).expect("declared").0;
        let doomed = jobs::enqueue(conn, &job("tenantA", Some(room.id)), 1_000).expect("queued");
        jobs::enqueue(conn, &job("tenantA", None), 2_000).expect("queued");
        jobs::enqueue(conn, &job("tenantB", None), 3_000).expect("queued");
        let limits = jobs::ClaimLimits {
            total: 1,
            tenant_room: &|_| 1,
        };
        let claimed = jobs::claim(conn, "w", 5_000, 60_000, &limits).expect("claimed");
        assert_eq!(claimed[0].id, doomed.id);
        let dead = Outcome::Dead {
            error: "gave up after 1 attempts: HTTP 500".into(),
        };
        assert!(jobs::finish(conn, doomed.id, "w", &dead, 6_000).expect("finished"));

        let queues = queue_by_tenant(conn).expect("summary");
        assert_eq!(
            queues,
            vec![
                TenantQueue {
                    tenant_id: "tenantA".into(),
                    queued: 1,
                    running: 0,
                    dead: 1,
                    oldest_queued_created_at: Some(2_000),
                    oldest_queued_run_after: Some(2_000),
                },
                TenantQueue {
                    tenant_id: "tenantB".into(),
                    queued: 1,
                    running: 0,
                    dead: 0,
                    oldest_queued_created_at: Some(3_000),
                    oldest_queued_run_after: Some(3_000),
                },
            ]
        );
        let dead = latest_dead(conn, "tenantA", 20).expect("dead jobs");
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].room.as_deref(), Some("tenantA/event/party"));
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some("gave up after 1 attempts: HTTP 500")
        );
        assert!(latest_dead(conn, "tenantB", 20).expect("none").is_empty());
    }
}
