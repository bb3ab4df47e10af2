//! What runs per homeserver the daemon serves (DESIGN §13): each one's client and health as
//! outbound code reaches it (`links`), its watchdog (token, reachability, ping), its loop-back
//! probe, and the supervisor that runs one such task per homeserver across reloads.

pub mod links;
pub mod probe;
pub mod supervise;
pub mod watchdog;
