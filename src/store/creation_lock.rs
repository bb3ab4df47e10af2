//! One `createRoom` per declared room across replicas (DESIGN §15): whoever makes a room's Matrix
//! room — a job, or an alias query answered by any replica — holds this lock from before
//! `createRoom` until the room's id is stored, and reads the room again once it has it, so the
//! loser finds the winner's room and adopts it. On PostgreSQL a session-level advisory lock keyed
//! by the room, on a connection of its own (a replica killed mid-creation lets go with its
//! session); on SQLite the one process's own per-room lock (`App::room_lock`) is the whole story.

use std::time::{Duration, Instant};

use diesel::sql_types::{Bool, Integer};
use diesel::{QueryableByName, RunQueryDsl};

use super::{DbConnection, StoreError};
use crate::config::DatabaseUrl;

/// The advisory locks' class (the first of their two keys; the room's key is the second): "omcr".
const CLASS: i32 = 0x6f6d_6372;
/// The class of a bot's direct-message room (`direct_rooms.id` the second key): "omdm".
const DIRECT_CLASS: i32 = 0x6f6d_646d;
/// How often a waiting replica asks again.
const POLL: Duration = Duration::from_millis(50);

/// Held until dropped (its session ends).
pub struct CreationLock {
    _session: Option<DbConnection>,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes room `room_key`'s creation lock, waiting up to `wait` for a replica making it now;
/// `Ok(None)` when that replica is still at it after `wait`. Blocking: run it on the blocking pool.
pub fn take(
    url: &DatabaseUrl,
    room_key: i64,
    wait: Duration,
) -> Result<Option<CreationLock>, StoreError> {
    take_in(url, CLASS, room_key, wait)
}

/// Like [`take`], for direct-message room `direct_key` (`direct_rooms.id`). On SQLite the caller
/// holds `App::direct_lock`.
pub fn take_direct(
    url: &DatabaseUrl,
    direct_key: i64,
    wait: Duration,
) -> Result<Option<CreationLock>, StoreError> {
    take_in(url, DIRECT_CLASS, direct_key, wait)
}

fn take_in(
    url: &DatabaseUrl,
    class: i32,
    room_key: i64,
    wait: Duration,
) -> Result<Option<CreationLock>, StoreError> {
    if let DatabaseUrl::Sqlite(_) = url {
        return Ok(Some(CreationLock { _session: None }));
    }
    let key = i32::try_from(room_key).map_err(|_| {
        StoreError::Unavailable(format!("room key {room_key} does not fit an advisory lock"))
    })?;
    let mut session = super::connection::connect(url, Duration::from_secs(5))
        .map_err(|error| StoreError::Unavailable(error.to_string()))?;
    let deadline = Instant::now() + wait;
    let mut waiting = false;
    loop {
        let locked = match &mut session {
            DbConnection::Postgres(c) => {
                diesel::sql_query("SELECT pg_try_advisory_lock($1, $2) AS locked")
                    .bind::<Integer, _>(class)
                    .bind::<Integer, _>(key)
                    .get_result::<Locked>(c)?
                    .locked
            }
            DbConnection::Sqlite(_) => true,
        };
        if locked {
            return Ok(Some(CreationLock {
                _session: Some(session),
            }));
        }
        if !std::mem::replace(&mut waiting, true) {
            tracing::info!(
                room_key,
                "another replica is making this room now: waiting for it, then taking what it made"
            );
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}
