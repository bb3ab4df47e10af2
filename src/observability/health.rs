//! Readiness: the database answers, the homeserver accepts our as_token, and the last appservice
//! ping round trip succeeded. Liveness is the process answering at all.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use tokio::sync::Notify;

/// What the homeserver last said about our as_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Not asked yet (start-up).
    Unknown,
    Accepted,
    /// `M_UNKNOWN_TOKEN` / `M_MISSING_TOKEN`: jobs pause until it is accepted again.
    Rejected,
}

#[derive(Debug)]
pub struct Health {
    token: AtomicU8,
    ping_ok: AtomicBool,
    /// Notified when the token is accepted again, so paused work resumes at once.
    pub token_restored: Notify,
    /// Notified when work finds the token refused, so the preflight looks again soon.
    pub recheck: Notify,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            token: AtomicU8::new(TokenState::Unknown as u8),
            ping_ok: AtomicBool::new(false),
            token_restored: Notify::new(),
            recheck: Notify::new(),
        }
    }
}

impl Health {
    /// Records what the homeserver said; returns the previous state (to log changes once).
    pub fn set_token(&self, state: TokenState) -> TokenState {
        let previous = match self.token.swap(state as u8, Ordering::AcqRel) {
            1 => TokenState::Accepted,
            2 => TokenState::Rejected,
            _ => TokenState::Unknown,
        };
        if state == TokenState::Accepted && previous != TokenState::Accepted {
            self.token_restored.notify_waiters();
        }
        previous
    }

    pub fn token(&self) -> TokenState {
        match self.token.load(Ordering::Acquire) {
            1 => TokenState::Accepted,
            2 => TokenState::Rejected,
            _ => TokenState::Unknown,
        }
    }

    pub fn token_accepted(&self) -> bool {
        self.token() == TokenState::Accepted
    }

    pub fn set_ping_ok(&self, ok: bool) {
        self.ping_ok.store(ok, Ordering::Relaxed);
    }

    pub fn ping_ok(&self) -> bool {
        self.ping_ok.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_state_changes_report_the_previous_state() {
        let health = Health::default();
        assert_eq!(health.token(), TokenState::Unknown);
        assert_eq!(health.set_token(TokenState::Rejected), TokenState::Unknown);
        assert!(!health.token_accepted());
        assert_eq!(health.set_token(TokenState::Accepted), TokenState::Rejected);
        assert!(health.token_accepted());
    }
}
