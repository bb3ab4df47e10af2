//! Inbound traffic: `appservice` is Synapse → us, `platform` is OpenMeet core → us, `client` is
//! Matrix clients → us (the report endpoints a reverse proxy routes here), `antispam` is Synapse's
//! `synapse-http-antispam` module → us (on the appservice listener).

pub(crate) mod antispam;
pub(crate) mod appservice;
pub(crate) mod bearer;
pub(crate) mod client;
pub(crate) mod platform;
