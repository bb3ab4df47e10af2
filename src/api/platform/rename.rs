//! `POST /v1/tenants/{tenant}/rooms/{kind}/{slug}/rename` `{new_slug}`: the event or group got a new
//! slug. The new alias is added and made canonical, the old one stays as an alternative and keeps
//! resolving; both find the same room, and the new alias never creates a second one.

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
use crate::rooms;
use crate::store::rooms::{self as room_store, Renamed};
use crate::store::{jobs, unix_ms};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    new_slug: String,
}

#[tracing::instrument(name = "platform.rename", skip_all, fields(tenant = %path.0, slug = %path.2))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), PlatformError> {
    let config = app.config();
    let room = room_path::parse(&config, &headers, path)?;
    let body: Body =
        serde_json::from_slice(&body).map_err(|error| PlatformError::BadBody(error.to_string()))?;
    let new_alias = rooms::alias(
        room.kind,
        &body.new_slug,
        &room.tenant.id,
        &app.config().homeserver.server_name,
    )
    .map_err(|mut error| {
        error.field = "new_slug".into();
        error
    })?;
    let (tenant, kind, slug) = (
        room.tenant.id.clone(),
        room.kind.as_str(),
        room.slug.clone(),
    );
    let (alias, new_slug) = (room.alias.to_string(), body.new_slug);
    let now = unix_ms(app.clock.now());
    let queued = app
        .store
        .write(move |conn| {
            conn.write(|conn| {
                let found = room_store::find_live(conn, &tenant, kind, &slug)?;
                let Some(room) = found else {
                    return Ok(Err(PlatformError::NotFound(format!(
                        "no room is declared as {alias}"
                    ))));
                };
                match room_store::rename(conn, &room, &new_slug, now)? {
                    Renamed::Taken => Ok(Err(PlatformError::Conflict(format!(
                        "{new_alias} belongs to another room: choose another slug"
                    )))),
                    Renamed::Done(room, changed) => {
                        Ok(Ok(match jobs::latest_for_room(conn, room.id)? {
                            Some(job) if !changed => job,
                            _ => jobs::enqueue(conn, &ensure_room::new_job(&room), now)?,
                        }))
                    }
                }
            })
        })
        .await??;
    app.jobs_wakeup.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": job::representation(&queued)})),
    ))
}
