//! What a run measures besides its wall time: the Matrix calls per endpoint, what Synapse pushed
//! to the daemon, and CPU seconds by process and for the whole machine.

use crate::common::{CLOCK_TICKS, cpu_seconds, pids, try_cpu_seconds};
use crate::support::daemon::Daemon;

#[derive(Clone, Copy, Default)]
pub struct EndpointStats {
    pub calls: f64,
    pub errors: f64,
    pub seconds: f64,
}

impl EndpointStats {
    pub fn mean_ms(&self) -> f64 {
        self.seconds * 1000.0 / self.calls.max(1.0)
    }
}

/// What Synapse has pushed to `daemon` so far.
pub async fn pushed(daemon: &Daemon) -> Pushed {
    Pushed {
        transactions: daemon
            .metric("openmeet_as_transactions_received_total", "")
            .await,
        events: daemon.metric("openmeet_as_events_received_total", "").await,
        ack_seconds: daemon
            .metric("openmeet_as_transaction_ack_seconds_sum", "")
            .await,
    }
}

/// Appservice transactions Synapse pushed, their events, and the daemon's time to acknowledge.
#[derive(Clone, Copy, Default)]
pub struct Pushed {
    pub transactions: f64,
    pub events: f64,
    pub ack_seconds: f64,
}

impl Pushed {
    pub fn since(&self, before: &Self) -> Self {
        Self {
            transactions: self.transactions - before.transactions,
            events: self.events - before.events,
            ack_seconds: self.ack_seconds - before.ack_seconds,
        }
    }

    pub fn cell(&self) -> String {
        format!(
            "{} ({}), ack {:.1} ms",
            self.transactions,
            self.events,
            self.ack_seconds * 1000.0 / self.transactions.max(1.0)
        )
    }
}

#[derive(Clone, Copy)]
pub struct UsageSnapshot {
    daemon: f64,
    synapse: f64,
    /// Every `postgres` process of the machine (the server and its backends).
    postgres: f64,
    /// This process: the load generator, or the direct client.
    own: f64,
    /// (busy, total) jiffies of all CPUs, from /proc/stat.
    machine: (u64, u64),
}

/// CPU seconds over a run, by process, and how busy the whole machine was.
#[derive(Clone, Copy, Default)]
pub struct Usage {
    pub daemon_cpu_seconds: f64,
    pub synapse_cpu_seconds: f64,
    pub postgres_cpu_seconds: f64,
    pub own_cpu_seconds: f64,
    pub machine_busy_percent: f64,
    /// CPU seconds of every other process: the machine's busy time less the above.
    pub other_cpu_seconds: f64,
}

impl UsageSnapshot {
    /// `daemon`: the daemon's pid (or, for the direct client, none).
    pub fn take(daemon: Option<u32>, synapse_pid: u32) -> Self {
        Self {
            daemon: daemon.map_or(0.0, cpu_seconds),
            synapse: cpu_seconds(synapse_pid),
            postgres: postgres_cpu_seconds(),
            own: cpu_seconds(std::process::id()),
            machine: machine_jiffies(),
        }
    }

    pub fn since(&self, before: &Self) -> Usage {
        let busy = self.machine.0.saturating_sub(before.machine.0) as f64;
        let total = self.machine.1.saturating_sub(before.machine.1).max(1) as f64;
        let mut usage = Usage {
            daemon_cpu_seconds: self.daemon - before.daemon,
            synapse_cpu_seconds: self.synapse - before.synapse,
            postgres_cpu_seconds: self.postgres - before.postgres,
            own_cpu_seconds: self.own - before.own,
            machine_busy_percent: busy * 100.0 / total,
            other_cpu_seconds: 0.0,
        };
        usage.other_cpu_seconds = (busy / CLOCK_TICKS
            - usage.daemon_cpu_seconds
            - usage.synapse_cpu_seconds
            - usage.postgres_cpu_seconds
            - usage.own_cpu_seconds)
            .max(0.0);
        usage
    }
}

/// utime + stime of every process named `postgres`, in seconds (backends that exit between two
/// readings are missed; the daemon's pooled connections live for the whole run).
fn postgres_cpu_seconds() -> f64 {
    pids()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .filter_map(try_cpu_seconds)
        .sum()
}

/// (busy, total) jiffies summed over all CPUs (the `cpu` line of /proc/stat; idle and iowait
/// are not busy).
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let line = stat.lines().next().expect("a cpu line");
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().expect("a jiffies count"))
        .collect();
    let total: u64 = values.iter().sum();
    let idle = values[3] + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}
