//! `POST /v1/tenants/{tenant}/rooms/{kind}/{slug}/redactions` and `POST /v1/tenants/{tenant}/redactions`
//! `{user_id, since?, reason}`: redact the user's events since `since` (RFC 3339; default 24 h
//! before the call) in the room, or in every managed room of the tenant (the job fans out one job
//! per room). The job and its audit entry (`redact`) are stored in one transaction; the room job's
//! result is `{"redacted": n}` (see `jobs/redact_user.rs`).

use axum::body::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::platform::call::{self, Accepted, RoomCall, TenantCall};
use crate::api::platform::error::PlatformError;
use crate::api::platform::job::JobAccepted;
use crate::api::platform::params::{BodyErrors, RoomPath, TenantErrors, TenantPath};
use crate::jobs::redact_user;
use crate::rooms::FieldError;
use crate::store::moderation_log::{self, NewEntry};
use crate::store::{DbConnection, StoreError, jobs};

/// How far back `since` reaches when the call does not say.
const DEFAULT_WINDOW_MS: i64 = 24 * 3_600 * 1_000;

/// The longest reason, in bytes: it travels in every redaction event.
pub const MAX_REASON_BYTES: usize = 1024;

/// Whose events to redact, from when, and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Redaction)]
struct Body {
    /// A Matrix user of this homeserver, not the appservice's own.
    #[schema(pattern = r"^@[^:\s]+:\S+$", example = "@spammer:example.org")]
    user_id: String,
    /// RFC 3339, not in the future; default 24 hours before the call.
    #[schema(format = DateTime, example = "2026-12-05T10:00:00Z")]
    since: Option<String>,
    /// Shown in place of each redacted event; not blank, at most 1024 bytes.
    #[schema(
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
        max_length = 1024
    )]
    reason: String,
}

/// A checked call: whose events, from when, and why.
struct Redaction {
    user_id: String,
    since_ms: i64,
    reason: String,
}

impl Redaction {
    fn read(call: &TenantCall, bytes: &[u8]) -> Result<Self, PlatformError> {
        let body: Body = call::body(bytes)?;
        let user_id =
            call.platform_user("user_id", &body.user_id, "whose events are never redacted")?;
        let since_ms = match body.since.as_deref() {
            None => call.now - DEFAULT_WINDOW_MS,
            Some(text) => {
                let since = crate::clock::parse_rfc3339(text).ok_or_else(|| {
                    FieldError::new(
                        "since",
                        format!(
                            "{text:?} is not an RFC 3339 time; write it like 2026-12-05T10:00:00Z"
                        ),
                    )
                })?;
                if since > call.now {
                    return Err(FieldError::new(
                        "since",
                        format!(
                            "{text} is in the future (it is {} here): give the earliest time whose events should go",
                            crate::clock::rfc3339(call.now)
                        ),
                    )
                    .into());
                }
                since
            }
        };
        if body.reason.trim().is_empty() {
            return Err(FieldError::new(
                "reason",
                "must say why, e.g. \"spam\": it is shown in place of each redacted event",
            )
            .into());
        }
        crate::rooms::validate::lines("reason", &body.reason)?;
        if body.reason.len() > MAX_REASON_BYTES {
            return Err(FieldError::new(
                "reason",
                format!(
                    "is {} bytes long, over the limit of {MAX_REASON_BYTES}; shorten it",
                    body.reason.len()
                ),
            )
            .into());
        }
        Ok(Self {
            user_id: user_id.to_string(),
            since_ms,
            reason: body.reason,
        })
    }

    /// Queues the redaction in room `room_key` (`None`: every managed room of the tenant) with its
    /// audit entry.
    fn queue(
        &self,
        conn: &mut DbConnection,
        room_key: Option<i64>,
        entry: NewEntry,
        now: i64,
    ) -> Result<jobs::Job, StoreError> {
        let job = redact_user::new_job(
            &entry.tenant_id,
            room_key,
            &self.user_id,
            self.since_ms,
            &self.reason,
        );
        moderation_log::enqueue_with_entry(conn, &job, entry, now)
    }

    /// The call's audit entry, before its room and job are known.
    fn entry(&self, call: &TenantCall) -> NewEntry {
        NewEntry {
            tenant_id: call.tenant.id.clone(),
            action: "redact".into(),
            user_id: self.user_id.clone(),
            reason: Some(self.reason.clone()),
            actor: call.actor.clone(),
            ..NewEntry::default()
        }
    }
}

/// Redact the user's events in the room, newest first, back to `since`; the job's `result` is
/// `{"redacted": n}`.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}/redactions",
    operation_id = "redact_in_room",
    tag = "moderation",
    params(RoomPath),
    request_body = Body,
    responses(
        (status = 202, description = "Queued, with its audit entry.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.redact_in_room", skip_all, fields(tenant = %room.call.tenant.id, slug = %room.slug))]
pub async fn room(room: RoomCall, body: Bytes) -> Result<Accepted, PlatformError> {
    let redaction = Redaction::read(&room.call, &body)?;
    let entry = redaction.entry(&room.call);
    room.queue_on_live_room(move |conn, room, now| {
        let entry = NewEntry {
            room: Some((room.kind.as_str().to_owned(), room.slug.clone())),
            ..entry
        };
        Ok(Ok(redaction.queue(conn, Some(room.id), entry, now)?))
    })
    .await
}

/// Redact the user's events in every managed room of the tenant (the job fans out one per room).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/redactions",
    operation_id = "redact_in_tenant",
    tag = "moderation",
    params(TenantPath),
    request_body = Body,
    responses(
        (status = 202, description = "Queued, with its audit entry.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.redact_in_tenant", skip_all, fields(tenant = %call.tenant.id))]
pub async fn tenant(call: TenantCall, body: Bytes) -> Result<Accepted, PlatformError> {
    let redaction = Redaction::read(&call, &body)?;
    let entry = redaction.entry(&call);
    call.queue(move |conn, now| Ok(Ok(redaction.queue(conn, None, entry, now)?)))
        .await
}
