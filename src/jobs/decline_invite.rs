//! `decline_invite`: a tenant's bot was invited into a room the platform does not manage; it leaves
//! (declines) and forgets the room.

use std::sync::Arc;

use ruma::RoomId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::JobError;
use crate::app::App;
use crate::store::jobs::{Job, NewJob};

pub const KIND: &str = "decline_invite";

#[derive(Deserialize)]
struct Payload {
    room_id: String,
}

pub fn new_job(tenant_id: &str, room_id: &str) -> NewJob {
    NewJob {
        tenant_id: tenant_id.to_owned(),
        room_key: None,
        kind: KIND.to_owned(),
        payload: json!({"room_id": room_id}),
    }
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let payload: Payload = super::payload(job)?;
    let room_id =
        RoomId::parse(&payload.room_id).map_err(|error| JobError::Permanent(error.to_string()))?;
    let bot = super::tenant_bot(app, job).await?;
    app.client_for(&bot)
        .ensure_left_and_forgotten(&bot, &room_id)
        .await?;
    Ok(json!({"declined": room_id}))
}
