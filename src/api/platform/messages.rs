//! `POST /v1/tenants/{tenant}/rooms/{kind}/{slug}/messages`
//! `{body, html?, msgtype?: "m.notice"|"m.text", mentions?: {user_ids?, room?}}`: the tenant's bot
//! says this in the room, after the room's earlier jobs (DESIGN §7.2). Answers 202 with the
//! `send_message` job, whose result is `{"event_id"}`. With an `Idempotency-Key` header, a repeated
//! POST with the same key for the same tenant answers with the first job and queues nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::http::HeaderMap;
use ruma::UserId;
use ruma::events::Mentions;
use serde::Deserialize;
use utoipa::ToSchema;

use super::call::{self, Accepted, RoomCall, TenantCall};
use super::error::PlatformError;
use super::job::JobAccepted;
use super::params::{BodyErrors, RoomPath, TenantErrors};
use crate::jobs::send_message::{self, Message, MessageType};
use crate::rooms::FieldError;
use crate::store::jobs::{Job, NewJob};
use crate::store::{DbConnection, StoreError, job_keys, jobs};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// At most this many characters in an `Idempotency-Key`.
const MAX_KEY_CHARS: usize = 255;
/// `body` and `html` together, in bytes: well inside Matrix's 64 KiB per event, escaping included.
const MAX_TEXT_BYTES: usize = 32 * 1024;
const MAX_MENTIONED_USERS: usize = 100;

/// A message the tenant's bot sends (in a room, or to one user).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BotMessage)]
pub struct Body {
    /// The plain text (the fallback when `html` is given); not blank. `body` and `html` together
    /// are at most 32 KiB.
    #[schema(pattern = r"\S", example = "Doors open at 7")]
    body: String,
    /// Sent as `format: org.matrix.custom.html`; not blank when given.
    #[schema(pattern = r"\S")]
    html: Option<String>,
    /// `m.notice` when left out.
    #[schema(value_type = Option<MessageType>)]
    msgtype: Option<String>,
    #[serde(default)]
    mentions: MentionsBody,
}

/// Who the message mentions (`m.mentions`).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MessageMentions)]
struct MentionsBody {
    /// Matrix user ids, at most 100.
    #[serde(default)]
    #[schema(max_items = 100, inline)]
    user_ids: Vec<String>,
    /// Mention the whole room (`@room`).
    #[serde(default)]
    room: bool,
}

/// The tenant's bot says this in the room, after the room's earlier jobs; the job's `result` is
/// `{"event_id"}`. A repeated POST with the same `Idempotency-Key` answers with the first job and
/// sends nothing new.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/messages",
    operation_id = "post_message",
    tag = "messages",
    params(
        RoomPath,
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            description = "Any text of 1 to 255 characters; the same key again sends nothing new."),
    ),
    request_body = Body,
    responses(
        (status = 202, description = "Queued; the job sends it.", body = JobAccepted),
        TenantErrors,
        BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.post_message", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn post(
    room: RoomCall,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let (message, key) = read(&headers, &body)?;
    if let Some(first) = repeated(&room.call, key.as_deref()).await? {
        return Ok(first);
    }
    let repeated = Arc::new(AtomicBool::new(false));
    let seen = repeated.clone();
    let accepted = room
        .queue_on_live_room(move |conn, room, now| {
            let job = send_message::new_job(room, &message);
            Ok(Ok(enqueue(conn, &job, key.as_deref(), &seen, now)?))
        })
        .await?;
    count(&room.call, repeated.load(Ordering::Relaxed));
    Ok(accepted)
}

/// What both message calls read: the body as a checked [`Message`], and the job key its
/// `Idempotency-Key` gives (one key space per tenant, room and direct messages alike).
pub fn read(headers: &HeaderMap, body: &[u8]) -> Result<(Message, Option<String>), PlatformError> {
    let message = message(call::body(body)?)?;
    let key = idempotency_key(headers)?.map(|key| format!("message:{key}"));
    Ok((message, key))
}

/// The first job of a repeated POST with the same key, counted as a repeat. A repeat answers with
/// the first job even when its room was deleted since.
pub async fn repeated(
    call: &TenantCall,
    key: Option<&str>,
) -> Result<Option<Accepted>, PlatformError> {
    let Some(key) = key.map(str::to_owned) else {
        return Ok(None);
    };
    let tenant = call.tenant.id.clone();
    let first = call
        .app
        .store
        .run(move |c| job_keys::find_keyed(c, &tenant, &key))
        .await?;
    Ok(first.map(|first| {
        count(call, true);
        Accepted(first)
    }))
}

/// Queues the message's `job`, once per `key` (`repeated` set when an earlier one with the key
/// answers instead).
pub fn enqueue(
    conn: &mut DbConnection,
    job: &NewJob,
    key: Option<&str>,
    repeated: &AtomicBool,
    now: i64,
) -> Result<Job, StoreError> {
    let Some(key) = key else {
        return jobs::enqueue(conn, job, now);
    };
    let (job, queued) = job_keys::enqueue_once(conn, job, key, now)?;
    repeated.store(!queued, Ordering::Relaxed);
    Ok(job)
}

