//! Which singleton roles this replica runs (DESIGN §15). The retention pruner, the queue gauges,
//! and each homeserver's watchdog and loop-back probe must run once however many replicas share
//! the database: each is a role, held through a lease row in `leader` (`store/leader.rs`) that
//! the holder renews every [`RENEW`]; another replica takes a role whose row is [`TTL`] old, and a
//! replica stopping gives its roles up so another takes them within a [`ROUND`].
//!
//! A role counts as held only until [`TTL`] minus a margin after the renewal that last succeeded
//! began, by this process's monotonic clock: a replica cut off from the database stops acting
//! before another may take over. On SQLite the one process holds every role and writes no row.
//! `openmeet_as_leader{role}` is 1 while held. The task that keeps the leases is `leases::run`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::Config;
use crate::store::Backend;

pub mod leases;

/// How often the holder renews a role.
pub const RENEW: Duration = Duration::from_secs(5);
/// How long a lease lasts after its renewal: another replica takes the role after this. A role
/// whose holder died is run again within `TTL` + [`ROUND`] (12.5 s) of its death at worst (it died
/// just after renewing), inside DESIGN §15's 15 s with room for a slow database.
pub const TTL: Duration = Duration::from_secs(12);
/// How often each replica looks at the roles (renewing or taking only when due; a follower
/// reads the leases and writes only to take one that lapsed).
pub const ROUND: Duration = Duration::from_millis(500);
/// A holder stops counting itself the holder this long before its row expires, so that its clock
/// and the database's time never let two replicas act at once.
const MARGIN: Duration = Duration::from_secs(2);

/// The retention pruner's role.
pub const PRUNER: &str = "pruner";
/// The job-queue gauges' role (read from the table that every replica shares).
pub const QUEUE_GAUGES: &str = "queue_gauges";

/// Homeserver `id`'s watchdog role.
pub fn watchdog(id: &str) -> String {
    format!("watchdog:{id}")
}

/// Homeserver `id`'s loop-back probe role.
pub fn probe(id: &str) -> String {
    format!("probe:{id}")
}

/// Every role of `config`: the two process-wide ones, then two per homeserver.
pub fn roles(config: &Config) -> BTreeSet<String> {
    let mut roles = BTreeSet::from([PRUNER.to_owned(), QUEUE_GAUGES.to_owned()]);
    for homeserver in config.homeservers() {
        roles.insert(watchdog(homeserver.id));
        roles.insert(probe(homeserver.id));
    }
    roles
}

/// The roles this process holds, each until its local deadline.
pub struct Leadership {
    /// SQLite: the one process holds every role.
    alone: bool,
    held: Mutex<BTreeMap<String, Instant>>,
    /// Bumped whenever a role is taken or lost, for [`Leadership::wait_for`].
    changed: watch::Sender<u64>,
}

impl Leadership {
    pub fn new(backend: Backend) -> Self {
        Self {
            alone: backend == Backend::Sqlite,
            held: Mutex::new(BTreeMap::new()),
            changed: watch::Sender::new(0),
        }
    }

    /// Whether this process runs `role` now.
    pub fn holds(&self, role: &str) -> bool {
        self.alone
            || self
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(role)
                .is_some_and(|deadline| Instant::now() < *deadline)
    }

    /// Returns once this process holds `role` (at once on SQLite).
    pub async fn wait_for(&self, role: &str) {
        let mut changed = self.changed.subscribe();
        loop {
            if self.holds(role) {
                return;
            }
            // A deadline passing changes nothing in the map: look again after a round at most.
            let _ = tokio::time::timeout(ROUND, changed.changed()).await;
        }
    }

    /// Whether `role` is due a renewal (or is not held).
    fn due(&self, role: &str, now: Instant) -> bool {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(role)
            .is_none_or(|deadline| *deadline <= now + (TTL - MARGIN - RENEW))
    }

    /// Records the rounds' answers; returns the roles taken and lost.
    fn record(&self, answers: &[(String, Option<bool>)], began: Instant) -> Changes {
        let mut changes = Changes::default();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        for (role, answer) in answers {
            let was = held.get(role).is_some_and(|deadline| now < *deadline);
            match answer {
                Some(true) => {
                    held.insert(role.clone(), began + TTL - MARGIN);
                    if !was {
                        changes.taken.push(role.clone());
                    }
                }
                Some(false) if held.remove(role).is_some() && was => {
                    changes.lost.push(role.clone());
                }
                Some(false) => {}
                // The database did not answer: the role stays held until its deadline passes.
                None => {}
            }
        }
        drop(held);
        if !changes.taken.is_empty() || !changes.lost.is_empty() {
            self.changed.send_modify(|count| *count += 1);
        }
        changes
    }

    fn forget(&self, roles: &[String]) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for role in roles {
            held.remove(role);
        }
        drop(held);
        self.changed.send_modify(|count| *count += 1);
    }
}

#[derive(Default)]
struct Changes {
    taken: Vec<String>,
    lost: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(role: &str, held: Option<bool>) -> (String, Option<bool>) {
        (role.to_owned(), held)
    }

    #[test]
    fn a_role_is_held_from_its_renewal_until_its_deadline_and_lost_when_another_holds_it() {
        let leadership = Leadership::new(Backend::Postgres);
        assert!(!leadership.holds(PRUNER));
        let changes = leadership.record(&[answer(PRUNER, Some(true))], Instant::now());
        assert_eq!(changes.taken, [PRUNER]);
        assert!(leadership.holds(PRUNER));
        assert!(!leadership.due(PRUNER, Instant::now()), "renewed just now");
        assert!(leadership.due(PRUNER, Instant::now() + RENEW));
        // The database did not answer: still held until the deadline.
        leadership.record(&[answer(PRUNER, None)], Instant::now());
        assert!(leadership.holds(PRUNER));
        let changes = leadership.record(&[answer(PRUNER, Some(false))], Instant::now());
        assert_eq!(changes.lost, [PRUNER]);
        assert!(!leadership.holds(PRUNER));
    }

    #[test]
    fn a_renewal_that_began_too_long_ago_holds_nothing() {
        let leadership = Leadership::new(Backend::Postgres);
        let long_ago = Instant::now() - TTL;
        leadership.record(&[answer(PRUNER, Some(true))], long_ago);
        assert!(!leadership.holds(PRUNER));
    }

    #[test]
    fn sqlite_holds_every_role() {
        let leadership = Leadership::new(Backend::Sqlite);
        assert!(leadership.holds(PRUNER));
        assert!(leadership.holds(&watchdog("default")));
    }
}
