//! The room domain, pure: kinds, aliases, roles and power levels, input checks, createRoom bodies,
//! the settings a declaration wants.

pub(crate) mod alias;
pub(crate) mod authority;
pub(crate) mod create;
pub(crate) mod declared;
pub(crate) mod direct;
pub(crate) mod directory;
pub(crate) mod kind;
pub(crate) mod power_levels;
pub(crate) mod roles;
pub(crate) mod room_version;
pub(crate) mod settings;
pub(crate) mod validate;

pub use alias::{AliasParts, alias, alias_localpart, parse_alias, validate_slug};
pub use authority::{Authority, Power};
pub use create::create_room_body;
pub use declared::DeclaredRoom;
pub use kind::{RoomKind, RoomRef};
pub use power_levels::{Reconciled, Wanted, initial_override, reconcile, user_level, with_staff};
pub use roles::RoleLevels;
pub use room_version::{creators_have_unlimited_power, privileged_creators};
pub use validate::{FieldError, Visibility};
