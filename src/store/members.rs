//! Declared members of a room and the power-level entries the daemon owns for them (the
//! `room_members` table).

use diesel::prelude::*;
use serde::Serialize;

use super::rooms::within_write;
use super::schema::room_members;
use super::{DbConnection, StoreError};
use crate::{on_backend, write_transaction};

/// A declared member, and the power-level entry the daemon owns for them.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = room_members)]
pub struct Member {
    pub room_key: i64,
    pub user_id: String,
    /// `None`: removed, still to be kicked.
    pub role: Option<String>,
    pub applied_level: Option<i32>,
    /// The platform's reason for a removal.
    pub reason: Option<String>,
    pub updated_at: i64,
}

pub fn members(conn: &mut DbConnection, room_key: i64) -> Result<Vec<Member>, StoreError> {
    let members = on_backend!(conn, c => room_members::table
        .filter(room_members::room_key.eq(room_key))
        .order(room_members::user_id)
        .select(Member::as_select())
        .load(c))?;
    Ok(members)
}

/// Declares exactly these `(user_id, role)` members: new ones are added, changed roles updated,
/// and members not listed are marked removed (role `None`). Returns whether anything changed. One
/// read, and one multi-row upsert when something changed.
pub fn declare_members(
    conn: &mut DbConnection,
    room_key: i64,
    declared: &[(String, String)],
    now_ms: i64,
) -> Result<bool, StoreError> {
    within_write(conn, |conn| {
        let current: Vec<(String, Option<String>)> = on_backend!(&mut *conn, c => room_members::table
            .filter(room_members::room_key.eq(room_key))
            .select((room_members::user_id, room_members::role))
            .load(c))?;
        let added_or_changed = declared.iter().filter(|(user_id, role)| {
            !current
                .iter()
                .any(|(u, r)| u == user_id && r.as_deref() == Some(role.as_str()))
        });
        let removed = current.iter().filter(|(user_id, role)| {
            role.is_some() && !declared.iter().any(|(u, _)| u == user_id)
        });
        let rows: Vec<(&str, Option<&str>)> = added_or_changed
            .map(|(user_id, role)| (user_id.as_str(), Some(role.as_str())))
            .chain(removed.map(|(user_id, _)| (user_id.as_str(), None)))
            .collect();
        upsert_members(conn, room_key, &rows, now_ms)?;
        Ok(!rows.is_empty())
    })
}

/// Declares the members of a room [`declare`] has just made ([`Declared::New`]): it has none yet,
/// so there is nothing to read first. Returns whether any were declared.
pub fn declare_members_of_new_room(
    conn: &mut DbConnection,
    room_key: i64,
    declared: &[(String, String)],
    now_ms: i64,
) -> Result<bool, StoreError> {
    let rows: Vec<(&str, Option<&str>)> = declared
        .iter()
        .map(|(user_id, role)| (user_id.as_str(), Some(role.as_str())))
        .collect();
    upsert_members(conn, room_key, &rows, now_ms)?;
    Ok(!rows.is_empty())
}

/// Sets these `(user_id, role)` members' roles in one statement, adding the ones not yet stored.
fn upsert_members(
    conn: &mut DbConnection,
    room_key: i64,
    rows: &[(&str, Option<&str>)],
    now_ms: i64,
) -> Result<(), StoreError> {
    use diesel::upsert::excluded;
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<_> = rows
        .iter()
        .map(|(user_id, role)| {
            (
                room_members::room_key.eq(room_key),
                room_members::user_id.eq(*user_id),
                room_members::role.eq(*role),
                room_members::updated_at.eq(now_ms),
            )
        })
        .collect();
    on_backend!(conn, c => diesel::insert_into(room_members::table)
        .values(&values)
        .on_conflict((room_members::room_key, room_members::user_id))
        .do_update()
        .set((
            room_members::role.eq(excluded(room_members::role)),
            room_members::updated_at.eq(excluded(room_members::updated_at)),
        ))
        .execute(c))?;
    Ok(())
}

/// Declares one member with `role`, or — with `None` — marks them removed, to be kicked with
/// `reason`. Returns whether anything changed. A removed user the platform never declared is
/// recorded too, so an invite or membership made by hand is revoked as the platform asked.
pub fn set_member(
    conn: &mut DbConnection,
    room_key: i64,
    user_id: &str,
    role: Option<&str>,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = write_transaction!(conn, c => {
        let current: Option<Option<String>> = room_members::table
            .find((room_key, user_id))
            .select(room_members::role)
            .first(c)
            .optional()?;
        match current {
            Some(existing) if existing.as_deref() == role => Ok(false),
            Some(_) => {
                diesel::update(room_members::table.find((room_key, user_id)))
                    .set((room_members::role.eq(role), room_members::reason.eq(reason), room_members::updated_at.eq(now_ms)))
                    .execute(c)?;
                Ok(true)
            }
            None => {
                diesel::insert_into(room_members::table)
                    .values((
                        room_members::room_key.eq(room_key),
                        room_members::user_id.eq(user_id),
                        room_members::role.eq(role),
                        room_members::reason.eq(reason),
                        room_members::updated_at.eq(now_ms),
                    ))
                    .execute(c)?;
                Ok::<_, diesel::result::Error>(true)
            }
        }
    })?;
    Ok(changed)
}

