//! `GET /v1/tenants/{tenant}/rooms/{kind}/{slug}`: the desired and the actual state of a room.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::error::PlatformError;
use super::room_path;
use crate::app::App;
use crate::store::rooms as room_store;

pub async fn handler(
    State(app): State<Arc<App>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, PlatformError> {
    let config = app.config().clone();
    let room = room_path::parse(&config, &headers, path)?;
    let (tenant, kind, slug) = (
        room.tenant.id.clone(),
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
        &room.tenant.id,
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
