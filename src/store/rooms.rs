//! Declared rooms: what the platform asked for, looked up by any slug the room has had.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{room_members, room_slugs, rooms};
use super::{DbConnection, StoreError};
use crate::rooms::{RoomKind, Visibility};
use crate::{on_backend, write_transaction};

/// Where a declared room stands; stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomStatus {
    /// Declared; its job has not made Synapse match yet.
    Pending,
    /// Synapse matches the declaration.
    Ready,
    /// The room's last job ended failed or dead (`last_error` says why).
    Failed,
    /// The bot lost the room (kicked, banned, left); a repair is queued.
    Lost,
    /// The platform deleted it; only a later PUT declares it again.
    Deleted,
}

impl RoomStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Ready,
        Self::Failed,
        Self::Lost,
        Self::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Lost => "lost",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the platform still declares the room (anything but deleted).
    pub fn is_live(self) -> bool {
        self != Self::Deleted
    }
}

impl std::fmt::Display for RoomStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for RoomStatus {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| format!("unknown room status {text:?} in the database"))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = rooms)]
pub struct Room {
    pub id: i64,
    pub tenant_id: String,
    #[diesel(deserialize_as = String)]
    pub kind: RoomKind,
    pub slug: String,
    pub name: String,
    pub topic: Option<String>,
    #[diesel(deserialize_as = String)]
    pub visibility: Visibility,
    pub room_id: Option<String>,
    pub room_version: Option<String>,
    #[diesel(deserialize_as = String)]
    pub status: RoomStatus,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The Matrix room this one replaced, when reconcile had to replace a lost room.
    pub previous_room_id: Option<String>,
    /// Raised by every DELETE: work begun under an earlier generation may no longer store a
    /// Matrix room id or mark the room ready (see [`super::room_changes::set_created`]).
    pub generation: i64,
    /// The homeserver (config id) the room lives on.
    pub homeserver: String,
}

/// The settings the platform declares for a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub tenant_id: String,
    /// The homeserver (config id) the tenant lives on: a new room, or a deleted one declared
    /// again, is made there.
    pub homeserver: String,
    pub kind: RoomKind,
    pub slug: String,
    pub name: String,
    pub topic: Option<String>,
    pub visibility: Visibility,
}

/// What [`declare`] did to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// A room with this slug was never declared: a new row, with no members yet.
    New,
    /// The room's settings changed, or a deleted room was declared again.
    Changed,
    Unchanged,
}

impl Declared {
    pub fn changed(self) -> bool {
        self != Self::Unchanged
    }
}

/// Stores `declaration`: a new room (status `pending`), or new settings for the room that has (or
/// had) this slug. Returns the room and what changed. One read, then at most one write.
pub fn declare(
    conn: &mut DbConnection,
    declaration: &Declaration,
    now_ms: i64,
) -> Result<(Room, Declared), StoreError> {
    let d = declaration;
    within_write(conn, |conn| {
        let existing: Option<Room> = on_backend!(&mut *conn, c => room_slugs::table
            .inner_join(rooms::table)
            .filter(room_slugs::tenant_id.eq(&d.tenant_id))
            .filter(room_slugs::kind.eq(d.kind.as_str()))
            .filter(room_slugs::slug.eq(&d.slug))
            .select(Room::as_select())
            .first(c)
            .optional())?;
        let Some(room) = existing else {
            return Ok((insert(conn, d, now_ms)?, Declared::New));
        };
        let live = room.status.is_live();
        if live && room.name == d.name && room.topic == d.topic && room.visibility == d.visibility {
            return Ok((room, Declared::Unchanged));
        }
        // A deleted room declared again starts over as a new room.
        let status = if live {
            room.status
        } else {
            RoomStatus::Pending
        };
        // … with no Matrix room, nor one it replaced.
        let (room_id, previous_room_id) = if live {
            (room.room_id.clone(), room.previous_room_id.clone())
        } else {
            (None, None)
        };
        let updated = on_backend!(conn, c => diesel::update(rooms::table.find(room.id))
            .set((
                rooms::name.eq(&d.name),
                rooms::topic.eq(&d.topic),
                rooms::visibility.eq(d.visibility.as_str()),
                rooms::status.eq(status.as_str()),
                rooms::room_id.eq(room_id),
                rooms::previous_room_id.eq(previous_room_id),
                // A live room stays where it is; a deleted one declared again is made anew.
                rooms::homeserver.eq(if live { &room.homeserver } else { &d.homeserver }),
                rooms::updated_at.eq(now_ms),
            ))
            .returning(Room::as_returning())
            .get_result(c))?;
        Ok((updated, Declared::Changed))
    })
}

