//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}/members/{user_id}` `{role}`: invite the user (if
//! not in the room) with the role's power level. `DELETE …/members/{user_id}` `{reason?}`: kick or
//! revoke the invite and drop their power-level entry; removing a non-member succeeds. Each stores
//! the change and queues the room's `ensure_room` job in one transaction; a call that changes
//! nothing answers with the room's latest job.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PlatformError;
use super::put_room::{MemberBody, declared_members};
use super::{job, room_path};
use crate::app::App;
use crate::jobs::ensure_room;
use crate::rooms::{FieldError, validate};
use crate::store::jobs::{self, Job};
use crate::store::rooms as room_store;
use crate::store::{DbConnection, StoreError, unix_ms};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    role: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    reason: Option<String>,
}

type MemberPath = (String, String, String, String);

#[tracing::instrument(name = "platform.put_member", skip_all, fields(tenant = %path.0, slug = %path.2))]
pub async fn put(
    State(app): State<Arc<App>>,
    Path(path): Path<MemberPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), PlatformError> {
    let (tenant, kind, slug, user_id) = path;
    let config = app.config();
    let room = room_path::parse(&config, &headers, (tenant, kind, slug))?;
    let body: PutBody =
        serde_json::from_slice(&body).map_err(|error| PlatformError::BadBody(error.to_string()))?;
    let (user_id, role) = declared_members(
        &app,
        room.kind,
        &[MemberBody {
            user_id,
            role: body.role,
        }],
    )?
    .remove(0);
    change(&app, &room, user_id, Some(role), None).await
}

#[tracing::instrument(name = "platform.delete_member", skip_all, fields(tenant = %path.0, slug = %path.2))]
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(path): Path<MemberPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), PlatformError> {
    let (tenant, kind, slug, user_id) = path;
    let config = app.config();
    let room = room_path::parse(&config, &headers, (tenant, kind, slug))?;
    let body: DeleteBody = if body.is_empty() {
        DeleteBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| PlatformError::BadBody(error.to_string()))?
    };
    let user_id = validate::member_user_id(&user_id, &app.config().homeserver.server_name)?;
    if app.config().namespaces.is_our_user(user_id.as_str()) {
        return Err(FieldError::new("user_id", not_a_member(&user_id)).into());
    }
    change(&app, &room, user_id.to_string(), None, body.reason).await
}

/// Why the sender or a tenant bot cannot be removed as a member (DESIGN §7.1; a PUT of one is
/// refused by `declared_members` in the same words).
fn not_a_member(user_id: &ruma::UserId) -> String {
    format!("{user_id} is one of the appservice's own users, not a member the platform manages")
}

/// Stores the member's new role (`None`: removed) and queues the room's job, in one transaction.
async fn change(
    app: &Arc<App>,
    room: &room_path::RoomPath<'_>,
    user_id: String,
    role: Option<String>,
    reason: Option<String>,
) -> Result<(StatusCode, Json<Value>), PlatformError> {
    let key = (
        room.tenant.id.clone(),
        room.kind.as_str(),
        room.slug.clone(),
    );
    let alias = room.alias.to_string();
    let now = unix_ms(app.clock.now());
    let queued = app
        .store
        .write(move |conn| {
            conn.write(|conn| {
                let Some(room) = find(conn, &key)? else {
                    return Ok(Err(not_declared(&alias)));
                };
                let changed = room_store::set_member(
                    conn,
                    room.id,
                    &user_id,
                    role.as_deref(),
                    reason.as_deref(),
                    now,
                )?;
                Ok(Ok(queue(conn, &room, changed, now)?))
            })
        })
        .await??;
    app.jobs_wakeup.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": job::representation(&queued)})),
    ))
}

/// The declared room (not deleted).
fn find(
    conn: &mut DbConnection,
    (tenant, kind, slug): &(String, &str, String),
) -> Result<Option<room_store::Room>, StoreError> {
    room_store::find_live(conn, tenant, kind, slug)
}

fn not_declared(alias: &str) -> PlatformError {
    PlatformError::NotFound(format!(
        "no room is declared as {alias}: PUT the room first"
    ))
}

/// Queues the room's job when something changed, else answers with its latest.
fn queue(
    conn: &mut DbConnection,
    room: &room_store::Room,
    changed: bool,
    now: i64,
) -> Result<Job, StoreError> {
    match jobs::latest_for_room(conn, room.id)? {
        Some(job) if !changed => Ok(job),
        _ => jobs::enqueue(conn, &ensure_room::new_job(room), now),
    }
}
