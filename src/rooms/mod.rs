//! The room domain, pure: kinds, aliases, roles and power levels, input checks, createRoom bodies,
//! the settings a declaration wants.

pub mod alias;
pub mod authority;
pub mod create;
pub mod declared;
pub mod directory;
pub mod kind;
pub mod power_levels;
pub mod roles;
pub mod room_version;
pub mod settings;
pub mod validate;

pub use alias::{AliasParts, alias, alias_localpart, parse_alias, validate_slug};
pub use authority::{Authority, Power};
pub use create::create_room_body;
pub use declared::DeclaredRoom;
pub use kind::{RoomKind, RoomRef};
pub use power_levels::{Reconciled, Wanted, initial_override, reconcile, user_level};
pub use roles::RoleLevels;
pub use room_version::{creators_have_unlimited_power, privileged_creators};
pub use validate::{FieldError, Visibility};
