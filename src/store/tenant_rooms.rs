//! A tenant's declared rooms by name, for messages that must say which rooms stand in the way
//! (a reload that would move the tenant to another homeserver).

use diesel::prelude::*;

use super::rooms::RoomStatus;
use super::schema::rooms;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// Up to `limit` of the tenant's declared (not deleted) rooms as `kind/slug`, sorted, and how many
/// there are in all.
pub fn live_names(
    conn: &mut DbConnection,
    tenant_id: &str,
    limit: i64,
) -> Result<(Vec<String>, i64), StoreError> {
    let deleted = RoomStatus::Deleted.as_str();
    let (names, total) = on_backend!(conn, c => {
        let live = || {
            rooms::table
                .filter(rooms::tenant_id.eq(tenant_id))
                .filter(rooms::status.ne(deleted))
        };
        let names: Vec<(String, String)> = live()
            .select((rooms::kind, rooms::slug))
            .order((rooms::kind, rooms::slug))
            .limit(limit)
            .load(c)?;
        let total: i64 = live().count().get_result(c)?;
        Ok::<_, diesel::result::Error>((names, total))
    })?;
    let names = names
        .into_iter()
        .map(|(kind, slug)| format!("{kind}/{slug}"))
        .collect();
    Ok((names, total))
}
