//! Webhook delivery cursors, one row per tenant with a webhook (see `src/webhooks/` for the
//! guarantees). Every change but [`ensure`] and [`retry_now`] is made only by the replica holding
//! the tenant's lease, and says whether it still held it.

use diesel::prelude::*;

use super::outbox;
use super::schema::webhook_deliveries as wd;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// A tenant's delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = wd)]
pub struct Delivery {
    pub tenant: String,
    pub delivered_seq: i64,
    pub attempts: i32,
    pub next_attempt_ms: i64,
    pub failing_since_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub last_delivered_ms: Option<i64>,
    pub failed_total: i64,
    pub last_failed_seq: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
}

/// Gives `tenant` a delivery row if it has none, starting at its outbox head: a new webhook gets
/// the events after it was configured (the feed serves the older ones). Returns whether it was new.
pub fn ensure(conn: &mut DbConnection, tenant: &str, now_ms: i64) -> Result<bool, StoreError> {
    conn.write(|conn| {
        let head = outbox::head(conn, tenant)?;
        let inserted = on_backend!(conn, c => diesel::insert_into(wd::table)
            .values((
                wd::tenant.eq(tenant),
                wd::delivered_seq.eq(head),
                wd::attempts.eq(0),
                wd::next_attempt_ms.eq(now_ms),
                wd::failed_total.eq(0_i64),
                wd::created_ms.eq(now_ms),
            ))
            .on_conflict(wd::tenant)
            .do_nothing()
            .execute(c))?;
        Ok(inserted == 1)
    })
}

/// The tenants among `tenants` with an event to deliver now: past their backoff, no lease but
/// `owner`'s in force, and an event after their cursor. Reads only.
pub fn due(
    conn: &mut DbConnection,
    tenants: &[String],
    owner: &str,
    now_ms: i64,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String, i64)> = on_backend!(conn, c => wd::table
        .filter(wd::tenant.eq_any(tenants))
        .filter(wd::next_attempt_ms.le(now_ms))
        .filter(wd::lease_owner.is_null().or(wd::lease_until_ms.lt(now_ms)).or(wd::lease_owner.eq(owner)))
        .select((wd::tenant, wd::delivered_seq))
        .load(c))?;
    let mut due = Vec::new();
    for (tenant, delivered) in rows {
        if outbox::head(conn, &tenant)? > delivered {
            due.push(tenant);
        }
    }
    Ok(due)
}

