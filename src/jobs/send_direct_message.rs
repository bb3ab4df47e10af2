//! `send_direct_message`: the tenant's bot sends a message the platform posted to one user
//! (DESIGN §7.3 "Across the tenant") in their direct-message room, made on the first message and
//! reused after. The client-server txnId comes from the job, as for room messages, so a retry
//! sends nothing twice.
//!
//! The room is made once: the platform call wrote the tenant's and user's `direct_rooms` row, and
//! the job makes the room under the row's creation lock (in this process and across replicas)
//! and stores its id before sending; whoever waited reads the id the other stored. A crash between
//! `createRoom`'s answer and storing the id (no alias names a direct room, so nothing finds it
//! again) leaves that room behind, the user invited to it, and the next attempt makes another.
//!
//! Before each message the bot reads the room: a user who rejected the invitation or left is
//! invited again (the platform wants them told); a room the bot itself was removed from is
//! forgotten and a new one made. The bot's `m.direct` lists the room under the user.
//! Jobs to one user run side by side, so two messages posted at once may arrive in either order.

use std::sync::Arc;
use std::time::Duration;

use ruma::{OwnedRoomId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::JobError;
use super::send_message::{self, Message};
use crate::app::App;
use crate::matrix::{Client, RetryKind};
use crate::store::direct_rooms::{self, DirectRoom};
use crate::store::jobs::{Job, NewJob};
use crate::store::unix_ms;

pub const KIND: &str = "send_direct_message";

/// How long a creation waits for another replica making the same room.
const CREATION_WAIT: Duration = Duration::from_secs(60);

/// The job's payload: who is messaged, and what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    pub user_id: String,
    pub message: Message,
}

pub fn new_job(tenant_id: &str, user_id: &UserId, message: &Message) -> NewJob {
    let payload = Payload {
        user_id: user_id.to_string(),
        message: message.clone(),
    };
    NewJob {
        tenant_id: tenant_id.to_owned(),
        room_key: None,
        kind: KIND.to_owned(),
        payload: serde_json::to_value(payload).expect("a message serializes"),
    }
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let Payload { user_id, message } = super::payload(job)?;
    let user = UserId::parse(&user_id).map_err(|error| {
        JobError::Permanent(format!(
            "{user_id:?} is not a Matrix user id ({error}): cancel the job"
        ))
    })?;
    let bot = super::tenant_bot(app, job).await?;
    let homeserver = app.client_for(&bot);
    let room_id = ensure_direct_room(app, &homeserver, job, &bot, &user).await?;
    homeserver
        .ensure_direct_listed(&bot, &user, &room_id)
        .await?;
    let content = send_message::content(&message);
    let event_id = homeserver
        .send_message(&bot, &room_id, &send_message::txn_id(job), &content)
        .await?;
    Ok(json!({"event_id": event_id, "room_id": room_id}))
}

/// The bot's direct-message room with `user`, the user in it or invited: the stored one (the user
/// invited again if they left or rejected it), or a new one when there is none or the bot lost it.
async fn ensure_direct_room(
    app: &Arc<App>,
    homeserver: &Client,
    job: &Job,
    bot: &UserId,
    user: &UserId,
) -> Result<OwnedRoomId, JobError> {
    let row = stored(app, job, user).await?;
    if let Some(room_id) = &row.room_id {
        let parsed = RoomId::parse(room_id)
            .map_err(|e| JobError::Permanent(format!("stored room id {room_id:?}: {e}")))?;
        if in_room(homeserver, bot, user, &parsed).await? {
            return Ok(parsed);
        }
        tracing::warn!(room_id = %parsed, %user, "the bot is no longer in its direct room with the user: making another");
        let (id, old, now) = (row.id, room_id.clone(), unix_ms(app.clock.now()));
        app.store
            .write(move |c| direct_rooms::set_room(c, id, Some(&old), None, now))
            .await?;
    }
    create_once(app, homeserver, job, bot, user, row.id).await
}

/// The `direct_rooms` row of the job's tenant and `user` (the platform call wrote it; written now
/// if it went missing).
async fn stored(app: &Arc<App>, job: &Job, user: &UserId) -> Result<DirectRoom, JobError> {
    let (tenant, user, now) = (
        job.tenant_id.clone(),
        user.to_string(),
        unix_ms(app.clock.now()),
    );
    Ok(app
        .store
        .write(move |c| direct_rooms::ensure(c, &tenant, &user, now))
        .await?)
}

/// Whether the bot is still in `room_id`; a user who is neither joined nor invited is invited
/// again.
async fn in_room(
    homeserver: &Client,
    bot: &UserId,
    user: &UserId,
    room_id: &RoomId,
) -> Result<bool, JobError> {
    let state = match homeserver.room_state(bot, room_id).await {
        Ok(state) => state,
        // Kicked, or left: the bot may no longer read the room.
        Err(error) if error.is_forbidden() && error.retry_kind() == RetryKind::Permanent => {
            return Ok(false);
        }
        Err(error) => return Err(error.into()),
    };
    let memberships = state.memberships();
    if memberships.get(bot).map(String::as_str) != Some("join") {
        return Ok(false);
    }
    match memberships.get(user).map(String::as_str) {
        Some("join" | "invite") => {}
        Some("ban") => {
            return Err(JobError::Permanent(format!(
                "{user} is banned from the bot's direct room {room_id}: unban them there to message them"
            )));
        }
        _ => {
            tracing::info!(%room_id, %user, "the user left or rejected the direct room: inviting them again");
            homeserver.invite(bot, room_id, user).await?;
        }
    }
    Ok(true)
}

/// Makes the direct room of row `direct_key`, once: under its creation lock, reading the row
/// again first, so a job that waited for another takes the room that one stored.
async fn create_once(
    app: &Arc<App>,
    homeserver: &Client,
    job: &Job,
    bot: &UserId,
    user: &UserId,
    direct_key: i64,
) -> Result<OwnedRoomId, JobError> {
    let lock = app.direct_lock(direct_key);
    let _creating = lock.lock().await;
    let Some(_across_replicas) = app
        .store
        .direct_creation_lock(direct_key, CREATION_WAIT)
        .await?
    else {
        return Err(JobError::Busy(format!(
            "another replica has been making this direct room for over {} s; it is tried again",
            CREATION_WAIT.as_secs()
        )));
    };
    if let Some(room_id) = stored(app, job, user).await?.room_id {
        return RoomId::parse(&room_id)
            .map_err(|e| JobError::Permanent(format!("stored room id {room_id:?}: {e}")));
    }
    let room_id = homeserver.create_direct_room(bot, user).await?;
    tracing::info!(%room_id, %user, "created the bot's direct room with the user");
    let (stored_id, now) = (room_id.to_string(), unix_ms(app.clock.now()));
    app.store
        .write(move |c| direct_rooms::set_room(c, direct_key, None, Some(&stored_id), now))
        .await?;
    Ok(room_id)
}
