//! `GET /v1/tenants/{tenant}/rooms/{kind}/{slug}`: the desired and the actual state of a room.

use axum::Json;
use serde_json::{Value, json};

use super::call::RoomCall;
use super::error::PlatformError;
use crate::store::rooms as room_store;

pub async fn handler(room: RoomCall) -> Result<Json<Value>, PlatformError> {
    let (app, config) = (&room.call.app, &room.call.config);
    let (tenant, kind, slug) = (
        room.call.tenant.id.clone(),
        room.kind.as_str(),
        room.slug.clone(),
    );
    let found = app
        .store
        .run(move |c| {
            let Some(room) = room_store::find(c, &tenant, kind, &slug)? else {
                return Ok(None);
            };
            let members = room_store::members(c, room.id)?;
            Ok(Some((room, members)))
        })
        .await?;
    let Some((stored, members)) = found else {
        return Err(PlatformError::NotFound(format!(
            "no room is declared as {}",
            room.alias
        )));
    };
    let alias = crate::rooms::alias(
        room.kind,
        &stored.slug,
        &room.call.tenant.id,
        &config.homeserver.server_name,
    )?;
    Ok(Json(json!({
        "tenant": stored.tenant_id,
        "kind": stored.kind,
        "slug": stored.slug,
        "alias": alias,
        "name": stored.name,
        "topic": stored.topic,
        "visibility": stored.visibility,
        "room_id": stored.room_id,
        "room_version": stored.room_version,
        "previous_room_id": stored.previous_room_id,
        "status": stored.status,
        "last_error": stored.last_error,
        "members": members.iter().filter(|m| m.role.is_some()).map(|m| json!({
            "user_id": m.user_id,
            "role": m.role,
            "power_level": m.applied_level,
        })).collect::<Vec<_>>(),
    })))
}
