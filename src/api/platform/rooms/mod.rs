//! Declared rooms and their members (DESIGN §7, §7.1): declare, read, delete, rename, and one
//! member at a time.

pub mod delete_room;
pub mod get_room;
pub mod member;
pub mod put_room;
pub mod rename;
