//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}` `{name, topic?, visibility, members?}`: this room
//! should exist with these settings (and, with `members`, exactly these members). Stores the
//! desired state and queues one `ensure_room` job in one transaction; the same call twice queues
//! nothing new and answers with the room's latest job — unless that job ended `failed` or `dead`,
//! then it queues a fresh one.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::PlatformError;
use super::{job, room_path};
use crate::app::App;
use crate::jobs::ensure_room;
use crate::rooms::{self, validate};
use crate::store::jobs;
use crate::store::rooms::{self as room_store, Declaration};
use crate::store::unix_ms;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    name: String,
    topic: Option<String>,
    visibility: String,
    members: Option<Vec<MemberBody>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    pub user_id: String,
    pub role: String,
}

#[tracing::instrument(name = "platform.put_room", skip_all, fields(tenant = %path.0, kind = %path.1, slug = %path.2))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), PlatformError> {
    let config = app.config().clone();
    let room = room_path::parse(&config, &headers, path)?;
    let body: Body =
        serde_json::from_slice(&body).map_err(|error| PlatformError::BadBody(error.to_string()))?;
    validate::room_name(&body.name)?;
    if let Some(topic) = &body.topic {
        validate::topic(topic)?;
    }
    let visibility = validate::visibility(&body.visibility)?;
    let members = match &body.members {
        Some(members) => Some(declared_members(&app, room.kind, members)?),
        None => None,
    };
    let declaration = Declaration {
        tenant_id: room.tenant.id.clone(),
        kind: room.kind.as_str().to_owned(),
        slug: room.slug.clone(),
        name: body.name.trim().to_owned(),
        topic: body.topic.clone(),
        visibility: visibility.as_str().to_owned(),
    };
    let now = unix_ms(app.clock.now());
    let queued = app
        .store
        .write(move |conn| {
            conn.write(|conn| {
                let (room, room_changed) = room_store::declare(conn, &declaration, now)?;
                let members_changed = match &members {
                    Some(members) => room_store::declare_members(conn, room.id, members, now)?,
                    None => false,
                };
                // Nothing new declared: the latest job is the answer, unless it ended without
                // doing its work — then the same call tries again.
                let latest = jobs::latest_for_room(conn, room.id)?;
                match latest {
                    Some(job) if !room_changed && !members_changed && !job.status.ended_badly() => {
                        Ok(job)
                    }
                    _ => jobs::enqueue(conn, &ensure_room::new_job(&room), now),
                }
            })
        })
        .await?;
    app.jobs_wakeup.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": job::representation(&queued)})),
    ))
}

/// Checks every member and role; returns `(user_id, role)` pairs.
pub fn declared_members(
    app: &App,
    kind: rooms::RoomKind,
    members: &[MemberBody],
) -> Result<Vec<(String, String)>, PlatformError> {
    let levels = &app.config().roles;
    let mut declared: Vec<(String, String)> = Vec::with_capacity(members.len());
    for member in members {
        let user_id =
            validate::member_user_id(&member.user_id, &app.config().homeserver.server_name)?;
        if app.config().namespaces.is_our_user(user_id.as_str()) {
            return Err(rooms::FieldError::new("user_id", format!("{user_id} is one of the appservice's own users, not a member the platform manages")).into());
        }
        levels.level(kind, &member.role)?;
        if declared.iter().any(|(u, _)| u == user_id.as_str()) {
            return Err(rooms::FieldError::new(
                "members",
                format!("{user_id} is listed twice: give each member once"),
            )
            .into());
        }
        declared.push((user_id.to_string(), member.role.clone()));
    }
    Ok(declared)
}
