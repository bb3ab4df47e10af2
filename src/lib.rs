//! openmeet-appservice: the Matrix application service that owns the Matrix side of OpenMeet's
//! chat. See `ARCHITECTURE.md` for the map.

pub(crate) mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub(crate) mod homeservers;
pub(crate) mod inbox;
pub mod jobs;
pub mod leadership;
pub(crate) mod matrix;
pub mod observability;
pub(crate) mod registration;
pub(crate) mod reload;
pub(crate) mod reports;
pub mod rooms;
pub mod rules;
pub(crate) mod server;
pub mod status;
pub mod store;
pub(crate) mod tenant_moves;
pub mod webhooks;

/// What in-process tests drive without `serve`: the appservice listener's routes, and one batch of
/// the inbox processor with a hook before each event.
pub mod harness {
    pub use crate::api::appservice::router as appservice_router;
    pub use crate::inbox::process_batch_with;
    pub use crate::store::seen_events_share_an_entry;
}
