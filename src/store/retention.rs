//! Retention (DESIGN §7.1): deletes rows older than their window, one small batch per call, so
//! each write transaction is short and acknowledgements never wait long behind it. `jobs/prune.rs`
//! calls again until a batch comes back short.
//!
//! What goes: processed inbox events (never pending ones), Synapse's transactions and quarantine
//! rows by when they arrived; jobs that ended (succeeded, failed, dead, cancelled) by when they
//! ended — except a room's latest job, which answers the platform's repeated PUT or DELETE;
//! moderation audit entries by when the call was made and outbox events by when they happened
//! (both with the jobs' window; a tenant's event ids keep counting in `outbox_heads`). Reports and
//! their `report.created` events carry chat content (the reported event), so they go with the
//! inbox's window.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::jobs::JobStatus;
use super::schema::{
    as_transactions, inbox_events, jobs, moderation_log, outbox_events, quarantine, reports,
};
use super::{DbConnection, StoreError};
use crate::write_transaction;

/// Rows deleted per statement.
pub const BATCH: usize = 500;

/// A table the pruner keeps short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    InboxEvents,
    AsTransactions,
    Quarantine,
    Jobs,
    ModerationLog,
    OutboxEvents,
    Reports,
    /// `report.created` events, which carry the reported event's content.
    ReportEvents,
}

impl Table {
    pub const ALL: [Self; 8] = [
        Self::InboxEvents,
        Self::AsTransactions,
        Self::Quarantine,
        Self::Jobs,
        Self::ModerationLog,
        Self::OutboxEvents,
        Self::Reports,
        Self::ReportEvents,
    ];

    /// The table's name, also the metric's `table` label.
    pub fn name(self) -> &'static str {
        match self {
            Self::InboxEvents => "inbox_events",
            Self::AsTransactions => "as_transactions",
            Self::Quarantine => "quarantine",
            Self::Jobs => "jobs",
            Self::ModerationLog => "moderation_log",
            Self::OutboxEvents => "outbox_events",
            Self::Reports => "reports",
            Self::ReportEvents => "report_events",
        }
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

const OLD_JOBS_POSTGRES: &str = "
SELECT j.id FROM jobs j
WHERE j.status IN ('succeeded', 'failed', 'dead', 'cancelled') AND j.updated_at < $1
  AND (j.room_key IS NULL OR EXISTS (SELECT 1 FROM jobs n WHERE n.room_key = j.room_key AND n.id > j.id))
ORDER BY j.updated_at
LIMIT $2";

const OLD_JOBS_SQLITE: &str = "
SELECT j.id FROM jobs j
WHERE j.status IN ('succeeded', 'failed', 'dead', 'cancelled') AND j.updated_at < ?1
  AND (j.room_key IS NULL OR EXISTS (SELECT 1 FROM jobs n WHERE n.room_key = j.room_key AND n.id > j.id))
ORDER BY j.updated_at
LIMIT ?2";

/// Deletes at most [`BATCH`] rows of `table` older than `cutoff_ms` (unix ms); returns how many.
/// The delete checks each row's age and state again, so a job retried meanwhile stays.
pub fn prune_batch(
    conn: &mut DbConnection,
    table: Table,
    cutoff_ms: i64,
) -> Result<usize, StoreError> {
    let old_jobs = match conn {
        DbConnection::Postgres(_) => OLD_JOBS_POSTGRES,
        DbConnection::Sqlite(_) => OLD_JOBS_SQLITE,
    };
    let limit = BATCH as i64;
    let deleted = write_transaction!(conn, c => match table {
        Table::InboxEvents => {
            let processed = inbox_events::table
                .filter(inbox_events::processed_at.is_not_null())
                .filter(inbox_events::received_at.lt(cutoff_ms));
            let ids: Vec<i64> = processed
                .order(inbox_events::received_at)
                .select(inbox_events::id)
                .limit(limit)
                .load(c)?;
            diesel::delete(processed.filter(inbox_events::id.eq_any(&ids))).execute(c)
        }
        Table::AsTransactions => {
            let old = as_transactions::table.filter(as_transactions::received_at.lt(cutoff_ms));
            let ids: Vec<i64> = old
                .order(as_transactions::received_at)
                .select(as_transactions::id)
                .limit(limit)
                .load(c)?;
            diesel::delete(old.filter(as_transactions::id.eq_any(&ids))).execute(c)
        }
        Table::Quarantine => {
            let old = quarantine::table.filter(quarantine::received_at.lt(cutoff_ms));
            let ids: Vec<i64> = old
                .order(quarantine::received_at)
                .select(quarantine::id)
                .limit(limit)
                .load(c)?;
            diesel::delete(old.filter(quarantine::id.eq_any(&ids))).execute(c)
        }
        Table::Jobs => {
            let rows: Vec<IdRow> = diesel::sql_query(old_jobs)
                .bind::<BigInt, _>(cutoff_ms)
                .bind::<BigInt, _>(limit)
                .load(c)?;
            let ids: Vec<i64> = rows.into_iter().map(|row| row.id).collect();
            diesel::delete(
                jobs::table
                    .filter(jobs::id.eq_any(&ids))
                    .filter(jobs::status.eq_any(JobStatus::FINISHED))
                    .filter(jobs::updated_at.lt(cutoff_ms)),
            )
            .execute(c)
        }
        Table::ModerationLog => {
            let old = moderation_log::table.filter(moderation_log::at.lt(cutoff_ms));
            let ids: Vec<i64> = old
                .order(moderation_log::at)
                .select(moderation_log::id)
                .limit(limit)
                .load(c)?;
            diesel::delete(old.filter(moderation_log::id.eq_any(&ids))).execute(c)
        }
        Table::OutboxEvents => {
            let old = outbox_events::table.filter(outbox_events::at_ms.lt(cutoff_ms));
            let ids: Vec<i64> = old
                .order(outbox_events::at_ms)
                .select(outbox_events::id)
                .limit(limit)
                .load(c)?;
            diesel::delete(old.filter(outbox_events::id.eq_any(&ids))).execute(c)
        }
        Table::Reports => {
            let old = reports::table.filter(reports::at.lt(cutoff_ms));
            let ids: Vec<i64> = old
                .order(reports::at)
                .select(reports::id)
                .limit(limit)
                .load(c)?;
            diesel::delete(old.filter(reports::id.eq_any(&ids))).execute(c)
        }
        Table::ReportEvents => {
            let old = outbox_events::table
                .filter(outbox_events::event_type.eq(super::outbox::EventType::ReportCreated.as_str()))
                .filter(outbox_events::at_ms.lt(cutoff_ms));
            let ids: Vec<i64> = old
                .order(outbox_events::at_ms)
                .select(outbox_events::id)
                .limit(limit)
                .load(c)?;
            diesel::delete(old.filter(outbox_events::id.eq_any(&ids))).execute(c)
        }
    })?;
    Ok(deleted)
}
