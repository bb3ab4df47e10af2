//! Inbound traffic: `appservice` is Synapse → us, `platform` is OpenMeet core → us.

pub mod appservice;
pub mod platform;