/// `openmeet_as_message_requests_total` for a message call.
pub fn count(call: &TenantCall, repeated: bool) {
    let outcome = if repeated { "repeated" } else { "queued" };
    call.app
        .metrics
        .message_requests
        .with_label_values(&[outcome])
        .inc();
}

/// The body checked: text present and not too long, a known msgtype, mentions of Matrix users.
fn message(body: Body) -> Result<Message, FieldError> {
    if body.body.trim().is_empty() {
        return Err(FieldError::new(
            "body",
            "body is empty: a message needs its text (the plain fallback when html is given)",
        ));
    }
    if body
        .html
        .as_ref()
        .is_some_and(|html| html.trim().is_empty())
    {
        return Err(FieldError::new(
            "html",
            "html is empty: leave it out to send plain text",
        ));
    }
    let size = body.body.len() + body.html.as_ref().map_or(0, String::len);
    if size > MAX_TEXT_BYTES {
        return Err(FieldError::new(
            if body.html.is_some() { "html" } else { "body" },
            format!(
                "body and html together are {size} bytes; one message holds at most {MAX_TEXT_BYTES}: shorten it or send it in parts"
            ),
        ));
    }
    let msgtype = match body.msgtype.as_deref() {
        None | Some("m.notice") => MessageType::Notice,
        Some("m.text") => MessageType::Text,
        Some(other) => {
            return Err(FieldError::new(
                "msgtype",
                format!(
                    "msgtype {other:?} is not one the bot sends: use m.notice (the default) or m.text"
                ),
            ));
        }
    };
    if body.mentions.user_ids.len() > MAX_MENTIONED_USERS {
        return Err(FieldError::new(
            "mentions.user_ids",
            format!(
                "mentions.user_ids names {} users; at most {MAX_MENTIONED_USERS}: mention the room (\"room\": true) instead",
                body.mentions.user_ids.len()
            ),
        ));
    }
    let user_ids = body
        .mentions
        .user_ids
        .iter()
        .map(|user_id| {
            UserId::parse(user_id).map_err(|_| {
                FieldError::new(
                    "mentions.user_ids",
                    format!("{user_id:?} in mentions.user_ids is not a Matrix user id (@localpart:server)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut mentions = Mentions::with_user_ids(user_ids);
    mentions.room = body.mentions.room;
    Ok(Message {
        body: body.body,
        html: body.html,
        msgtype,
        mentions,
    })
}

/// The `Idempotency-Key` header: any text of 1 to 255 characters, or none.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, FieldError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let field = "Idempotency-Key";
    let key = std::str::from_utf8(value.as_bytes())
        .map_err(|_| FieldError::new(field, "the Idempotency-Key header is not UTF-8 text"))?;
    let length = key.chars().count();
    if length == 0 {
        return Err(FieldError::new(
            field,
            "the Idempotency-Key header is empty: give a key, or leave the header out",
        ));
    }
    if length > MAX_KEY_CHARS {
        return Err(FieldError::new(
            field,
            format!(
                "the Idempotency-Key header is {length} characters long; at most {MAX_KEY_CHARS}"
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(json: serde_json::Value) -> Result<Message, FieldError> {
        message(serde_json::from_value(json).unwrap())
    }

    #[test]
    fn bad_messages_name_the_field_that_is_wrong() {
        let field = |json| checked(json).unwrap_err().field;
        assert_eq!(field(serde_json::json!({"body": "  "})), "body");
        assert_eq!(field(serde_json::json!({"body": "x", "html": ""})), "html");
        assert_eq!(
            field(serde_json::json!({"body": "x".repeat(MAX_TEXT_BYTES + 1)})),
            "body"
        );
        assert_eq!(
            field(serde_json::json!({"body": "x", "msgtype": "m.emote"})),
            "msgtype"
        );
        assert_eq!(
            field(serde_json::json!({"body": "x", "mentions": {"user_ids": ["ann"]}})),
            "mentions.user_ids"
        );
    }

    #[test]
    fn a_message_defaults_to_a_notice_that_mentions_nobody() {
        let message = checked(serde_json::json!({"body": "Doors open at 7"})).unwrap();
        assert_eq!(message.msgtype, MessageType::Notice);
        assert!(message.mentions.user_ids.is_empty() && !message.mentions.room);
    }

    #[test]
    fn an_idempotency_key_is_one_to_255_characters() {
        let key = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(IDEMPOTENCY_KEY, value.parse().unwrap());
            idempotency_key(&headers)
        };
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
        assert_eq!(key("order-42").unwrap().as_deref(), Some("order-42"));
        assert!(key(&"k".repeat(255)).is_ok());
        assert!(key(&"k".repeat(256)).is_err());
        assert!(key("").is_err());
    }
}
