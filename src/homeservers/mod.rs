//! What runs per homeserver the daemon serves (DESIGN §13): each one's client and health as
//! outbound code reaches it (`links`), its watchdog (token, reachability, ping), its loop-back
//! probe, and the supervisor that runs one such task per homeserver across reloads.

pub(crate) mod links;
pub(crate) mod probe;
pub(crate) mod supervise;
pub(crate) mod watchdog;
