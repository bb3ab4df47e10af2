//! openmeet-appservice: the Matrix application service that owns the Matrix side of OpenMeet's
//! chat. See `ARCHITECTURE.md` for the map.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod homeservers;
pub mod inbox;
pub mod jobs;
pub mod matrix;
pub mod observability;
pub mod registration;
pub mod reload;
pub mod rooms;
pub mod server;
pub mod status;
pub mod store;
pub mod tenant_moves;
pub mod webhooks;