/// Stores a room never declared before (status `pending`) under its slug. (One data-modifying
/// `WITH` on PostgreSQL saves a round trip but costs more: raw SQL is parsed and planned on every
/// call, where these two statements are prepared once per connection.)
fn insert(conn: &mut DbConnection, d: &Declaration, now_ms: i64) -> Result<Room, StoreError> {
    let room = on_backend!(conn, c => {
        let room: Room = diesel::insert_into(rooms::table)
            .values((
                rooms::tenant_id.eq(&d.tenant_id),
                rooms::homeserver.eq(&d.homeserver),
                rooms::kind.eq(d.kind.as_str()),
                rooms::slug.eq(&d.slug),
                rooms::name.eq(&d.name),
                rooms::topic.eq(&d.topic),
                rooms::visibility.eq(d.visibility.as_str()),
                rooms::status.eq(RoomStatus::Pending.as_str()),
                rooms::created_at.eq(now_ms),
                rooms::updated_at.eq(now_ms),
            ))
            .returning(Room::as_returning())
            .get_result(c)?;
        diesel::insert_into(room_slugs::table)
            .values((
                room_slugs::tenant_id.eq(&d.tenant_id),
                room_slugs::kind.eq(d.kind.as_str()),
                room_slugs::slug.eq(&d.slug),
                room_slugs::room_key.eq(room.id),
            ))
            .execute(c)?;
        Ok::<_, diesel::result::Error>(room)
    })?;
    Ok(room)
}

/// Runs `work` in a write transaction, or in the caller's when it has one: a savepoint there would
/// cost two more round trips per call, and the callers roll their whole transaction back on error.
pub(super) fn within_write<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let depth = on_backend!(&mut *conn, c => AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth())?;
    match depth {
        Some(_) => work(conn),
        None => conn.write(work),
    }
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

/// The room that has, or had, this slug, unless it was deleted.
pub fn find_live(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
    slug: &str,
) -> Result<Option<Room>, StoreError> {
    Ok(find(conn, tenant_id, kind, slug)?.filter(|room| room.status.is_live()))
}

/// The room we manage in Matrix room `room_id` (deleted rooms are no longer managed).
pub fn find_live_by_room_id(
    conn: &mut DbConnection,
    room_id: &str,
) -> Result<Option<Room>, StoreError> {
    Ok(find_by_room_id(conn, room_id)?.filter(|room| room.status.is_live()))
}

/// [`find_live_by_room_id`] for several room ids in one query: the live managed room of each
/// room id that has one (by the newest row with that room id, as there).
pub fn find_live_by_room_ids(
    conn: &mut DbConnection,
    room_ids: &[&str],
) -> Result<HashMap<String, Room>, StoreError> {
    let mut found: HashMap<String, Room> = HashMap::new();
    if room_ids.is_empty() {
        return Ok(found);
    }
    let rows: Vec<Room> = on_backend!(conn, c => rooms::table
        .filter(rooms::room_id.eq_any(room_ids))
        .order(rooms::id.desc())
        .select(Room::as_select())
        .load(c))?;
    for room in rows {
        if let Some(room_id) = room.room_id.clone() {
            found.entry(room_id).or_insert(room);
        }
    }
    found.retain(|_, room| room.status.is_live());
    Ok(found)
}

/// The room with this Matrix room id, if we manage (or managed) it.
pub fn find_by_room_id(conn: &mut DbConnection, room_id: &str) -> Result<Option<Room>, StoreError> {
    let room = on_backend!(conn, c => rooms::table
        .filter(rooms::room_id.eq(room_id))
        .order(rooms::id.desc())
        .select(Room::as_select())
        .first(c)
        .optional())?;
    Ok(room)
}

pub fn get(conn: &mut DbConnection, key: i64) -> Result<Option<Room>, StoreError> {
    let room = on_backend!(conn, c => rooms::table.find(key).select(Room::as_select()).first(c).optional())?;
    Ok(room)
}

