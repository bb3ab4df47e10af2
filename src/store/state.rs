//! `appservice_state`: small facts the daemon keeps about itself, shared by its replicas.

use diesel::prelude::*;

use super::schema::appservice_state;
use super::{DbConnection, StoreError};
use crate::{on_backend, write_transaction};

/// The room the default homeserver's sender posts loop-back probe markers in.
pub const PROBE_ROOM_ID: &str = "probe_room_id";

/// The key of homeserver `id`'s probe room: [`PROBE_ROOM_ID`] for the default one (as before
/// there were several), `probe_room_id:{id}` for the others.
pub fn probe_room_key(id: &str) -> String {
    if id == crate::config::DEFAULT_ID {
        PROBE_ROOM_ID.to_owned()
    } else {
        format!("{PROBE_ROOM_ID}:{id}")
    }
}

/// The key of homeserver `id`'s last verdict, stored by the replica that checks it for the others
/// (`homeservers/watchdog.rs`).
pub fn health_key(id: &str) -> String {
    format!("homeserver_health:{id}")
}

pub fn get(conn: &mut DbConnection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(on_backend!(conn, c => appservice_state::table
        .find(key)
        .select(appservice_state::value)
        .first::<String>(c)
        .optional())?)
}

pub fn set(conn: &mut DbConnection, key: &str, value: &str, now_ms: i64) -> Result<(), StoreError> {
    write_transaction!(conn, c => {
        diesel::delete(appservice_state::table.find(key)).execute(c)?;
        diesel::insert_into(appservice_state::table)
            .values((
                appservice_state::key.eq(key),
                appservice_state::value.eq(value),
                appservice_state::updated_at.eq(now_ms),
            ))
            .execute(c)?;
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}
