#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! End-to-end against a real Synapse (PyPI `matrix-synapse`, pinned in `support/testenv.sh`):
//! one Synapse per test process, loaded with the registration our own `registration` command
//! printed. Tests take turns on the registered appservice port, each with its own daemon and
//! database, and keep apart through their own tenants, users and rooms. `rules` starts a Synapse of
//! its own, loading the synapse-http-antispam module pointed at the daemon.

#[path = "../support/mod.rs"]
mod support;

mod appservice;
mod direct_messages;
mod directory;
mod environment;
mod events;
mod lifecycle;
mod messages;
mod moderation;
mod operate;
mod port;
mod redaction;
mod replicas;
mod reports;
mod rooms;
mod rules;
mod settings;
mod staff;
mod webhooks;
