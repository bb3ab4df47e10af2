//! Moderation (DESIGN §7.3): bans and mutes in a room or tenant-wide (sharing `moderate`),
//! redactions, and the audit log.

pub mod bans;
pub mod moderate;
pub mod moderation_log;
pub mod mutes;
pub mod redactions;
