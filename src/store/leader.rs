//! `leader`: which replica runs each singleton role (DESIGN §15), as a lease row per role. A
//! replica holds a role while its row names it and has not expired; it renews the row before then,
//! another replica takes it once it has, and a replica stopping deletes its rows so another takes
//! them at once.

use diesel::prelude::*;

use super::schema::leader;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// One role's lease as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = leader)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub expires_at: i64,
}

/// Takes or renews role `name` for `holder` until `until`: true when `holder` holds it now (the
/// row was missing, expired by `now_ms`, or already its own), false when another replica holds
/// it. One statement, so two replicas asking at once cannot both win.
pub fn hold(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    now_ms: i64,
    until: i64,
) -> Result<bool, StoreError> {
    // `ON CONFLICT … DO UPDATE … WHERE`: diesel's `FilterDsl` on the upsert, named in full
    // because `QueryDsl::filter` (for the tables below) shares the method's name.
    let written = on_backend!(conn, c => diesel::query_dsl::methods::FilterDsl::filter(
        diesel::insert_into(leader::table)
            .values((
                leader::name.eq(name),
                leader::holder.eq(holder),
                leader::expires_at.eq(until),
            ))
            .on_conflict(leader::name)
            .do_update()
            .set((leader::holder.eq(holder), leader::expires_at.eq(until))),
        leader::holder.eq(holder).or(leader::expires_at.lt(now_ms)),
    )
    .execute(c))?;
    Ok(written == 1)
}

/// Gives up every role `holder` holds; returns how many.
pub fn give_up(conn: &mut DbConnection, holder: &str) -> Result<usize, StoreError> {
    let deleted = on_backend!(conn, c => diesel::delete(leader::table.filter(leader::holder.eq(holder)))
        .execute(c))?;
    Ok(deleted)
}

/// Gives up role `name` when `holder` holds it (a role the config no longer has).
pub fn give_up_role(conn: &mut DbConnection, name: &str, holder: &str) -> Result<(), StoreError> {
    on_backend!(conn, c => diesel::delete(
        leader::table.filter(leader::name.eq(name)).filter(leader::holder.eq(holder)),
    )
    .execute(c))?;
    Ok(())
}

/// Every role's lease, by name.
pub fn all(conn: &mut DbConnection) -> Result<Vec<Lease>, StoreError> {
    let leases = on_backend!(conn, c => leader::table
        .select(Lease::as_select())
        .order(leader::name)
        .load(c))?;
    Ok(leases)
}
