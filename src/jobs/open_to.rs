//! A private event room open to the members of its group (DESIGN §7.5): its join rule is
//! `restricted` to the group's Matrix room, so each `ensure_room` of the event needs that room's
//! id, and every room open to a group follows when the group room is made, replaced or deleted.

use std::sync::Arc;

use ruma::{OwnedRoomId, RoomId};

use super::{JobError, ensure_room};
use crate::app::App;
use crate::store::rooms as room_store;
use crate::store::{DbConnection, StoreError, jobs, room_access};

/// The Matrix room whose members may join a room open to group room `open_to_room_key`: `None`
/// when it is open to no group, or its group
/// room is deleted (then the room is invite only). A group room not made yet is made first, as an
/// alias query would make it (under the group's own creation lock, so its job and this one create
/// it once): the event room waits for it instead of opening to nobody. Only event rooms are open to
/// groups, and groups to nothing, so the locks never wait on each other in a circle.
pub async fn group_room(
    app: &Arc<App>,
    open_to_room_key: Option<i64>,
) -> Result<Option<OwnedRoomId>, JobError> {
    let Some(group_key) = open_to_room_key else {
        return Ok(None);
    };
    let group = app
        .store
        .run(move |c| room_store::get(c, group_key))
        .await?;
    let Some(group) = group.filter(|group| group.status.is_live()) else {
        return Ok(None);
    };
    if let Some(room_id) = &group.room_id {
        let room_id = RoomId::parse(room_id).map_err(|e| JobError::Permanent(e.to_string()))?;
        return Ok(Some(room_id));
    }
    tracing::info!(group = %group.slug, "the group room the room is open to is not made yet: making it first");
    let created = Box::pin(ensure_room::ensure_created(app, group.id, group.generation)).await?;
    Ok(created.map(|(room_id, _)| room_id))
}

/// Queues an `ensure_room` for every declared room open to group room `group_key`, in the
/// transaction that made, replaced or deleted the group's Matrix room: their join rules follow.
pub fn queue_followers(
    conn: &mut DbConnection,
    group_key: i64,
    now: i64,
) -> Result<(), StoreError> {
    for room in room_access::open_to(conn, group_key)? {
        jobs::enqueue(conn, &ensure_room::new_job(&room), now)?;
    }
    Ok(())
}
