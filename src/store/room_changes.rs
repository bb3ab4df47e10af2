//! The changes of a declared room that the platform is told about: its Matrix room stored
//! (created, adopted, replaced, upgraded) and the status its jobs and the inbox leave. Each appends
//! its outbox event (`store/outbox.rs`) in the same transaction, and only when something changed:
//! a second `set_created` of the same room id, or `ready` set on a ready room, tells nothing.
//! Each locks the room's row first, so what it compares with is what it replaces.

use diesel::prelude::*;

use super::outbox;
use super::outbox_data::{EventData, RoomFailed, RoomLost, RoomReady, RoomReplaced};
use super::rooms::{Room, RoomStatus, within_write};
use super::schema::rooms;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// The room `room_key` as it is before a change, locked until the transaction ends on PostgreSQL
/// (SQLite's one writer already holds the database), so no concurrent change slips in between.
fn lock(conn: &mut DbConnection, room_key: i64) -> Result<Option<Room>, StoreError> {
    let query = rooms::table.find(room_key);
    let room = match conn {
        DbConnection::Postgres(c) => query
            .select(Room::as_select())
            .for_update()
            .first(c)
            .optional(),
        DbConnection::Sqlite(c) => query.select(Room::as_select()).first(c).optional(),
    }?;
    Ok(room)
}

/// The room `room_key`, locked, unless it was deleted since `generation` was read.
fn lock_current(
    conn: &mut DbConnection,
    room_key: i64,
    generation: i64,
) -> Result<Option<Room>, StoreError> {
    Ok(lock(conn, room_key)?.filter(|room| room.generation == generation && room.status.is_live()))
}

/// Stores the Matrix room once created (or adopted after a crash between creating and storing),
/// unless the room was deleted since `generation` was read. Returns whether it was stored; when
/// not, whoever created the Matrix room must tear it down (DELETE wins). A new id where the room
/// had one (a followed upgrade) or had one before a replacement (`previous_room_id`) is
/// `room.replaced`.
pub fn set_created(
    conn: &mut DbConnection,
    room_key: i64,
    generation: i64,
    room_id: &str,
    room_version: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    within_write(conn, |conn| {
        let Some(before) = lock_current(conn, room_key, generation)? else {
            return Ok(false);
        };
        on_backend!(conn, c => diesel::update(rooms::table.find(room_key))
            .set((rooms::room_id.eq(room_id), rooms::room_version.eq(room_version), rooms::updated_at.eq(now_ms)))
            .execute(c))?;
        let previous = before.room_id.as_ref().or(before.previous_room_id.as_ref());
        if before.room_id.as_deref() != Some(room_id)
            && let Some(previous) = previous
        {
            let data = EventData::RoomReplaced(RoomReplaced {
                previous_room_id: previous.clone(),
                room_id: room_id.to_owned(),
            });
            outbox::append_for_room(conn, &before, &data, now_ms)?;
        }
        Ok(true)
    })
}

/// Names an existing Matrix room as the declared room's, to be adopted (DESIGN §14): its version
/// stays unknown until the tenant bot reads the room, which is how `ensure_room` tells a room it
/// is adopting from one it made.
pub fn set_to_adopt(
    conn: &mut DbConnection,
    room_key: i64,
    room_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::update(rooms::table.find(room_key))
        .set((rooms::room_id.eq(room_id), rooms::room_version.eq(None::<String>), rooms::updated_at.eq(now_ms)))
        .execute(c))?;
    Ok(())
}

/// Sets how the room's job ended, unless the room was deleted since `generation` was read.
/// Returns whether it was set.
pub fn set_status_if_current(
    conn: &mut DbConnection,
    room_key: i64,
    generation: i64,
    status: RoomStatus,
    last_error: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    within_write(conn, |conn| {
        let Some(before) = lock_current(conn, room_key, generation)? else {
            return Ok(false);
        };
        write_status(conn, &before, status, last_error, now_ms)?;
        Ok(true)
    })
}

pub fn set_status(
    conn: &mut DbConnection,
    room_key: i64,
    status: RoomStatus,
    last_error: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    within_write(conn, |conn| match lock(conn, room_key)? {
        Some(before) => write_status(conn, &before, status, last_error, now_ms),
        None => Ok(()),
    })
}

/// Writes the status; a room that becomes `ready` or `lost` tells so. (`failed` is told by
/// [`record_job_failure`], with the job; `pending` and `deleted` by nobody.)
fn write_status(
    conn: &mut DbConnection,
    before: &Room,
    status: RoomStatus,
    last_error: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::update(rooms::table.find(before.id))
        .set((rooms::status.eq(status.as_str()), rooms::last_error.eq(last_error), rooms::updated_at.eq(now_ms)))
        .execute(c))?;
    let room_id = before.room_id.clone();
    let data = match status {
        _ if before.status == status => return Ok(()),
        RoomStatus::Ready => EventData::RoomReady(RoomReady { room_id }),
        RoomStatus::Lost => EventData::RoomLost(RoomLost {
            room_id,
            reason: last_error.map(str::to_owned),
        }),
        RoomStatus::Pending | RoomStatus::Failed | RoomStatus::Deleted => return Ok(()),
    };
    outbox::append_for_room(conn, before, &data, now_ms)?;
    Ok(())
}

/// Job `job_id` of the room ended `failed` or `dead`: the room shows it (`failed`, with `error`)
/// and tells `room.failed`, once per job. A deleted room stays deleted; only its own teardown's
/// error (`teardown`) is shown there.
pub fn record_job_failure(
    conn: &mut DbConnection,
    room_key: i64,
    job_id: i64,
    error: &str,
    teardown: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    within_write(conn, |conn| {
        let Some(before) = lock(conn, room_key)? else {
            return Ok(());
        };
        let room = rooms::table.find(room_key);
        match (teardown, before.status.is_live()) {
            (true, false) => {
                on_backend!(conn, c => diesel::update(room)
                    .set((rooms::last_error.eq(error), rooms::updated_at.eq(now_ms)))
                    .execute(c))?;
            }
            (false, true) => {
                on_backend!(conn, c => diesel::update(room)
                    .set((rooms::status.eq(RoomStatus::Failed.as_str()), rooms::last_error.eq(error), rooms::updated_at.eq(now_ms)))
                    .execute(c))?;
                let data = EventData::RoomFailed(RoomFailed {
                    job: job_id,
                    error: error.to_owned(),
                });
                outbox::append_for_room(conn, &before, &data, now_ms)?;
            }
            _ => {}
        }
        Ok(())
    })
}
