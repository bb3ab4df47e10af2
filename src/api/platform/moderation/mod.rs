//! Moderation (DESIGN §7.3): bans and mutes in a room or tenant-wide (sharing `moderate`),
//! redactions, tenant staff, and the audit log.

pub(crate) mod bans;
pub(crate) mod moderate;
pub(crate) mod moderation_log;
pub(crate) mod mutes;
pub(crate) mod redactions;
pub(crate) mod staff;
