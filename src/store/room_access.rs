//! Who may find and join a declared room, beyond its settings (DESIGN §7.5): the group room a
//! private event room is open to, and the note a room keeps when the homeserver refused to list it
//! in its server-wide directory, and whether the Matrix room is end-to-end encrypted (an adopted
//! one may be). One `room_access` row per room that has any of it.

use diesel::prelude::*;

use super::rooms::{Room, RoomStatus};
use super::schema::{room_access, rooms};
use super::{DbConnection, StoreError};
use crate::on_backend;

/// A room's access row; all `None` for a room without one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = room_access)]
pub struct Access {
    /// The group room (`rooms.id`) whose members may join.
    pub open_to_room_key: Option<i64>,
    /// Why the homeserver did not list the room in its server-wide directory.
    pub directory_note: Option<String>,
    /// The Matrix room had end-to-end encryption on when `ensure_room` last read it.
    pub encrypted: bool,
}

/// Room `room_key`'s access.
pub fn get(conn: &mut DbConnection, room_key: i64) -> Result<Access, StoreError> {
    let access = on_backend!(conn, c => room_access::table
        .find(room_key)
        .select(Access::as_select())
        .first(c)
        .optional())?;
    Ok(access.unwrap_or_default())
}

/// Declares the group room (its key) that room `room_key` is open to, or none; returns whether
/// that changed. Opening to none is one statement.
pub fn set_open_to(
    conn: &mut DbConnection,
    room_key: i64,
    group_key: Option<i64>,
) -> Result<bool, StoreError> {
    let Some(group_key) = group_key else {
        let closed = on_backend!(conn, c => diesel::update(
                room_access::table
                    .find(room_key)
                    .filter(room_access::open_to_room_key.is_not_null()),
            )
            .set(room_access::open_to_room_key.eq(None::<i64>))
            .execute(c))?;
        return Ok(closed > 0);
    };
    if get(conn, room_key)?.open_to_room_key == Some(group_key) {
        return Ok(false);
    }
    on_backend!(conn, c => diesel::insert_into(room_access::table)
        .values((
            room_access::room_key.eq(room_key),
            room_access::open_to_room_key.eq(group_key),
        ))
        .on_conflict(room_access::room_key)
        .do_update()
        .set(room_access::open_to_room_key.eq(group_key))
        .execute(c))?;
    Ok(true)
}

/// The declared (not deleted) rooms open to group room `group_key`: they follow it when its
/// Matrix room is made, replaced or deleted.
pub fn open_to(conn: &mut DbConnection, group_key: i64) -> Result<Vec<Room>, StoreError> {
    let rooms = on_backend!(conn, c => rooms::table
        .inner_join(room_access::table)
        .filter(room_access::open_to_room_key.eq(group_key))
        .filter(rooms::status.ne(RoomStatus::Deleted.as_str()))
        .order(rooms::id)
        .select(Room::as_select())
        .load(c))?;
    Ok(rooms)
}

/// Keeps (or, with `None`, clears) why the homeserver did not list the room in its server-wide
/// directory.
pub fn set_directory_note(
    conn: &mut DbConnection,
    room_key: i64,
    note: Option<&str>,
) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::insert_into(room_access::table)
        .values((
            room_access::room_key.eq(room_key),
            room_access::directory_note.eq(note),
        ))
        .on_conflict(room_access::room_key)
        .do_update()
        .set(room_access::directory_note.eq(note))
        .execute(c))?;
    Ok(())
}

/// Keeps whether the Matrix room of room `room_key` has end-to-end encryption on.
pub fn set_encrypted(
    conn: &mut DbConnection,
    room_key: i64,
    encrypted: bool,
) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::insert_into(room_access::table)
        .values((room_access::room_key.eq(room_key), room_access::encrypted.eq(encrypted)))
        .on_conflict(room_access::room_key)
        .do_update()
        .set(room_access::encrypted.eq(encrypted))
        .execute(c))?;
    Ok(())
}
