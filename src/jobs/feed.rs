//! What a job's end tells the platform (DESIGN §7.4), beyond a room's own changes
//! (`store/room_changes.rs`): written in the transaction of the worker's `finish` of the job.

use serde_json::Value;

use super::{send_direct_message, send_message, teardown_room};
use crate::store::jobs::{Job, Outcome};
use crate::store::outbox;
use crate::store::outbox_data::{EventData, JobDead, MessageSent, ModerationApplied, RoomDeleted};
use crate::store::rooms::{self as room_store, Room, RoomStatus};
use crate::store::{DbConnection, StoreError, moderation_log};

/// What `job`'s end means to the platform: `job.dead`; for a success, `message.sent` (the bot's
/// message and its event id; a direct message's with no room, its user and room id in `data`), `room.deleted` (the teardown of the Matrix room the deleted room
/// had; a room made by work racing the DELETE is no news) and `moderation.applied` for each
/// moderation call the job carried out (its audit entries).
pub fn job_finished(
    conn: &mut DbConnection,
    job: &Job,
    outcome: &Outcome,
    now_ms: i64,
) -> Result<(), StoreError> {
    let room = match (job.room_key, outcome) {
        (Some(key), Outcome::Dead { .. } | Outcome::Succeeded { .. }) => {
            room_store::get(conn, key)?
        }
        _ => None,
    };
    let place = room.as_ref().map(|r| (r.kind.as_str(), r.slug.as_str()));
    let tenant = job.tenant_id.as_str();
    let result = match outcome {
        Outcome::Dead { error } => {
            let data = EventData::JobDead(JobDead {
                job: job.id,
                kind: job.kind.clone(),
                error: error.clone(),
            });
            outbox::append(conn, tenant, place, &data, now_ms)?;
            return Ok(());
        }
        Outcome::Succeeded { result } => result,
        _ => return Ok(()),
    };
    if job.kind == send_message::KIND
        && let Some(event_id) = result["event_id"].as_str()
    {
        let data = EventData::MessageSent(MessageSent {
            job: job.id,
            event_id: event_id.to_owned(),
            user_id: None,
            room_id: None,
        });
        outbox::append(conn, tenant, place, &data, now_ms)?;
    }
    if job.kind == send_direct_message::KIND
        && let Some(event_id) = result["event_id"].as_str()
    {
        let payload: Option<send_direct_message::Payload> = serde_json::from_str(&job.payload).ok();
        let data = EventData::MessageSent(MessageSent {
            job: job.id,
            event_id: event_id.to_owned(),
            user_id: payload.map(|p| p.user_id),
            room_id: result["room_id"].as_str().map(str::to_owned),
        });
        outbox::append(conn, tenant, None, &data, now_ms)?;
    }
    if job.kind == teardown_room::KIND
        && let Some(room) = room.as_ref().filter(|room| tore_down(room, result))
    {
        let data = EventData::RoomDeleted(RoomDeleted {
            room_id: room.room_id.clone(),
            job: job.id,
        });
        outbox::append_for_room(conn, room, &data, now_ms)?;
    }
    for entry in moderation_log::for_job(conn, job.id)? {
        let place = entry.room_kind.as_deref().zip(entry.room_slug.as_deref());
        let data = EventData::ModerationApplied(ModerationApplied {
            job: job.id,
            action: entry.action,
            user_id: entry.user_id,
        });
        outbox::append(conn, tenant, place, &data, now_ms)?;
    }
    Ok(())
}

/// Whether a teardown that ended with `result` took down the Matrix room that `room`, still
/// deleted, had (or found that it never had one).
fn tore_down(room: &Room, result: &Value) -> bool {
    room.status == RoomStatus::Deleted && result["room_id"].as_str() == room.room_id.as_deref()
}
