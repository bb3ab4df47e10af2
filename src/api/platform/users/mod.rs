//! Calls about one user across the tenant (DESIGN §14): a user's Matrix id changing.

pub(crate) mod move_user;
