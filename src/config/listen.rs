//! `listen`: the daemon's three listeners, one per audience.

use std::net::SocketAddr;

use super::checks::listen_address;
use super::file::ListenSection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub appservice: SocketAddr,
    pub platform: SocketAddr,
    pub metrics: SocketAddr,
}

impl Listen {
    pub fn validate(section: ListenSection, p: &mut Vec<String>) -> Option<Self> {
        let appservice = listen_address(p, "listen.appservice", section.appservice);
        let platform = listen_address(p, "listen.platform", section.platform);
        let metrics = listen_address(p, "listen.metrics", section.metrics);
        let listen = Self {
            appservice: appservice?,
            platform: platform?,
            metrics: metrics?,
        };
        let Self {
            appservice: a,
            platform: b,
            metrics: c,
        } = listen;
        if a == b || b == c || a == c {
            p.push("listen.appservice, listen.platform and listen.metrics must be three different addresses: each listener serves a different audience.".into());
        }
        Some(listen)
    }
}
