//! `DELETE /v1/tenants/{tenant}/rooms/{kind}/{slug}`: tear the room down. The room is marked
//! `deleted` at once and its generation raised, so nothing begun before (a job, an alias query, a
//! followed upgrade) re-creates it or marks it ready, and its earlier slugs are released; a
//! `teardown_room` job takes it down in Synapse. A repeated DELETE is accepted and answers with
//! that job, or queues a fresh teardown when that one ended `failed` or `dead`.

use crate::api::platform::call::{Accepted, RoomCall};
use crate::api::platform::error::PlatformError;
use crate::api::platform::job::JobAccepted;
use crate::api::platform::params::{RoomPath, TenantErrors};
use crate::jobs::teardown_room;
use crate::rooms;
use crate::store::jobs;
use crate::store::rooms::{self as room_store, RoomStatus};

/// Tear the room down: alias and directory entry first, then every member out, then the bot
/// leaves. A repeated DELETE is accepted and answers with the teardown, or queues a fresh one when
/// that one ended `failed` or `dead`.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}",
    operation_id = "delete_room",
    tag = "rooms",
    params(RoomPath),
    responses(
        (status = 202, description = "Marked deleted; the job tears it down in Synapse.", body = JobAccepted),
        TenantErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.delete_room", skip_all, fields(tenant = %room.call.tenant.id, kind = %room.kind.as_str(), slug = %room.slug))]
pub async fn handler(room: RoomCall) -> Result<Accepted, PlatformError> {
    let (tenant, kind, slug) = (room.call.tenant.id.clone(), room.kind, room.slug.clone());
    let server = room.call.server_name().to_owned();
    let alias = room.alias.to_string();
    room.call
        .queue(move |conn, now| {
            let Some(room) = room_store::find(conn, &tenant, kind.as_str(), &slug)? else {
                return Ok(Err(PlatformError::NotFound(format!(
                    "no room is declared as {alias}"
                ))));
            };
            if room.status == RoomStatus::Deleted
                && let Some(job) =
                    jobs::latest_for_room(conn, room.id, crate::jobs::DECLARATION_KINDS)?
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
            // Rooms open to this group are invite only from now on.
            crate::jobs::create_room::queue_followers(conn, &room, now)?;
            Ok(Ok(jobs::enqueue(
                conn,
                &teardown_room::new_job(&room, &aliases),
                now,
            )?))
        })
        .await
}
