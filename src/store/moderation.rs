//! Bans and mutes the platform declared, per room or tenant-wide (`room_key` 0). A lifted row
//! stays, `lifted_at` set, until a room's `ensure_room` has undone it there (unbanned, the level
//! restored); then it goes (see [`forget_lifted`]).

use diesel::prelude::*;
use serde::Serialize;

use super::jobs::JobStatus;
use super::schema::{jobs, moderation};
use super::{DbConnection, StoreError};
use crate::{on_backend, write_transaction};

/// A ban or a mute; stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ban,
    Mute,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ban => "ban",
            Self::Mute => "mute",
        }
    }

    /// The audit log's action for declaring (`true`) or lifting it.
    pub fn action(self, declared: bool) -> &'static str {
        match (self, declared) {
            (Self::Ban, true) => "ban",
            (Self::Ban, false) => "unban",
            (Self::Mute, true) => "mute",
            (Self::Mute, false) => "unmute",
        }
    }
}

impl TryFrom<String> for Kind {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "ban" => Ok(Self::Ban),
            "mute" => Ok(Self::Mute),
            _ => Err(format!("unknown moderation kind {text:?} in the database")),
        }
    }
}

/// Where a ban or mute holds: one room, or every managed room of the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "scope", content = "room_key")]
pub enum Scope {
    Room(i64),
    Tenant,
}

impl Scope {
    /// The stored `room_key` (0: tenant-wide).
    pub fn room_key(self) -> i64 {
        match self {
            Self::Room(key) => key,
            Self::Tenant => 0,
        }
    }

