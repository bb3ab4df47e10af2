//! A tenant's declared rooms by name, for messages that must say which rooms stand in the way
//! (a start or reload that would move the tenant to another homeserver).

use diesel::prelude::*;

use super::rooms::RoomStatus;
use super::schema::rooms;
use super::{DbConnection, StoreError};
use crate::on_backend;

/// A tenant's declared rooms on another homeserver than the one given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elsewhere {
    /// The homeserver of the first of them (by kind and slug).
    pub homeserver: String,
    /// Up to the limit asked for, as `kind/slug`, sorted.
    pub names: Vec<String>,
    /// How many there are in all.
    pub total: i64,
}

/// The tenant's declared (not deleted) rooms that live on another homeserver than `homeserver`;
/// `None` when there are none.
pub fn live_elsewhere(
    conn: &mut DbConnection,
    tenant_id: &str,
    homeserver: &str,
    limit: i64,
) -> Result<Option<Elsewhere>, StoreError> {
    let deleted = RoomStatus::Deleted.as_str();
    let (rows, total) = on_backend!(conn, c => {
        let elsewhere = || {
            rooms::table
                .filter(rooms::tenant_id.eq(tenant_id))
                .filter(rooms::status.ne(deleted))
                .filter(rooms::homeserver.ne(homeserver))
        };
        let rows: Vec<(String, String, String)> = elsewhere()
            .select((rooms::homeserver, rooms::kind, rooms::slug))
            .order((rooms::kind, rooms::slug))
            .limit(limit)
            .load(c)?;
        let total: i64 = elsewhere().count().get_result(c)?;
        Ok::<_, diesel::result::Error>((rows, total))
    })?;
    let Some((first, _, _)) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Elsewhere {
        homeserver: first.clone(),
        names: rows
            .iter()
            .map(|(_, kind, slug)| format!("{kind}/{slug}"))
            .collect(),
        total,
    }))
}
