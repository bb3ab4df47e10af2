//! `POST /v1/tenants/{tenant}/users/{user_id}/messages` (the body of room messages, DESIGN §7.2):
//! the tenant's bot says this to one user in their direct-message room (DESIGN §7.3 "Across the
//! tenant"), made on the first message (`is_direct`, the user invited, `m.direct` on the bot) and
//! reused after. Answers 202 with the `send_direct_message` job, whose result is `{"event_id",
//! "room_id"}`; its success puts `message.sent` on the feed with no `room` (a direct room is not a
//! declared one) and `data.user_id`, `data.room_id`. An `Idempotency-Key` works as for room
//! messages, in the same key space.
//!
//! The call writes the tenant's and user's `direct_rooms` row with the job, so the room is made
//! once whichever job or replica gets there first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::HeaderMap;

use crate::api::platform::call::{Accepted, TenantCall};
use crate::api::platform::error::PlatformError;
use crate::api::platform::job::JobAccepted;
use crate::api::platform::messages;
use crate::api::platform::moderation::moderate::UserPath;
use crate::api::platform::params::{BodyErrors, TenantErrors, TenantPath};
use crate::jobs::send_direct_message;
use crate::store::direct_rooms;

/// The tenant's bot says this to the user in their direct-message room (made on the first
/// message, then reused); the job's `result` is `{"event_id", "room_id"}`. A repeated POST with
/// the same `Idempotency-Key` answers with the first job and sends nothing new.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/users/{user_id}/messages",
    operation_id = "post_direct_message",
    tag = "messages",
    params(
        TenantPath,
        UserPath,
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            description = "Any text of 1 to 255 characters; the same key again sends nothing new."),
    ),
    request_body = messages::Body,
    responses(
        (status = 202, description = "Queued; the job sends it.", body = JobAccepted),
        TenantErrors,
        BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.post_direct_message", skip_all, fields(tenant = %call.tenant.id))]
pub async fn post(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let user_id = call.platform_user("user_id", &user_id, "which the bots do not message")?;
    let (message, key) = messages::read(&headers, &body)?;
    if let Some(first) = messages::repeated(&call, key.as_deref()).await? {
        return Ok(first);
    }
    let repeated = Arc::new(AtomicBool::new(false));
    let seen = repeated.clone();
    let tenant_id = call.tenant.id.clone();
    let accepted = call
        .queue(move |conn, now| {
            direct_rooms::ensure(conn, &tenant_id, user_id.as_str(), now)?;
            let job = send_direct_message::new_job(&tenant_id, &user_id, &message);
            Ok(Ok(messages::enqueue(
                conn,
                &job,
                key.as_deref(),
                &seen,
                now,
            )?))
        })
        .await?;
    messages::count(&call, repeated.load(Ordering::Relaxed));
    Ok(accepted)
}
