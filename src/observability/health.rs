//! Readiness: the database answers, the homeserver accepts our as_token, and the last appservice
//! ping round trip succeeded. Liveness is the process answering at all.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Health {
    token_accepted: AtomicBool,
    ping_ok: AtomicBool,
}

impl Health {
    pub fn set_token_accepted(&self, accepted: bool) {
        self.token_accepted.store(accepted, Ordering::Relaxed);
    }

    pub fn set_ping_ok(&self, ok: bool) {
        self.ping_ok.store(ok, Ordering::Relaxed);
    }

    pub fn token_accepted(&self) -> bool {
        self.token_accepted.load(Ordering::Relaxed)
    }

    pub fn ping_ok(&self) -> bool {
        self.ping_ok.load(Ordering::Relaxed)
    }
}
