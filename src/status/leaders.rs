//! The status's line per singleton role (DESIGN §15): which replica runs it, and for how long its
//! lease holds.

use serde::{Deserialize, Serialize};

use super::columns;
use crate::app::App;
use crate::clock::duration;
use crate::config::Config;
use crate::leadership;
use crate::store::Backend;
use crate::store::leader::Lease;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaderStatus {
    /// `pruner`, `queue_gauges`, `watchdog:{homeserver}` or `probe:{homeserver}`.
    pub role: String,
    /// The `jobs.worker_id` of the replica that runs it; `null` when none does now (its last
    /// holder stopped or lapsed: another takes it within a second).
    pub holder: Option<String>,
    /// When its lease lapses unless renewed (unix ms); `null` on SQLite, where the one process
    /// holds every role.
    pub expires_at_ms: Option<i64>,
}

/// Every role of the config with its holder: the rows of `leader` on PostgreSQL, this process on
/// SQLite.
pub(super) fn of(app: &App, config: &Config, leases: &[Lease], now_ms: i64) -> Vec<LeaderStatus> {
    let alone = app.store.backend() == Backend::Sqlite;
    leadership::roles(config)
        .into_iter()
        .map(|role| {
            if alone {
                return LeaderStatus {
                    role,
                    holder: Some(config.jobs.worker_id.clone()),
                    expires_at_ms: None,
                };
            }
            let lease = leases
                .iter()
                .find(|lease| lease.name == role && lease.expires_at >= now_ms);
            LeaderStatus {
                holder: lease.map(|lease| lease.holder.clone()),
                expires_at_ms: lease.map(|lease| lease.expires_at),
                role,
            }
        })
        .collect()
}

/// The roles as a table for a terminal, after a blank line.
pub(super) fn table(leaders: &[LeaderStatus], now_ms: i64) -> String {
    let mut rows = vec![["ROLE", "RUN BY", "LEASE"].map(str::to_owned)];
    for leader in leaders {
        rows.push([
            leader.role.clone(),
            leader
                .holder
                .clone()
                .unwrap_or_else(|| "nobody now (taken within a second)".into()),
            leader.expires_at_ms.map_or_else(
                || "-".into(),
                |at| format!("{} left", duration((at - now_ms).max(0) as f64 / 1000.0)),
            ),
        ]);
    }
    format!("\n{}", columns(&rows))
}
