//! The moderation audit log: one entry per moderation call, appended in the same database
//! transaction as the declaration it records, read oldest first.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::moderation_log;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// An entry as stored and as `GET moderation` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = moderation_log)]
pub struct Entry {
    pub id: i64,
    pub tenant_id: String,
    /// Unix ms of the call.
    pub at: i64,
    /// `ban`, `unban`, `mute`, `unmute`, `redact`, `move` (a user move: `user_id` is the old id,
    /// `reason` names the new one), `staff` (`reason`: the role), `unstaff` or `refuse` (a rule
    /// before send refused; no job).
    pub action: String,
    pub user_id: String,
    /// `None` for a tenant-wide call.
    pub room_kind: Option<String>,
    pub room_slug: Option<String>,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub expires_at: Option<i64>,
    pub job_id: Option<i64>,
}

/// An entry to append.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    pub tenant_id: String,
    pub action: String,
    pub user_id: String,
    /// `(kind, slug)` of the room; `None` for a tenant-wide call.
    pub room: Option<(String, String)>,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub expires_at: Option<i64>,
    pub job_id: Option<i64>,
}

pub fn append(conn: &mut DbConnection, entry: &NewEntry, now_ms: i64) -> Result<Entry, StoreError> {
    let (room_kind, room_slug) = match &entry.room {
        Some((kind, slug)) => (Some(kind.as_str()), Some(slug.as_str())),
        None => (None, None),
    };
    let appended = on_backend!(conn, c => diesel::insert_into(moderation_log::table)
        .values((
            moderation_log::tenant_id.eq(&entry.tenant_id),
            moderation_log::at.eq(now_ms),
            moderation_log::action.eq(&entry.action),
            moderation_log::user_id.eq(&entry.user_id),
            moderation_log::room_kind.eq(room_kind),
            moderation_log::room_slug.eq(room_slug),
            moderation_log::reason.eq(&entry.reason),
            moderation_log::actor.eq(&entry.actor),
            moderation_log::expires_at.eq(entry.expires_at),
            moderation_log::job_id.eq(entry.job_id),
        ))
        .returning(Entry::as_returning())
        .get_result(c))?;
    Ok(appended)
}

/// Queues `job` and writes `entry` naming it, in the caller's transaction: an action the platform
/// asked for is never audited without its job, nor queued without its entry.
pub fn enqueue_with_entry(
    conn: &mut DbConnection,
    job: &super::jobs::NewJob,
    entry: NewEntry,
    now_ms: i64,
) -> Result<super::jobs::Job, StoreError> {
    let job = super::jobs::enqueue(conn, job, now_ms)?;
    let entry = NewEntry {
        job_id: Some(job.id),
        ..entry
    };
    append(conn, &entry, now_ms)?;
    Ok(job)
}

/// The tenant's entries after id `after`, oldest first, optionally about one user; `tenant_id`
/// `None` reads every tenant's (the operators' command).
pub fn list(
    conn: &mut DbConnection,
    tenant_id: Option<&str>,
    user_id: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>, StoreError> {
    let entries = on_backend!(conn, c => {
        let mut query = moderation_log::table
            .filter(moderation_log::id.gt(after))
            .order(moderation_log::id)
            .limit(limit)
            .select(Entry::as_select())
            .into_boxed();
        if let Some(tenant_id) = tenant_id {
            query = query.filter(moderation_log::tenant_id.eq(tenant_id.to_owned()));
        }
        if let Some(user_id) = user_id {
            query = query.filter(moderation_log::user_id.eq(user_id.to_owned()));
        }
        query.load(c)
    })?;
    Ok(entries)
}

/// The entries of the calls job `job_id` carries out, oldest first.
pub fn for_job(conn: &mut DbConnection, job_id: i64) -> Result<Vec<Entry>, StoreError> {
    let entries = on_backend!(conn, c => moderation_log::table
        .filter(moderation_log::job_id.eq(job_id))
        .order(moderation_log::id)
        .select(Entry::as_select())
        .load(c))?;
    Ok(entries)
}

/// The tenant's newest entry about `user_id` with this `action` and `reason`: how a repeated call
/// finds the one it repeats.
pub fn latest(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
    action: &str,
    reason: &str,
) -> Result<Option<Entry>, StoreError> {
    let entry = on_backend!(conn, c => moderation_log::table
        .filter(moderation_log::tenant_id.eq(tenant_id))
        .filter(moderation_log::user_id.eq(user_id))
        .filter(moderation_log::action.eq(action))
        .filter(moderation_log::reason.eq(reason))
        .order(moderation_log::id.desc())
        .select(Entry::as_select())
        .first(c)
        .optional())?;
    Ok(entry)
}
