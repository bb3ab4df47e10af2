//! A declared room in the room domain's terms: what `createRoom` and every later `ensure_room`
//! make the Matrix room match.

use ruma::OwnedRoomId;

use super::kind::RoomKind;
use super::validate::Visibility;

/// A room as the platform declared it (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredRoom {
    pub kind: RoomKind,
    pub slug: String,
    pub tenant: String,
    pub name: String,
    pub topic: Option<String>,
    pub visibility: Visibility,
    /// For a private room open to a group (`open_to`), the group's Matrix room, whose members may
    /// join; `None` when it has none or the group room is gone (then invite only).
    pub open_to: Option<OwnedRoomId>,
}