    fn from_room_key(key: i64) -> Self {
        if key == 0 {
            Self::Tenant
        } else {
            Self::Room(key)
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = moderation)]
struct Row {
    id: i64,
    tenant_id: String,
    room_key: i64,
    user_id: String,
    #[diesel(deserialize_as = String)]
    kind: Kind,
    reason: Option<String>,
    expires_at: Option<i64>,
    actor: Option<String>,
    lifted_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// A declared ban or mute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moderation {
    pub id: i64,
    pub tenant_id: String,
    pub scope: Scope,
    pub user_id: String,
    pub kind: Kind,
    pub reason: Option<String>,
    /// Unix ms when it lifts by itself; `None`: until the platform lifts it.
    pub expires_at: Option<i64>,
    pub actor: Option<String>,
    /// Unix ms it was lifted; `None`: in force.
    pub lifted_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Moderation {
    pub fn in_force(&self) -> bool {
        self.lifted_at.is_none()
    }
}

impl From<Row> for Moderation {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            tenant_id: row.tenant_id,
            scope: Scope::from_room_key(row.room_key),
            user_id: row.user_id,
            kind: row.kind,
            reason: row.reason,
            expires_at: row.expires_at,
            actor: row.actor,
            lifted_at: row.lifted_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A ban or mute to declare.
#[derive(Debug, Clone)]
pub struct Declared<'a> {
    pub tenant_id: &'a str,
    pub scope: Scope,
    pub user_id: &'a str,
    pub kind: Kind,
    pub reason: Option<&'a str>,
    pub expires_at: Option<i64>,
    pub actor: Option<&'a str>,
}

/// Declares a ban or mute (again: a lifted one is in force again, with the new reason and
/// expiry). Returns whether anything that `ensure_room` acts on changed (it was not in force).
pub fn declare(conn: &mut DbConnection, d: &Declared<'_>, now_ms: i64) -> Result<bool, StoreError> {
    let changed = write_transaction!(conn, c => {
        let existing: Option<Option<i64>> = moderation::table
            .filter(moderation::tenant_id.eq(d.tenant_id))
            .filter(moderation::room_key.eq(d.scope.room_key()))
            .filter(moderation::user_id.eq(d.user_id))
            .filter(moderation::kind.eq(d.kind.as_str()))
            .select(moderation::lifted_at)
            .first(c)
            .optional()?;
        let fields = (
            moderation::reason.eq(d.reason),
            moderation::expires_at.eq(d.expires_at),
            moderation::actor.eq(d.actor),
            moderation::lifted_at.eq(None::<i64>),
            moderation::updated_at.eq(now_ms),
        );
        match existing {
            Some(lifted_at) => {
                diesel::update(
                    moderation::table
                        .filter(moderation::tenant_id.eq(d.tenant_id))
                        .filter(moderation::room_key.eq(d.scope.room_key()))
                        .filter(moderation::user_id.eq(d.user_id))
                        .filter(moderation::kind.eq(d.kind.as_str())),
                )
                .set(fields)
                .execute(c)?;
                Ok::<_, diesel::result::Error>(lifted_at.is_some())
            }
            None => {
                diesel::insert_into(moderation::table)
                    .values((
                        moderation::tenant_id.eq(d.tenant_id),
                        moderation::room_key.eq(d.scope.room_key()),
                        moderation::user_id.eq(d.user_id),
                        moderation::kind.eq(d.kind.as_str()),
                        fields,
                        moderation::created_at.eq(now_ms),
                    ))
                    .execute(c)?;
                Ok(true)
            }
        }
    })?;
    Ok(changed)
}

/// Lifts the ban or mute (the row stays until the rooms are converged). Returns whether it was
/// in force.
pub fn lift(
    conn: &mut DbConnection,
    tenant_id: &str,
    scope: Scope,
    user_id: &str,
    kind: Kind,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let lifted = on_backend!(conn, c => diesel::update(
        moderation::table
            .filter(moderation::tenant_id.eq(tenant_id))
            .filter(moderation::room_key.eq(scope.room_key()))
            .filter(moderation::user_id.eq(user_id))
            .filter(moderation::kind.eq(kind.as_str()))
            .filter(moderation::lifted_at.is_null()),
    )
    .set((moderation::lifted_at.eq(now_ms), moderation::updated_at.eq(now_ms)))
    .execute(c))?;
    Ok(lifted == 1)
}

/// The ban or mute of `user_id` in `scope`, lifted or not.
pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    scope: Scope,
    user_id: &str,
    kind: Kind,
) -> Result<Option<Moderation>, StoreError> {
    let row: Option<Row> = on_backend!(conn, c => moderation::table
        .filter(moderation::tenant_id.eq(tenant_id))
        .filter(moderation::room_key.eq(scope.room_key()))
        .filter(moderation::user_id.eq(user_id))
        .filter(moderation::kind.eq(kind.as_str()))
        .select(Row::as_select())
        .first(c)
        .optional())?;
    Ok(row.map(Moderation::from))
}

/// What holds in room `room_key`: its own bans and mutes and the tenant-wide ones, lifted rows
/// included (they tell `ensure_room` what to undo).
pub fn for_room(
    conn: &mut DbConnection,
    tenant_id: &str,
    room_key: i64,
) -> Result<Vec<Moderation>, StoreError> {
    let rows: Vec<Row> = on_backend!(conn, c => moderation::table
        .filter(moderation::tenant_id.eq(tenant_id))
        .filter(moderation::room_key.eq_any([0, room_key]))
        .order((moderation::user_id, moderation::kind, moderation::room_key))
        .select(Row::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(Moderation::from).collect())
}

/// After room `room_key` converged to `read` (what its `ensure_room` read): the room's own lifted
/// rows go, unless lifted again since. A tenant-wide lifted row goes only when no other job of
/// the tenant (but `job_id`) of `converging` kinds is queued or running, so every room has seen
/// it; otherwise the last of them removes it.
pub fn forget_lifted(
    conn: &mut DbConnection,
    room_key: i64,
    read: &[Moderation],
    job_id: i64,
    converging: &[&str],
) -> Result<(), StoreError> {
    let lifted: Vec<(&Moderation, i64)> = read
        .iter()
        .filter_map(|m| Some((m, m.lifted_at?)))
        .collect();
    let tenant_wide = lifted.iter().find(|(m, _)| m.scope == Scope::Tenant);
    let others = match tenant_wide {
        Some((row, _)) => others_converging(conn, &row.tenant_id, job_id, converging)?,
        None => false,
    };
    write_transaction!(conn, c => {
        for (row, lifted_at) in lifted {
            let seen_everywhere = row.scope == Scope::Tenant && !others;
            if !seen_everywhere && row.scope != Scope::Room(room_key) {
                continue;
            }
            diesel::delete(
                moderation::table
                    .filter(moderation::id.eq(row.id))
                    .filter(moderation::lifted_at.eq(lifted_at)),
            )
            .execute(c)?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// Whether a job of the tenant other than `job_id`, of `converging` kinds, is queued or running:
/// then not every room has seen a tenant-wide change yet, and the last of them forgets it.
pub fn others_converging(
    conn: &mut DbConnection,
    tenant_id: &str,
    job_id: i64,
    converging: &[&str],
) -> Result<bool, StoreError> {
    let others: i64 = on_backend!(conn, c => jobs::table
        .filter(jobs::tenant_id.eq(tenant_id))
        .filter(jobs::kind.eq_any(converging))
        .filter(jobs::status.eq_any([JobStatus::Queued, JobStatus::Running]))
        .filter(jobs::id.ne(job_id))
        .count()
        .get_result(c))?;
    Ok(others > 0)
}

/// The tenant's live rooms with keys above `after`, oldest first, at most `limit` (the fan-out's
/// pages).
pub fn live_room_keys(
    conn: &mut DbConnection,
    tenant_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    use super::rooms::RoomStatus;
    use super::schema::rooms;
    let keys = on_backend!(conn, c => rooms::table
        .filter(rooms::tenant_id.eq(tenant_id))
        .filter(rooms::status.ne(RoomStatus::Deleted.as_str()))
        .filter(rooms::id.gt(after))
        .order(rooms::id)
        .limit(limit)
        .select(rooms::id)
        .load(c))?;
    Ok(keys)
}

/// The bans and mutes naming `user_id` that hold at `now_ms` in the tenant (not lifted, not past
/// their expiry): tenant-wide ones and those of the tenant's live rooms, oldest first.
pub fn in_force_for_user(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
    now_ms: i64,
) -> Result<Vec<Moderation>, StoreError> {
    use super::rooms::RoomStatus;
    use super::schema::rooms;
    let rows: Vec<Row> = on_backend!(conn, c => moderation::table
        .filter(moderation::tenant_id.eq(tenant_id))
        .filter(moderation::user_id.eq(user_id))
        .filter(moderation::lifted_at.is_null())
        .filter(moderation::expires_at.is_null().or(moderation::expires_at.gt(now_ms)))
        .filter(
            moderation::room_key.eq(0).or(moderation::room_key.eq_any(
                rooms::table
                    .filter(rooms::tenant_id.eq(tenant_id))
                    .filter(rooms::status.ne(RoomStatus::Deleted.as_str()))
                    .select(rooms::id),
            )),
        )
        .order(moderation::id)
        .select(Row::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(Moderation::from).collect())
}

/// Which of rooms `keys` are live rooms of the tenant, in key order.
pub fn live_among(
    conn: &mut DbConnection,
    tenant_id: &str,
    keys: &[i64],
) -> Result<Vec<i64>, StoreError> {
    use super::rooms::RoomStatus;
    use super::schema::rooms;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let live = on_backend!(conn, c => rooms::table
        .filter(rooms::tenant_id.eq(tenant_id))
        .filter(rooms::status.ne(RoomStatus::Deleted.as_str()))
        .filter(rooms::id.eq_any(keys))
        .order(rooms::id)
        .select(rooms::id)
        .load(c))?;
    Ok(live)
}
