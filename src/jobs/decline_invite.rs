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
    let payload: Payload = serde_json::from_str(&job.payload).map_err(|error| {
        JobError::Permanent(format!("the job's payload is not readable ({error})"))
    })?;
    let tenant = app
        .config
        .tenants
        .iter()
        .find(|t| t.id == job.tenant_id)
        .ok_or_else(|| {
            JobError::Permanent(format!(
                "tenant {} is no longer configured: cancel the job",
                job.tenant_id
            ))
        })?;
    let room_id =
        RoomId::parse(&payload.room_id).map_err(|error| JobError::Permanent(error.to_string()))?;
    let bot = app.config.bot_user_id(tenant);
    app.ensure_bot(tenant).await?;
    app.homeserver
        .ensure_left_and_forgotten(&bot, &room_id)
        .await?;
    Ok(json!({"declined": room_id}))
}
