//! Inbound traffic: `appservice` is Synapse → us, `platform` is OpenMeet core → us, `antispam` is
//! Synapse's `synapse-http-antispam` module → us (on the appservice listener).

pub(crate) mod antispam;
pub(crate) mod appservice;
pub(crate) mod platform;