/// Takes `tenant`'s lease for `owner` until `lease_until_ms` when it is due and no other lease is
/// in force; the row as claimed, or `None` when another replica holds it or it is not due. On
/// PostgreSQL a concurrent claim waits for the row and then finds the lease taken.
pub fn claim(
    conn: &mut DbConnection,
    tenant: &str,
    owner: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<Option<Delivery>, StoreError> {
    let claimed = on_backend!(conn, c => diesel::update(
        wd::table
            .filter(wd::tenant.eq(tenant))
            .filter(wd::next_attempt_ms.le(now_ms))
            .filter(wd::lease_owner.is_null().or(wd::lease_until_ms.lt(now_ms)).or(wd::lease_owner.eq(owner))),
    )
    .set((wd::lease_owner.eq(owner), wd::lease_until_ms.eq(lease_until_ms)))
    .returning(Delivery::as_returning())
    .get_result(c)
    .optional())?;
    Ok(claimed)
}

/// The rows `owner` leases on `tenant` (the filter every change by the lease holder uses).
macro_rules! held {
    ($tenant:expr, $owner:expr) => {
        wd::table
            .filter(wd::tenant.eq($tenant))
            .filter(wd::lease_owner.eq($owner))
    };
}

/// Event `seq` was acknowledged (2xx): the cursor moves to it, the retry state clears and the
/// lease is extended to `lease_until_ms`. `false`: `owner` no longer held the lease.
pub fn acknowledged(
    conn: &mut DbConnection,
    tenant: &str,
    owner: &str,
    seq: i64,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<bool, StoreError> {
    let updated = on_backend!(conn, c => diesel::update(held!(tenant, owner).filter(wd::delivered_seq.lt(seq)))
        .set((
            wd::delivered_seq.eq(seq),
            wd::attempts.eq(0),
            wd::failing_since_ms.eq(None::<i64>),
            wd::next_attempt_ms.eq(now_ms),
            wd::last_delivered_ms.eq(now_ms),
            wd::lease_until_ms.eq(lease_until_ms),
        ))
        .execute(c))?;
    Ok(updated == 1)
}

/// An attempt at the next event, failing since `failing_since_ms`, failed with `error`: another
/// comes at `next_attempt_ms`, and the lease is released so that any replica may make it.
/// `false`: `owner` no longer held the lease.
pub fn attempt_failed(
    conn: &mut DbConnection,
    tenant: &str,
    owner: &str,
    error: &str,
    failing_since_ms: i64,
    now_ms: i64,
    next_attempt_ms: i64,
) -> Result<bool, StoreError> {
    let updated = on_backend!(conn, c => diesel::update(held!(tenant, owner))
        .set((
            wd::attempts.eq(wd::attempts + 1),
            wd::failing_since_ms.eq(failing_since_ms),
            wd::last_error.eq(error),
            wd::last_error_ms.eq(now_ms),
            wd::next_attempt_ms.eq(next_attempt_ms),
            wd::lease_owner.eq(None::<String>),
            wd::lease_until_ms.eq(None::<i64>),
        ))
        .execute(c))?;
    Ok(updated == 1)
}

/// Event `seq` kept failing for the whole retry window: it is given up (counted, `error` kept)
/// and the cursor moves past it, the lease extended to `lease_until_ms`. `false`: `owner` no
/// longer held the lease.
pub fn given_up(
    conn: &mut DbConnection,
    tenant: &str,
    owner: &str,
    seq: i64,
    error: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<bool, StoreError> {
    let updated = on_backend!(conn, c => diesel::update(held!(tenant, owner).filter(wd::delivered_seq.lt(seq)))
        .set((
            wd::delivered_seq.eq(seq),
            wd::attempts.eq(0),
            wd::failing_since_ms.eq(None::<i64>),
            wd::last_error.eq(error),
            wd::last_error_ms.eq(now_ms),
            wd::failed_total.eq(wd::failed_total + 1),
            wd::last_failed_seq.eq(seq),
            wd::next_attempt_ms.eq(now_ms),
            wd::lease_until_ms.eq(lease_until_ms),
        ))
        .execute(c))?;
    Ok(updated == 1)
}

/// Ends `owner`'s lease on `tenant` (caught up, or the webhook is gone).
pub fn release(conn: &mut DbConnection, tenant: &str, owner: &str) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::update(held!(tenant, owner))
        .set((wd::lease_owner.eq(None::<String>), wd::lease_until_ms.eq(None::<i64>)))
        .execute(c))?;
    Ok(())
}

/// Ends every lease `owner` holds (a stop): another replica delivers those tenants at once.
pub fn release_all(conn: &mut DbConnection, owner: &str) -> Result<usize, StoreError> {
    let released = on_backend!(conn, c => diesel::update(wd::table.filter(wd::lease_owner.eq(owner)))
        .set((wd::lease_owner.eq(None::<String>), wd::lease_until_ms.eq(None::<i64>)))
        .execute(c))?;
    Ok(released)
}

/// The tenant's webhook changed (a reload): its next attempt is due now and the backoff starts
/// over. The retry window of an event already failing keeps running.
pub fn retry_now(conn: &mut DbConnection, tenant: &str, now_ms: i64) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::update(wd::table.filter(wd::tenant.eq(tenant)))
        .set((wd::next_attempt_ms.eq(now_ms), wd::attempts.eq(0)))
        .execute(c))?;
    Ok(())
}

/// A tenant's delivery state with its outbox: what status and metrics show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub delivery: Delivery,
    /// The seq of the tenant's newest event.
    pub head: i64,
    /// When the oldest undelivered event happened (unix ms); `None` when caught up.
    pub oldest_undelivered_at_ms: Option<i64>,
}

/// Every tenant's delivery state, by tenant.
pub fn progress(conn: &mut DbConnection) -> Result<Vec<Progress>, StoreError> {
    let deliveries: Vec<Delivery> = on_backend!(conn, c => wd::table
        .order(wd::tenant)
        .select(Delivery::as_select())
        .load(c))?;
    let mut all = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let head = outbox::head(conn, &delivery.tenant)?;
        let oldest_undelivered_at_ms =
            outbox::list_after(conn, &delivery.tenant, delivery.delivered_seq, 1)?
                .first()
                .map(|event| event.at_ms);
        all.push(Progress {
            delivery,
            head,
            oldest_undelivered_at_ms,
        });
    }
    Ok(all)
}
