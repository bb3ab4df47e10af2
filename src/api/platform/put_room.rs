//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}` `{name, topic?, visibility, members?}`: this room
//! should exist with these settings (and, with `members`, exactly these members). Stores the
//! desired state and queues one `ensure_room` job in one transaction; the same call twice queues
//! nothing new and answers with the room's latest job — unless that job ended `failed` or `dead`,
//! then it queues a fresh one.

use axum::body::Bytes;
use serde::Deserialize;

use super::call::{self, Accepted, RoomCall, TenantCall};
use super::error::PlatformError;
use super::member::NOT_A_MEMBER;
use crate::rooms::{self, validate};
use crate::store::rooms::{self as room_store, Declaration};

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

#[tracing::instrument(name = "platform.put_room", skip_all, fields(tenant = %room.call.tenant.id, kind = %room.kind.as_str(), slug = %room.slug))]
pub async fn handler(room: RoomCall, body: Bytes) -> Result<Accepted, PlatformError> {
    let body: Body = call::body(&body)?;
    validate::room_name(&body.name)?;
    if let Some(topic) = &body.topic {
        validate::topic(topic)?;
    }
    let visibility = validate::visibility(&body.visibility)?;
    let members = match &body.members {
        Some(members) => Some(declared_members(&room.call, room.kind, members)?),
        None => None,
    };
    let declaration = Declaration {
        tenant_id: room.call.tenant.id.clone(),
        kind: room.kind.as_str().to_owned(),
        slug: room.slug.clone(),
        name: body.name.trim().to_owned(),
        topic: body.topic.clone(),
        visibility: visibility.as_str().to_owned(),
    };
    room.call
        .queue(move |conn, now| {
            let (room, room_changed) = room_store::declare(conn, &declaration, now)?;
            let members_changed = match &members {
                Some(members) => room_store::declare_members(conn, room.id, members, now)?,
                None => false,
            };
            Ok(Ok(call::ensure_if_changed(
                conn,
                &room,
                room_changed || members_changed,
                now,
            )?))
        })
        .await
}

/// Checks every member and role; returns `(user_id, role)` pairs.
pub fn declared_members(
    call: &TenantCall,
    kind: rooms::RoomKind,
    members: &[MemberBody],
) -> Result<Vec<(String, String)>, PlatformError> {
    let levels = &call.config.roles;
    let mut declared: Vec<(String, String)> = Vec::with_capacity(members.len());
    for member in members {
        let user_id = call.platform_user("user_id", &member.user_id, NOT_A_MEMBER)?;
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
