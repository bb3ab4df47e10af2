//! What the jobs that act in one declared room are handed instead of the whole `App`: where they
//! act ([`InRoom`]: the bot, the room, what was read of it) and what they may ask the store
//! ([`ManagedRooms`]), beside a [`crate::matrix::RoomConnection`]. Their unit tests give them the
//! in-memory homeserver and a set of rooms.

use ruma::{RoomId, UserId};

use super::JobError;
use crate::matrix::RoomState;
use crate::store::Store;
use crate::store::rooms as room_store;

/// Whether the room was created from its declaration by this very job (`createRoom` set the current
/// slug's alias and left the room out of every directory, and nothing can have moved them since):
/// then neither is read back, two calls fewer per new room on the homeserver every tenant shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fresh {
    JustCreated,
    Existing,
}

/// Where `ensure_room`'s steps act: the declared room, its Matrix room as its tenant's bot sees it
/// (the state read once at the start), and whether this job just created it.
pub struct InRoom<'a> {
    pub room_key: i64,
    pub tenant_id: &'a str,
    pub bot: &'a UserId,
    pub room_id: &'a RoomId,
    pub version: &'a str,
    pub state: &'a RoomState,
    pub fresh: Fresh,
}

/// Which declared room, if any, holds a Matrix room (a declared room that is not deleted).
#[allow(
    async_fn_in_trait,
    reason = "used by the crate's own jobs, never as a trait object"
)]
pub trait ManagedRooms {
    /// The key of the live declared room whose Matrix room is `room_id`.
    async fn holder(&self, room_id: &RoomId) -> Result<Option<i64>, JobError>;
}

/// The declared rooms, as the store has them.
pub struct ManagedInStore<'a>(pub &'a Store);

impl ManagedRooms for ManagedInStore<'_> {
    async fn holder(&self, room_id: &RoomId) -> Result<Option<i64>, JobError> {
        let room_id = room_id.to_string();
        let found = self
            .0
            .run(move |c| room_store::find_live_by_room_id(c, &room_id))
            .await?;
        Ok(found.map(|room| room.id))
    }
}
