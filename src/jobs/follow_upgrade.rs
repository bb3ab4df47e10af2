//! `follow_upgrade`: a managed room was upgraded (`m.room.tombstone`). The bot joins the
//! replacement, the declaration moves to it, and members and levels are applied there.
//!
//! Synapse does not bring members along on a client upgrade, and from room version 12 on the
//! upgrader is the new room's creator: the bot keeps its power only where the copied power levels
//! list it (versions before 12) or the upgrader names it in `additional_creators`. Where it cannot
//! join or act, the job fails with a sentence saying what to do, and the replacement is not yet
//! the room's; an invite of the bot into it is then not declined (see [`is_pending_target`]).
//! A room deleted before or while the job runs is not followed (DESIGN §7.1: DELETE wins).

use std::sync::Arc;

use ruma::RoomId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{JobError, diagnose, ensure_room, repair_room, teardown_room};
use crate::app::App;
use crate::store::jobs::{self as job_store, Job, NewJob};
use crate::store::room_changes;
use crate::store::rooms::{self as room_store, Room, RoomStatus};
use crate::store::{DbConnection, StoreError, unix_ms};

pub const KIND: &str = "follow_upgrade";

#[derive(Deserialize)]
struct Payload {
    replacement_room: String,
}

pub fn new_job(room: &Room, replacement_room: &str) -> NewJob {
    NewJob {
        tenant_id: room.tenant_id.clone(),
        room_key: Some(room.id),
        kind: KIND.to_owned(),
        payload: json!({"replacement_room": replacement_room}),
    }
}

/// Whether `room_id` is the replacement a live room's unfinished (or failed, retryable) upgrade
/// job waits to follow.
pub fn is_pending_target(conn: &mut DbConnection, room_id: &str) -> Result<bool, StoreError> {
    Ok(room_store::unsettled_job_payloads(conn, KIND)?
        .iter()
        .filter_map(|payload| serde_json::from_str::<Payload>(payload).ok())
        .any(|payload| payload.replacement_room == room_id))
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let payload: Payload = super::payload(job)?;
    let room_key = job
        .room_key
        .ok_or_else(|| JobError::Permanent("the job names no room".into()))?;
    let replacement = RoomId::parse(&payload.replacement_room)
        .map_err(|error| JobError::Permanent(error.to_string()))?;
    let room = app
        .store
        .run(move |c| room_store::get(c, room_key))
        .await?
        .ok_or_else(|| JobError::Permanent(format!("room {room_key} is no longer declared")))?;
    if !room.status.is_live() {
        return Ok(json!({"skipped": "the room was deleted"}));
    }
    let bot = super::tenant_bot(app, job).await?;
    match app.client_for(&bot).join(&bot, &replacement).await {
        Ok(()) => {}
        Err(error) if error.is_no_way_in() => {
            return Err(JobError::Permanent(format!(
                "the bot {bot} cannot join the upgraded room {replacement}: invite it there (and, from room version 12, name it in additional_creators when upgrading), then retry the job"
            )));
        }
        Err(error) => return Err(error.into()),
    }
    let mut state = app.client_for(&bot).room_state(&bot, &replacement).await?;
    if !diagnose::healthy(&state, &bot) {
        let finding = diagnose::classify(app, &bot, &replacement, Ok(state)).await?;
        if finding
            != (diagnose::Finding::BotLacksPower {
                sender_can_repair: true,
            })
        {
            return Err(JobError::Permanent(format!(
                "the bot {bot} joined the upgraded room {replacement} but has no power there: give it power level 100 in that room (or, from room version 12, upgrade again naming it in additional_creators), then retry the job"
            )));
        }
        repair_room::sender_repair(app, &bot, &replacement).await?;
        state = app.client_for(&bot).room_state(&bot, &replacement).await?;
    }
    let version = state
        .create()
        .and_then(|(_, content)| content["room_version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "1".to_owned());
    let (id, generation, now) = (
        replacement.to_string(),
        room.generation,
        unix_ms(app.clock.now()),
    );
    let teardown = teardown_room::new_job_for(&room, Some(&id), &[]);
    let followed = room.clone();
    let moved = app
        .store
        .write(move |c| {
            c.write(|c| {
                if !room_changes::set_created(c, room_key, generation, &id, &version, now)? {
                    // Deleted while the bot joined: it leaves the replacement again.
                    job_store::enqueue(c, &teardown, now)?;
                    return Ok(false);
                }
                // Not ready again until members and levels are applied in the new room.
                room_changes::set_status(c, room_key, RoomStatus::Pending, None, now)?;
                super::create_room::queue_followers(c, &followed, now)?;
                crate::store::members::forget_applied_levels(c, room_key, now)?;
                Ok(true)
            })
        })
        .await?;
    if !moved {
        app.jobs_wakeup.notify_one();
        return Ok(json!({"skipped": "the room was deleted while the upgrade was followed"}));
    }
    tracing::info!(%replacement, "followed the room upgrade");
    if let Some(old) = room
        .room_id
        .as_deref()
        .and_then(|id| RoomId::parse(id).ok())
    {
        super::ensure_directory::delist(app, &bot, &room.tenant_id, &old).await?;
    }
    ensure_room::converge(app, job.id, room_key, Some(generation)).await
}
