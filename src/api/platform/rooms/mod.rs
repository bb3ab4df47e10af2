//! Declared rooms and their members (DESIGN §7, §7.1): declare, read, delete, rename, and one
//! member at a time.

pub(crate) mod delete_room;
pub(crate) mod get_room;
pub(crate) mod member;
pub(crate) mod put_room;
pub(crate) mod rename;
