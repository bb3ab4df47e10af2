//! `DELETE /v1/tenants/{tenant}/rooms/{kind}/{slug}`: tear the room down. The room is marked
//! `deleted` at once and its generation raised, so nothing begun before (a job, an alias query, a
//! followed upgrade) re-creates it or marks it ready, and its earlier slugs are released; a
//! `teardown_room` job takes it down in Synapse. A repeated DELETE is accepted and answers with
//! that job, or queues a fresh teardown when that one ended `failed` or `dead`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::error::PlatformError;
use super::{job, room_path};
use crate::app::App;
use crate::jobs::teardown_room;
use crate::rooms;
use crate::store::jobs;
use crate::store::rooms::{self as room_store, RoomStatus};
use crate::store::unix_ms;

#[tracing::instrument(name = "platform.delete_room", skip_all, fields(tenant = %path.0, kind = %path.1, slug = %path.2))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Path(path): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), PlatformError> {
    let config = app.config();
    let room = room_path::parse(&config, &headers, path)?;
    let (tenant, kind, slug) = (room.tenant.id.clone(), room.kind, room.slug.clone());
    let server = app.config().homeserver.server_name.clone();
    let alias = room.alias.to_string();
    let now = unix_ms(app.clock.now());
    let queued = app
        .store
        .write(move |conn| {
            conn.write(|conn| {
                let Some(room) = room_store::find(conn, &tenant, kind.as_str(), &slug)? else {
                    return Ok(Err(PlatformError::NotFound(format!(
                        "no room is declared as {alias}"
                    ))));
                };
                if room.status == RoomStatus::Deleted
                    && let Some(job) = jobs::latest_for_room(conn, room.id)?
                {
                    if !job.status.ended_badly() {
                        return Ok(Ok(job));
                    }
                    // Earlier slugs were released at the first DELETE: the failed teardown's
                    // payload still names every alias and the room it was taking down.
                    if job.kind == teardown_room::KIND {
                        room_store::mark_deleted(conn, &room, now)?;
                        return Ok(Ok(jobs::enqueue(conn, &teardown_room::again(&job), now)?));
                    }
                }
                let aliases = room_store::slugs(conn, room.id)?
                    .iter()
                    .filter_map(|slug| rooms::alias(kind, slug, &tenant, &server).ok())
                    .collect::<Vec<_>>();
                room_store::mark_deleted(conn, &room, now)?;
                Ok(Ok(jobs::enqueue(
                    conn,
                    &teardown_room::new_job(&room, &aliases),
                    now,
                )?))
            })
        })
        .await??;
    app.jobs_wakeup.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job": job::representation(&queued)})),
    ))
}
