//! `follow_upgrade`: a managed room was upgraded (`m.room.tombstone`). The bot joins the
//! replacement, the declaration moves to it, and members and levels are applied there.
//!
//! Synapse does not bring members along on a client upgrade, and from room version 12 on the
//! upgrader is the new room's creator: the bot keeps its power only where the copied power levels
//! list it (versions before 12) or the upgrader names it in `additional_creators`. Where it cannot
//! join or act, the job fails with a sentence saying what to do.

use std::sync::Arc;

use ruma::RoomId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{JobError, ensure_room};
use crate::app::App;
use crate::store::jobs::{Job, NewJob};
use crate::store::rooms::{self as room_store, Room, RoomStatus};
use crate::store::unix_ms;

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

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let payload: Payload = super::payload(job)?;
    let room_key = job
        .room_key
        .ok_or_else(|| JobError::Permanent("the job names no room".into()))?;
    let replacement = RoomId::parse(&payload.replacement_room)
        .map_err(|error| JobError::Permanent(error.to_string()))?;
    let bot = super::tenant_bot(app, job).await?;
    match app.homeserver().join(&bot, &replacement).await {
        Ok(()) => {}
        Err(error) if error.is_no_way_in() => {
            return Err(JobError::Permanent(format!(
                "the bot {bot} cannot join the upgraded room {replacement}: invite it there (and, from room version 12, name it in additional_creators when upgrading), then retry the job"
            )));
        }
        Err(error) => return Err(error.into()),
    }
    let state = app.homeserver().room_state(&bot, &replacement).await?;
    let version = state
        .create()
        .and_then(|(_, content)| content["room_version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "1".to_owned());
    let (id, now) = (replacement.to_string(), unix_ms(app.clock.now()));
    app.store
        .write(move |c| {
            c.write(|c| {
                room_store::set_created(c, room_key, &id, &version, now)?;
                // Not ready again until members and levels are applied in the new room.
                room_store::set_status(c, room_key, RoomStatus::Pending, None, now)?;
                room_store::forget_applied_levels(c, room_key, now)
            })
        })
        .await?;
    tracing::info!(%replacement, "followed the room upgrade");
    ensure_room::run(app, job).await
}