/// Marks the room deleted: raises its generation (so nothing begun before may bring it back),
/// and releases its earlier slugs, so declaring one of them again makes a new room. The current
/// slug's row stays, for GET to answer `deleted` and a repeated DELETE to find the room.
pub fn mark_deleted(conn: &mut DbConnection, room: &Room, now_ms: i64) -> Result<(), StoreError> {
    write_transaction!(conn, c => {
        diesel::update(rooms::table.find(room.id))
            .set((
                rooms::status.eq(RoomStatus::Deleted.as_str()),
                rooms::last_error.eq(None::<String>),
                rooms::generation.eq(rooms::generation + 1),
                rooms::updated_at.eq(now_ms),
            ))
            .execute(c)?;
        diesel::delete(
            room_slugs::table
                .filter(room_slugs::room_key.eq(room.id))
                .filter(room_slugs::slug.ne(&room.slug)),
        )
        .execute(c)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// Declared rooms, newest first, optionally of one tenant and one status.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: Option<&str>,
    status: Option<RoomStatus>,
    limit: i64,
) -> Result<Vec<Room>, StoreError> {
    let rooms = on_backend!(conn, c => {
        let mut query = rooms::table.select(Room::as_select()).order(rooms::id.desc()).limit(limit).into_boxed();
        if let Some(tenant_id) = tenant_id {
            query = query.filter(rooms::tenant_id.eq(tenant_id.to_owned()));
        }
        if let Some(status) = status {
            query = query.filter(rooms::status.eq(status.as_str()));
        }
        query.load(c)
    })?;
    Ok(rooms)
}

/// What a rename did.
#[derive(Debug)]
pub enum Renamed {
    /// The room's current slug is now the new one (or already was).
    Done(Box<Room>, bool),
    /// Another room has, or had, that slug.
    Taken,
}

/// Makes `new_slug` the room's current slug, keeping the earlier ones. Returns whether it changed.
pub fn rename(
    conn: &mut DbConnection,
    room: &Room,
    new_slug: &str,
    now_ms: i64,
) -> Result<Renamed, StoreError> {
    let renamed = write_transaction!(conn, c => {
        let owner: Option<i64> = room_slugs::table
            .filter(room_slugs::tenant_id.eq(&room.tenant_id))
            .filter(room_slugs::kind.eq(room.kind.as_str()))
            .filter(room_slugs::slug.eq(new_slug))
            .select(room_slugs::room_key)
            .first(c)
            .optional()?;
        match owner {
            Some(key) if key != room.id => return Ok(Renamed::Taken),
            Some(_) if room.slug == new_slug => return Ok(Renamed::Done(Box::new(room.clone()), false)),
            Some(_) => {}
            None => {
                diesel::insert_into(room_slugs::table)
                    .values((
                        room_slugs::tenant_id.eq(&room.tenant_id),
                        room_slugs::kind.eq(room.kind.as_str()),
                        room_slugs::slug.eq(new_slug),
                        room_slugs::room_key.eq(room.id),
                    ))
                    .execute(c)?;
            }
        }
        let updated = diesel::update(rooms::table.find(room.id))
            .set((rooms::slug.eq(new_slug), rooms::updated_at.eq(now_ms)))
            .returning(Room::as_returning())
            .get_result(c)?;
        Ok::<_, diesel::result::Error>(Renamed::Done(Box::new(updated), true))
    })?;
    Ok(renamed)
}

/// Every slug the room has had, the current one included.
pub fn slugs(conn: &mut DbConnection, room_key: i64) -> Result<Vec<String>, StoreError> {
    let slugs = on_backend!(conn, c => room_slugs::table
        .filter(room_slugs::room_key.eq(room_key))
        .select(room_slugs::slug)
        .load(c))?;
    Ok(slugs)
}

/// Forgets the Matrix room (it is being replaced; its id is kept as `previous_room_id`) and the
/// levels applied there.
pub fn clear_created(
    conn: &mut DbConnection,
    room_key: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    write_transaction!(conn, c => {
        // A second call (a crash between clearing and creating) keeps the first call's record.
        let (replaced, earlier): (Option<String>, Option<String>) = rooms::table
            .find(room_key)
            .select((rooms::room_id, rooms::previous_room_id))
            .first(c)?;
        diesel::update(rooms::table.find(room_key))
            .set((
                rooms::room_id.eq(None::<String>),
                rooms::room_version.eq(None::<String>),
                rooms::previous_room_id.eq(replaced.or(earlier)),
                rooms::updated_at.eq(now_ms),
            ))
            .execute(c)?;
        diesel::update(room_members::table.filter(room_members::room_key.eq(room_key)))
            .set(room_members::applied_level.eq(None::<i32>))
            .execute(c)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

/// The payloads of the jobs of `kind` for live rooms that have not succeeded or been cancelled
/// (queued, running, failed or dead: an operator may still retry them).
pub fn unsettled_job_payloads(
    conn: &mut DbConnection,
    kind: &str,
) -> Result<Vec<String>, StoreError> {
    use super::schema::jobs;
    let payloads = on_backend!(conn, c => jobs::table
        .inner_join(rooms::table)
        .filter(jobs::kind.eq(kind))
        .filter(jobs::status.ne_all(["succeeded", "cancelled"]))
        .filter(rooms::status.ne(RoomStatus::Deleted.as_str()))
        .select(jobs::payload)
        .load(c))?;
    Ok(payloads)
}
