//! `send_message`: the tenant's bot sends a message the platform posted (DESIGN §7.2) into the
//! room, after the room's earlier jobs. The client-server txnId comes from the job, so every
//! attempt sends the same transaction and Synapse keeps one event however often it is retried.

use std::sync::Arc;

use ruma::events::Mentions;
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{OwnedTransactionId, RoomId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::JobError;
use crate::app::App;
use crate::matrix::RetryKind;
use crate::store::jobs::{Job, NewJob};
use crate::store::rooms::{self as room_store, Room};

pub const KIND: &str = "send_message";

/// `m.notice` (the default: bots do not answer it, and by default it does not notify) or `m.text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub enum MessageType {
    #[default]
    #[serde(rename = "m.notice")]
    Notice,
    #[serde(rename = "m.text")]
    Text,
}

/// What the platform asked the bot to say; the job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// Plain text; the fallback when `html` is given.
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default)]
    pub msgtype: MessageType,
    #[serde(default)]
    pub mentions: Mentions,
}

pub fn new_job(room: &Room, message: &Message) -> NewJob {
    NewJob {
        tenant_id: room.tenant_id.clone(),
        room_key: Some(room.id),
        kind: KIND.to_owned(),
        payload: serde_json::to_value(message).expect("a message serializes"),
    }
}

/// The job's client-server transaction id: its random `txn_prefix` (fixed for the job's life)
/// and its id — the same on every attempt, and never another job's, whichever tenant, bot or
/// replica sends it.
pub fn txn_id(job: &Job) -> OwnedTransactionId {
    format!("om-{}-{}", job.txn_prefix, job.id).into()
}

/// The `m.room.message` content: `format: org.matrix.custom.html` with `formatted_body` when
/// there is HTML (`body` the plain fallback), and `m.mentions` always, `{}` when nobody is.
pub fn content(message: &Message) -> RoomMessageEventContent {
    let content = match (message.msgtype, &message.html) {
        (MessageType::Notice, None) => RoomMessageEventContent::notice_plain(&message.body),
        (MessageType::Notice, Some(html)) => {
            RoomMessageEventContent::notice_html(&message.body, html)
        }
        (MessageType::Text, None) => RoomMessageEventContent::text_plain(&message.body),
        (MessageType::Text, Some(html)) => RoomMessageEventContent::text_html(&message.body, html),
    };
    content.add_mentions(message.mentions.clone())
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let message: Message = super::payload(job)?;
    let room_key = job.room_key.ok_or_else(|| {
        JobError::Permanent("the message names no room: cancel the job".to_owned())
    })?;
    let room = app
        .store
        .run(move |c| room_store::get(c, room_key))
        .await?
        .ok_or_else(|| {
            JobError::Permanent("the message's room is no longer stored: cancel the job".into())
        })?;
    let where_to = format!("{}/{}", room.kind, room.slug);
    let room_id = room.room_id.ok_or_else(|| {
        JobError::Permanent(format!(
            "room {where_to} has no Matrix room yet (its creation has not succeeded: GET the room for its status and last_error); once it is ready, post the message again"
        ))
    })?;
    let room_id = RoomId::parse(&room_id).map_err(|error| {
        JobError::Permanent(format!(
            "room {where_to} has an unreadable room id: {error}"
        ))
    })?;
    let bot = super::tenant_bot(app, job).await?;
    let homeserver = app.client_for(&bot);
    // Not repaired here: the repair (`ensure_room`, queued when the bot's leave arrives) runs
    // after this job in the room's order, and may replace the room — the platform decides
    // whether the message still belongs in it.
    let refused = |error: crate::matrix::Error| {
        if error.is_forbidden() && error.retry_kind() == RetryKind::Permanent {
            JobError::Permanent(format!(
                "the homeserver refused the message ({error}): {bot} is not in room {where_to} or may not send there; GET the room (a lost room is repaired by itself) and post the message again once it is ready"
            ))
        } else {
            error.into()
        }
    };
    if homeserver
        .is_encrypted(&bot, &room_id)
        .await
        .map_err(refused)?
    {
        return Err(JobError::Permanent(format!(
            "room {where_to} has end-to-end encryption on, and the daemon does not speak Megolm: it sends no plaintext there. Send the message from a client that encrypts, or post it to a room without encryption"
        )));
    }
    let sent = homeserver
        .send_message(&bot, &room_id, &txn_id(job), &content(&message))
        .await;
    Ok(json!({"event_id": sent.map_err(refused)?}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: Value) -> Value {
        let message: Message = serde_json::from_value(json).unwrap();
        serde_json::to_value(content(&message)).unwrap()
    }

    #[test]
    fn a_plain_message_is_a_notice_with_empty_mentions() {
        assert_eq!(
            message(json!({"body": "Doors open at 7"})),
            json!({"msgtype": "m.notice", "body": "Doors open at 7", "m.mentions": {}})
        );
    }

    #[test]
    fn html_is_the_formatted_body_and_the_body_its_plain_fallback() {
        assert_eq!(
            message(json!({
                "body": "Starting now, @ann",
                "html": "<b>Starting now</b>, ann",
                "msgtype": "m.text",
                "mentions": {"user_ids": ["@ann:example.org"], "room": true},
            })),
            json!({
                "msgtype": "m.text",
                "body": "Starting now, @ann",
                "format": "org.matrix.custom.html",
                "formatted_body": "<b>Starting now</b>, ann",
                "m.mentions": {"user_ids": ["@ann:example.org"], "room": true},
            })
        );
    }

    #[test]
    fn the_txn_id_is_the_jobs_own_and_the_same_on_every_attempt() {
        let job = |id, prefix: &str| Job {
            id,
            tenant_id: "t".into(),
            room_key: Some(1),
            kind: KIND.into(),
            payload: "{}".into(),
            status: crate::store::jobs::JobStatus::Running,
            attempts: 1,
            run_after: 0,
            lease_owner: None,
            lease_expires_at: None,
            last_error: None,
            result: None,
            txn_prefix: prefix.into(),
            created_at: 0,
            updated_at: 0,
            key: None,
        };
        assert_eq!(txn_id(&job(7, "a1b2")).as_str(), "om-a1b2-7");
        let mut retried = job(7, "a1b2");
        retried.attempts = 5;
        assert_eq!(txn_id(&retried), txn_id(&job(7, "a1b2")));
        assert_ne!(txn_id(&job(7, "ffff")), txn_id(&job(7, "a1b2")));
    }
}
