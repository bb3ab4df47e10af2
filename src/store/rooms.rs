//! Declared rooms: what the platform asked for, looked up by any slug the room has had.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{room_slugs, rooms};
use super::{DbConnection, StoreError};
use crate::{on_backend, write_transaction};

pub const PENDING: &str = "pending";
pub const READY: &str = "ready";
pub const FAILED: &str = "failed";
pub const LOST: &str = "lost";
pub const DELETED: &str = "deleted";

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = rooms)]
pub struct Room {
    pub id: i64,
    pub tenant_id: String,
    pub kind: String,
    pub slug: String,
    pub name: String,
    pub topic: Option<String>,
    pub visibility: String,
    pub room_id: Option<String>,
    pub room_version: Option<String>,
    pub status: String,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The settings the platform declares for a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub tenant_id: String,
    pub kind: String,
    pub slug: String,
    pub name: String,
    pub topic: Option<String>,
    pub visibility: String,
}

/// Stores `declaration`: a new room (status `pending`), or new settings for the room that has (or
/// had) this slug. Returns the room and whether anything changed.
pub fn declare(
    conn: &mut DbConnection,
    declaration: &Declaration,
    now_ms: i64,
) -> Result<(Room, bool), StoreError> {
    let d = declaration;
    let declared = write_transaction!(conn, c => {
        let existing: Option<Room> = room_slugs::table
            .inner_join(rooms::table)
            .filter(room_slugs::tenant_id.eq(&d.tenant_id))
            .filter(room_slugs::kind.eq(&d.kind))
            .filter(room_slugs::slug.eq(&d.slug))
            .select(Room::as_select())
            .first(c)
            .optional()?;
        match existing {
            Some(room) if room.name == d.name && room.topic == d.topic && room.visibility == d.visibility && room.status != DELETED => {
                Ok((room, false))
            }
            Some(room) => {
                // A deleted room declared again starts over as a new room.
                let status = if room.status == DELETED { PENDING } else { room.status.as_str() };
                let room_id = if room.status == DELETED { None } else { room.room_id.clone() };
                let updated = diesel::update(rooms::table.find(room.id))
                    .set((
                        rooms::name.eq(&d.name),
                        rooms::topic.eq(&d.topic),
                        rooms::visibility.eq(&d.visibility),
                        rooms::status.eq(status),
                        rooms::room_id.eq(room_id),
                        rooms::updated_at.eq(now_ms),
                    ))
                    .returning(Room::as_returning())
                    .get_result(c)?;
                Ok((updated, true))
            }
            None => {
                let room: Room = diesel::insert_into(rooms::table)
                    .values((
                        rooms::tenant_id.eq(&d.tenant_id),
                        rooms::kind.eq(&d.kind),
                        rooms::slug.eq(&d.slug),
                        rooms::name.eq(&d.name),
                        rooms::topic.eq(&d.topic),
                        rooms::visibility.eq(&d.visibility),
                        rooms::status.eq(PENDING),
                        rooms::created_at.eq(now_ms),
                        rooms::updated_at.eq(now_ms),
                    ))
                    .returning(Room::as_returning())
                    .get_result(c)?;
                diesel::insert_into(room_slugs::table)
                    .values((
                        room_slugs::tenant_id.eq(&d.tenant_id),
                        room_slugs::kind.eq(&d.kind),
                        room_slugs::slug.eq(&d.slug),
                        room_slugs::room_key.eq(room.id),
                    ))
                    .execute(c)?;
                Ok::<_, diesel::result::Error>((room, true))
            }
        }
    })?;
    Ok(declared)
}

/// The room that has, or had, this slug.
pub fn find(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
    slug: &str,
) -> Result<Option<Room>, StoreError> {
    let room = on_backend!(conn, c => room_slugs::table
        .inner_join(rooms::table)
        .filter(room_slugs::tenant_id.eq(tenant_id))
        .filter(room_slugs::kind.eq(kind))
        .filter(room_slugs::slug.eq(slug))
        .select(Room::as_select())
        .first(c)
        .optional())?;
    Ok(room)
}

pub fn get(conn: &mut DbConnection, key: i64) -> Result<Option<Room>, StoreError> {
    let room = on_backend!(conn, c => rooms::table.find(key).select(Room::as_select()).first(c).optional())?;
    Ok(room)
}
