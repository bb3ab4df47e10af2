//! The order of the measured runs against Synapse: a warm-up, then the direct client and the
//! daemon taking turns, so that each daemon run has a direct run just before and just after it.

use std::time::Instant;

use crate::common::daemon::{Backend, start_daemon};
use crate::common::metrics::wait_inbox_processed;
use crate::declared::declared_run;
use crate::direct::{Direct, DirectReport};
use crate::measures::pushed;
use crate::plan::{run_config, tenants};
use crate::support::daemon::{Daemon, DaemonConfig};
use crate::{MEMBERS, Report, WARMUP_MEMBERS};

/// The tenant prefixes of the direct runs: before the first daemon, then after each.
const DIRECT_PREFIXES: [&str; 3] = ["da", "db", "dc"];

/// The measured runs against Synapse: the daemon's and the direct client's, taking turns.
pub struct Runs<'a> {
    pub direct: &'a Direct,
    pub members: &'a [String],
    pub rooms: usize,
    pub synapse_pid: u32,
    /// Polls the daemons' metrics.
    pub client: reqwest::Client,
}

impl Runs<'_> {
    /// A warm-up, a direct run, then for each backend a daemon run and a direct run; the direct
    /// runs happen while a daemon (idle) takes Synapse's pushes, as in the daemon's own runs.
    pub async fn alternate(
        &self,
        base: &DaemonConfig,
        databases: Vec<(Backend, Option<String>)>,
        report: &mut Report,
    ) {
        for (k, (backend, database)) in databases.into_iter().enumerate() {
            let prefix = match backend {
                Backend::Sqlite => "sq",
                Backend::Postgres => "pg",
            };
            let mut daemon = start_daemon(run_config(base, prefix, database, true)).await;
            if k == 0 {
                self.warm_up().await;
                let label = format!("before {}", backend.name());
                let run = self.direct_run(label, DIRECT_PREFIXES[0], &daemon).await;
                report.directs.push(run);
            }
            let run = declared_run(backend, &daemon, self.members, self.rooms, self.synapse_pid);
            report.declared.push(run.await);
            let label = format!("after {}", backend.name());
            let run = self
                .direct_run(label, DIRECT_PREFIXES[k + 1], &daemon)
                .await;
            report.directs.push(run);
            wait_inbox_processed(&self.client, &daemon).await;
            daemon.stop();
        }
    }

    /// One measured run of the direct client, on its own tenants `{prefix}0` ….
    /// `daemon` is up and idle: Synapse pushes the rooms' events to it.
    async fn direct_run(&self, label: String, prefix: &str, daemon: &Daemon) -> DirectReport {
        let (direct, members, rooms) = (self.direct, self.members, self.rooms);
        eprintln!("== direct client ({label}): {rooms} rooms");
        let pushed_before = pushed(daemon).await;
        let report = direct
            .run(&tenants(prefix), members, rooms, MEMBERS, self.synapse_pid)
            .await;
        wait_inbox_processed(&self.client, daemon).await;
        let pushed_after = pushed(daemon).await;
        eprintln!(
            "direct: {rooms} rooms in {:.1} s ({:.2} rooms/s)",
            report.wall.as_secs_f64(),
            rooms as f64 / report.wall.as_secs_f64()
        );
        DirectReport {
            label,
            pushed: pushed_after.since(&pushed_before),
            ..report
        }
    }

    /// Every member invited once, so that no measured run pays for Synapse's cold caches.
    async fn warm_up(&self) {
        let warmup = Instant::now();
        let warmup_rooms = self.members.len().div_ceil(WARMUP_MEMBERS);
        self.direct
            .run(
                &tenants("wu"),
                self.members,
                warmup_rooms,
                WARMUP_MEMBERS,
                self.synapse_pid,
            )
            .await;
        eprintln!(
            "warm-up: {warmup_rooms} rooms of {WARMUP_MEMBERS} members in {:.1} s",
            warmup.elapsed().as_secs_f64()
        );
    }
}