/// Records what the daemon wrote into `m.room.power_levels` for these users (`None`: it removed
/// their entry), and forgets removed members that are gone from the room.
pub fn record_applied_levels(
    conn: &mut DbConnection,
    room_key: i64,
    applied: &[(String, Option<i32>)],
    now_ms: i64,
) -> Result<(), StoreError> {
    write_transaction!(conn, c => {
        for (user_id, level) in applied {
            diesel::update(room_members::table.find((room_key, user_id)))
                .set((room_members::applied_level.eq(level), room_members::updated_at.eq(now_ms)))
                .execute(c)?;
        }
        diesel::delete(
            room_members::table
                .filter(room_members::room_key.eq(room_key))
                .filter(room_members::role.is_null())
                .filter(room_members::applied_level.is_null()),
        )
        .execute(c)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// Forgets the power levels applied in the previous room (the room changed under the declaration).
pub fn forget_applied_levels(
    conn: &mut DbConnection,
    room_key: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::update(room_members::table.filter(room_members::room_key.eq(room_key)))
        .set((room_members::applied_level.eq(None::<i32>), room_members::updated_at.eq(now_ms)))
        .execute(c))?;
    Ok(())
}

/// Whether the platform declares `user_id` a member of room `room_key` (not removed).
pub fn is_declared(
    conn: &mut DbConnection,
    room_key: i64,
    user_id: &str,
) -> Result<bool, StoreError> {
    let role: Option<Option<String>> = on_backend!(conn, c => room_members::table
        .find((room_key, user_id))
        .select(room_members::role)
        .first(c)
        .optional())?;
    Ok(role.flatten().is_some())
}

/// A room of the tenant where a user is declared a member, as a user move finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredIn {
    pub room_key: i64,
    pub kind: String,
    pub slug: String,
    pub role: String,
}

/// The tenant's live rooms that declare `user_id` a member (not removed), oldest room first.
pub fn declared_in_tenant(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<Vec<DeclaredIn>, StoreError> {
    use super::rooms::RoomStatus;
    use super::schema::rooms;
    let rows: Vec<(i64, String, String, Option<String>)> = on_backend!(conn, c => room_members::table
        .inner_join(rooms::table)
        .filter(rooms::tenant_id.eq(tenant_id))
        .filter(rooms::status.ne(RoomStatus::Deleted.as_str()))
        .filter(room_members::user_id.eq(user_id))
        .filter(room_members::role.is_not_null())
        .order(rooms::id)
        .select((rooms::id, rooms::kind, rooms::slug, room_members::role))
        .load(c))?;
    Ok(rows
        .into_iter()
        .filter_map(|(room_key, kind, slug, role)| {
            Some(DeclaredIn {
                room_key,
                kind,
                slug,
                role: role?,
            })
        })
        .collect())
}

/// `user_id`'s role in each of rooms `room_keys` that declares them a member.
pub fn roles_in(
    conn: &mut DbConnection,
    room_keys: &[i64],
    user_id: &str,
) -> Result<Vec<(i64, String)>, StoreError> {
    if room_keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, Option<String>)> = on_backend!(conn, c => room_members::table
        .filter(room_members::room_key.eq_any(room_keys))
        .filter(room_members::user_id.eq(user_id))
        .filter(room_members::role.is_not_null())
        .select((room_members::room_key, room_members::role))
        .load(c))?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, role)| Some((key, role?)))
        .collect())
}

/// In room `room_key`, `to` takes `from`'s place as a member with `role`: `from` is marked
/// removed, to be kicked with `reason` (keeping the level the daemon applied, so that its entry is
/// dropped), and `to` is declared with `role` (a removal pending for `to` is undone).
pub fn hand_over(
    conn: &mut DbConnection,
    room_key: i64,
    from: &str,
    to: &str,
    role: &str,
    reason: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    write_transaction!(conn, c => {
        diesel::update(room_members::table.find((room_key, from)))
            .set((
                room_members::role.eq(None::<&str>),
                room_members::reason.eq(reason),
                room_members::updated_at.eq(now_ms),
            ))
            .execute(c)?;
        diesel::insert_into(room_members::table)
            .values((
                room_members::room_key.eq(room_key),
                room_members::user_id.eq(to),
                room_members::role.eq(role),
                room_members::reason.eq(None::<&str>),
                room_members::updated_at.eq(now_ms),
            ))
            .on_conflict((room_members::room_key, room_members::user_id))
            .do_update()
            .set((
                room_members::role.eq(role),
                room_members::reason.eq(None::<&str>),
                room_members::updated_at.eq(now_ms),
            ))
            .execute(c)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}
