//! Inbound traffic: `appservice` is Synapse → us, `platform` is OpenMeet core → us, `client` is
//! Matrix clients → us (the report endpoints a reverse proxy routes here).

pub(crate) mod appservice;
pub(crate) mod client;
pub(crate) mod platform;
