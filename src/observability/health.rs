//! One homeserver's health (each homeserver has its own, DESIGN §13): whether it accepts our
//! as_token, can be reached, and answered the last appservice ping round trip. It is healthy when
//! the token is accepted and the ping succeeded; readiness is the database answering and at least
//! one homeserver healthy. Liveness is the process answering at all. The same states decide
//! whether the job worker may call the homeserver: not while it refuses our token or cannot be
//! reached (its tenants' jobs wait, they do not fail; other homeservers' tenants go on).

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

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Accepted,
            2 => Self::Rejected,
            _ => Self::Unknown,
        }
    }
}

#[derive(Debug)]
pub struct Health {
    token: AtomicU8,
    /// False once a call found the homeserver unreachable, until a check reaches it again.
    reachable: AtomicBool,
    ping_ok: AtomicBool,
    /// Notified when work finds the homeserver unreachable or the token refused, so the checker
    /// looks again soon (it still asks at most once per interval while the token is refused).
    pub recheck: Notify,
    /// Notified when a reload put a new config in force: the watchdog (its one waiter) looks again
    /// at once.
    pub config_changed: Notify,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            token: AtomicU8::new(TokenState::Unknown as u8),
            reachable: AtomicBool::new(true),
            ping_ok: AtomicBool::new(false),
            recheck: Notify::new(),
            config_changed: Notify::new(),
        }
    }
}

impl Health {
    /// Records what the homeserver said; returns the previous state (to log changes once).
    pub fn set_token(&self, state: TokenState) -> TokenState {
        TokenState::from_u8(self.token.swap(state as u8, Ordering::AcqRel))
    }

    pub fn token(&self) -> TokenState {
        TokenState::from_u8(self.token.load(Ordering::Acquire))
    }

    pub fn token_accepted(&self) -> bool {
        self.token() == TokenState::Accepted
    }

    /// Records whether the homeserver could be reached; returns the previous value.
    pub fn set_reachable(&self, reachable: bool) -> bool {
        self.reachable.swap(reachable, Ordering::AcqRel)
    }

    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// Whether jobs may call the homeserver now.
    pub fn homeserver_usable(&self) -> bool {
        self.reachable() && self.token() != TokenState::Rejected
    }

    pub fn set_ping_ok(&self, ok: bool) {
        self.ping_ok.store(ok, Ordering::Relaxed);
    }

    pub fn ping_ok(&self) -> bool {
        self.ping_ok.load(Ordering::Relaxed)
    }

    /// The token accepted and the last ping round trip made: what readiness counts.
    pub fn healthy(&self) -> bool {
        self.token_accepted() && self.ping_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_state_changes_report_the_previous_state() {
        let health = Health::default();
        assert_eq!(health.token(), TokenState::Unknown);
        assert!(health.homeserver_usable());
        assert_eq!(health.set_token(TokenState::Rejected), TokenState::Unknown);
        assert!(!health.token_accepted());
        assert!(!health.homeserver_usable());
        assert_eq!(health.set_token(TokenState::Accepted), TokenState::Rejected);
        assert!(health.token_accepted());
        assert!(health.homeserver_usable());
    }

    #[test]
    fn an_unreachable_homeserver_pauses_work_until_reached_again() {
        let health = Health::default();
        assert!(health.set_reachable(false));
        assert!(!health.homeserver_usable());
        assert!(!health.set_reachable(true));
        assert!(health.homeserver_usable());
    }
}
