//! Calls about one user across the tenant: a user's Matrix id changing (DESIGN §14), a bot's
//! direct message to them (DESIGN §7.3).

pub(crate) mod direct_message;
pub(crate) mod move_user;
