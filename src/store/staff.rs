//! Tenant staff (DESIGN §7.3 "Across the tenant"): users the platform gave a staff role, whose
//! level every managed room of the tenant carries. A removed row stays, `removed_at` set, until
//! every room's `ensure_room` has dropped the entry (see [`forget_removed`]), as lifted tenant-wide
//! bans and mutes do.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::tenant_staff;
use super::{DbConnection, StoreError, moderation};
use crate::{on_backend, write_transaction};

/// One staff row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = tenant_staff)]
pub struct Staff {
    pub tenant_id: String,
    pub user_id: String,
    pub role: String,
    pub actor: Option<String>,
    /// Unix ms the platform removed them; `None`: staff.
    pub removed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Staff {
    pub fn in_force(&self) -> bool {
        self.removed_at.is_none()
    }
}

/// Makes `user_id` staff of the tenant with `role` (again, when removed). Returns whether the
/// rooms have something to change: they were not staff, or had another role.
pub fn put(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
    role: &str,
    actor: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = write_transaction!(conn, c => {
        let existing: Option<(String, Option<i64>)> = tenant_staff::table
            .filter(tenant_staff::tenant_id.eq(tenant_id))
            .filter(tenant_staff::user_id.eq(user_id))
            .select((tenant_staff::role, tenant_staff::removed_at))
            .first(c)
            .optional()?;
        let fields = (
            tenant_staff::role.eq(role),
            tenant_staff::actor.eq(actor),
            tenant_staff::removed_at.eq(None::<i64>),
            tenant_staff::updated_at.eq(now_ms),
        );
        match existing {
            Some((old_role, removed_at)) => {
                diesel::update(
                    tenant_staff::table
                        .filter(tenant_staff::tenant_id.eq(tenant_id))
                        .filter(tenant_staff::user_id.eq(user_id)),
                )
                .set(fields)
                .execute(c)?;
                Ok::<_, diesel::result::Error>(old_role != role || removed_at.is_some())
            }
            None => {
                diesel::insert_into(tenant_staff::table)
                    .values((
                        tenant_staff::tenant_id.eq(tenant_id),
                        tenant_staff::user_id.eq(user_id),
                        fields,
                        tenant_staff::created_at.eq(now_ms),
                    ))
                    .execute(c)?;
                Ok(true)
            }
        }
    })?;
    Ok(changed)
}

/// Removes `user_id` from the tenant's staff (the row stays until the rooms dropped the entry).
/// Returns whether they were staff.
pub fn remove(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
    actor: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let removed = on_backend!(conn, c => diesel::update(
        tenant_staff::table
            .filter(tenant_staff::tenant_id.eq(tenant_id))
            .filter(tenant_staff::user_id.eq(user_id))
            .filter(tenant_staff::removed_at.is_null()),
    )
    .set((
        tenant_staff::removed_at.eq(now_ms),
        tenant_staff::actor.eq(actor),
        tenant_staff::updated_at.eq(now_ms),
    ))
    .execute(c))?;
    Ok(removed == 1)
}

/// The tenant's staff, by user id; `removed` also lists the removed rows still to be dropped from
/// the rooms (what `ensure_room` reads).
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    removed: bool,
) -> Result<Vec<Staff>, StoreError> {
    let rows = on_backend!(conn, c => {
        let mut query = tenant_staff::table
            .filter(tenant_staff::tenant_id.eq(tenant_id))
            .order(tenant_staff::user_id)
            .select(Staff::as_select())
            .into_boxed();
        if !removed {
            query = query.filter(tenant_staff::removed_at.is_null());
        }
        query.load(c)
    })?;
    Ok(rows)
}

/// One staff member of the tenant (removed or not).
pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<Option<Staff>, StoreError> {
    let row = on_backend!(conn, c => tenant_staff::table
        .filter(tenant_staff::tenant_id.eq(tenant_id))
        .filter(tenant_staff::user_id.eq(user_id))
        .select(Staff::as_select())
        .first(c)
        .optional())?;
    Ok(row)
}

/// After a room of the tenant converged to `read` (what its `ensure_room` read): the removed rows
/// go when no other converging job of the tenant (but `job_id`) is queued or running, so every
/// room has dropped the entry; otherwise the last of them removes it. A row removed again since
/// (its `removed_at` changed) or made staff again stays.
pub fn forget_removed(
    conn: &mut DbConnection,
    read: &[Staff],
    job_id: i64,
    converging: &[&str],
) -> Result<(), StoreError> {
    let removed: Vec<(&Staff, i64)> = read
        .iter()
        .filter_map(|s| Some((s, s.removed_at?)))
        .collect();
    let Some((first, _)) = removed.first() else {
        return Ok(());
    };
    if moderation::others_converging(conn, &first.tenant_id, job_id, converging)? {
        return Ok(());
    }
    for (row, removed_at) in removed {
        on_backend!(conn, c => diesel::delete(
            tenant_staff::table
                .filter(tenant_staff::tenant_id.eq(&row.tenant_id))
                .filter(tenant_staff::user_id.eq(&row.user_id))
                .filter(tenant_staff::removed_at.eq(removed_at)),
        )
        .execute(c))?;
    }
    Ok(())
}
