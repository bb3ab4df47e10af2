//! The direct-message room of each tenant bot and user (DESIGN §7.3 "Across the tenant"): a row
//! written with the first message's job, before the room exists, so the room is made once — under
//! the row's creation lock (`creation_lock`, keyed by the row's id) — and reused after.

use diesel::prelude::*;

use super::schema::direct_rooms;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// A bot's direct-message room with a user.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = direct_rooms)]
pub struct DirectRoom {
    /// The key of the room's creation lock.
    pub id: i64,
    pub tenant_id: String,
    pub user_id: String,
    /// `None` until it is made.
    pub room_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The row of the tenant's bot and `user_id`, written now if there is none.
pub fn ensure(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
    now_ms: i64,
) -> Result<DirectRoom, StoreError> {
    on_backend!(conn, c => diesel::insert_into(direct_rooms::table)
        .values((
            direct_rooms::tenant_id.eq(tenant_id),
            direct_rooms::user_id.eq(user_id),
            direct_rooms::created_at.eq(now_ms),
            direct_rooms::updated_at.eq(now_ms),
        ))
        .on_conflict((direct_rooms::tenant_id, direct_rooms::user_id))
        .do_nothing()
        .execute(c))?;
    get(conn, tenant_id, user_id)?.ok_or_else(|| StoreError::Query(diesel::result::Error::NotFound))
}

pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<Option<DirectRoom>, StoreError> {
    let row = on_backend!(conn, c => direct_rooms::table
        .filter(direct_rooms::tenant_id.eq(tenant_id))
        .filter(direct_rooms::user_id.eq(user_id))
        .select(DirectRoom::as_select())
        .first(c)
        .optional())?;
    Ok(row)
}

/// Stores the room made for row `id` (or `None`: forgets a room the bot lost, so the next message
/// makes another) when the row still holds `expected`. Returns whether it did.
pub fn set_room(
    conn: &mut DbConnection,
    id: i64,
    expected: Option<&str>,
    room_id: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let updated = on_backend!(conn, c => {
        let row = direct_rooms::table.filter(direct_rooms::id.eq(id));
        let set = (
            direct_rooms::room_id.eq(room_id),
            direct_rooms::updated_at.eq(now_ms),
        );
        match expected {
            Some(expected) => diesel::update(row.filter(direct_rooms::room_id.eq(expected)))
                .set(set)
                .execute(c),
            None => diesel::update(row.filter(direct_rooms::room_id.is_null()))
                .set(set)
                .execute(c),
        }
    })?;
    Ok(updated == 1)
}

/// Whether `room_id` is the direct-message room of `tenant_id`'s bot with someone (not a managed
/// room, and not foreign either: the bot stays in it).
pub fn is_direct_room(
    conn: &mut DbConnection,
    tenant_id: &str,
    room_id: &str,
) -> Result<bool, StoreError> {
    let found: i64 = on_backend!(conn, c => direct_rooms::table
        .filter(direct_rooms::tenant_id.eq(tenant_id))
        .filter(direct_rooms::room_id.eq(room_id))
        .count()
        .get_result(c))?;
    Ok(found > 0)
}
