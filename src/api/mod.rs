//! Inbound traffic: `appservice` is Synapse → us, `platform` is OpenMeet core → us.

pub(crate) mod appservice;
pub(crate) mod platform;
