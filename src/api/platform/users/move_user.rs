//! `POST /v1/tenants/{tenant}/users/{user_id}/move` `{to}` (DESIGN §14): a user's Matrix id
//! changed (ADR-006: a new handle is a new account). In one write transaction every declaration of
//! the tenant naming the old id is handed to the new one, the bans and mutes in force are carried
//! over, one audit entry (`move`) and `user.moved` are written, and a fan-out is queued; the rooms
//! then converge: the new id invited with the old one's role (banned or muted where the old one
//! is), the old one kicked with "Matrix account moved".
//!
//! - **Members**: in every live room declaring the old id, the new id gets its role and the old
//!   one is marked removed (its power-level entry dropped). Where the new id is already declared
//!   with the same role the two merge; with another role the call is a 409 naming the rooms (which
//!   role is meant is the platform's to say), and nothing is written.
//! - **Bans and mutes** in force (not lifted, not past their expiry) are declared for the new id
//!   with the same scope, reason, expiry and actor, its lifting scheduled the same; one the new id
//!   already has in force is kept as it is. They also stay on the old id: lifting them there would
//!   make the rooms unban or unmute the old account, which still exists and could come back. Lifted
//!   rows stay with the old id, whose undoing they describe.
//! - **Job**: a `converge_tenant` fan-out to the rooms touched, or to every room of the tenant
//!   when a tenant-wide ban or mute was carried (it holds in every room). Its success means each
//!   room's `ensure_room` is queued, as for tenant-wide bans.
//! - **Again**: a move that changes nothing, repeated, answers with the earlier move's job (found
//!   by its audit entry) and writes nothing; a fresh fan-out when that job ended badly.
//! - **Unknown user**: nothing of the tenant names the old id and it was never moved to `to` → 404;
//!   a 202 would need a job and there is none, and a move of a user the daemon never heard of is
//!   most likely the wrong id.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::Path;
use ruma::OwnedUserId;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::platform::call::{self, Accepted, TenantCall};
use crate::api::platform::error::{ErrorBody, PlatformError};
use crate::api::platform::job::JobAccepted;
use crate::api::platform::moderation::moderate::UserPath;
use crate::api::platform::params::{ActorHeader, BodyErrors, TenantErrors, TenantPath};
use crate::jobs::{converge_tenant, lift_moderation};
use crate::rooms::{FieldError, RoomRef};
use crate::store::jobs::{self, Job, JobStatus};
use crate::store::members::{self, DeclaredIn};
use crate::store::moderation::{self, Declared, Scope};
use crate::store::moderation_log::{self, NewEntry};
use crate::store::outbox::{self, EventData};
use crate::store::outbox_data::UserMoved;
use crate::store::{DbConnection, StoreError};

/// The reason the old id is kicked with.
pub const MOVED: &str = "Matrix account moved";

/// The audit log's action.
const ACTION: &str = "move";

/// Where the new Matrix id goes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserMove)]
struct MoveBody {
    /// The user's new Matrix id: a user of the tenant's homeserver, not the appservice's own, not
    /// the id being moved.
    #[schema(value_type = String, required = true, pattern = r"^@[^:\s]+:\S+$", example = "@alice-new:example.org")]
    to: Option<String>,
}

/// Hand everything the tenant declares for this Matrix id (memberships with their roles, bans
/// and mutes in force) to the user's new id; the rooms invite the new id and remove the old one
/// with the reason "Matrix account moved". Bans and mutes stay on the old id too.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/users/{user_id}/move",
    operation_id = "move_user",
    tag = "users",
    params(TenantPath, UserPath, ActorHeader),
    request_body = MoveBody,
    responses(
        (status = 202, description = "Stored in one change with its audit entry (`move`) and `user.moved`; the job fans out to the rooms. The same move again answers with the earlier job.", body = JobAccepted),
        (status = 409, description = "The new id is already declared with another role in a room where the old one is a member (`conflict`); nothing is written.", body = ErrorBody),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.move_user", skip_all, fields(tenant = %call.tenant.id))]
pub async fn handler(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: MoveBody = call::body(&body)?;
    let from = call.platform_user("user_id", &user_id, "whose id the platform does not move")?;
    let Some(to) = body.to else {
        return Err(FieldError::new(
            "to",
            "is required: give the user's new Matrix id, e.g. {\"to\": \"@alice-new:example.org\"}",
        )
        .into());
    };
    let to = call.platform_user("to", &to, "which cannot take a platform user's place")?;
    if to == from {
        return Err(FieldError::new(
            "to",
            format!("is {to}, the id being moved: give the user's new Matrix id"),
        )
        .into());
    }
    let (tenant_id, actor) = (call.tenant.id.clone(), call.actor.clone());
    call.queue(move |conn, now| {
        let wanted = Move {
            tenant_id: &tenant_id,
            from: &from,
            to: &to,
            actor: actor.as_deref(),
        };
        wanted.store(conn, now)
    })
    .await
}

/// A checked move.
struct Move<'a> {
    tenant_id: &'a str,
    from: &'a OwnedUserId,
    to: &'a OwnedUserId,
    actor: Option<&'a str>,
}

impl Move<'_> {
    /// The move in the caller's transaction: refused (nothing written), answered with the earlier
    /// move's job, or stored with its job, audit entry and `user.moved`.
    fn store(
        &self,
        conn: &mut DbConnection,
        now: i64,
    ) -> Result<Result<Job, PlatformError>, StoreError> {
        let (tenant_id, from, to) = (self.tenant_id, self.from.as_str(), self.to.as_str());
        let rooms = members::declared_in_tenant(conn, tenant_id, from)?;
        let keys: Vec<i64> = rooms.iter().map(|room| room.room_key).collect();
        let theirs = members::roles_in(conn, &keys, to)?;
        if let Some(refusal) = self.conflict(&rooms, &theirs) {
            return Ok(Err(refusal));
        }
        let held = moderation::in_force_for_user(conn, tenant_id, from, now)?;
        let audit_reason = format!("{MOVED} to {to}");
        let earlier = moderation_log::latest(conn, tenant_id, from, ACTION, &audit_reason)?;
        if rooms.is_empty() && held.is_empty() && earlier.is_none() {
            return Ok(Err(PlatformError::NotFound(format!(
                "nothing in tenant {tenant_id} names {from}: no room declares them a member and no ban or mute holds for them, so there is nothing to move; declare {to} where they belong instead"
            ))));
        }

        // The old id is declared somewhere: handing it over is a change (where the new id already
        // holds the same role, the old one is still removed).
        let mut changed = !rooms.is_empty();
        for room in &rooms {
            members::hand_over(conn, room.room_key, from, to, &room.role, MOVED, now)?;
        }
        let (mut carried, mut tenant_wide) = (0, false);
        let mut converge: BTreeSet<i64> = keys.iter().copied().collect();
        for row in &held {
            match row.scope {
                Scope::Tenant => tenant_wide = true,
                Scope::Room(key) => {
                    converge.insert(key);
                }
            }
            let current = moderation::get(conn, tenant_id, row.scope, to, row.kind)?;
            if current.is_some_and(|current| current.in_force()) {
                continue;
            }
            let declared = Declared {
                tenant_id,
                scope: row.scope,
                user_id: to,
                kind: row.kind,
                reason: row.reason.as_deref(),
                expires_at: row.expires_at,
                actor: row.actor.as_deref(),
            };
            moderation::declare(conn, &declared, now)?;
            lift_moderation::schedule(
                conn,
                tenant_id,
                row.scope,
                to,
                row.kind,
                row.expires_at,
                now,
            )?;
            carried += 1;
            changed = true;
        }

        if !changed && let Some(entry) = earlier {
            let job = match entry.job_id {
                Some(id) => jobs::get(conn, id)?,
                None => None,
            };
            return Ok(Ok(match job {
                Some(job) if !job.status.ended_badly() && job.status != JobStatus::Cancelled => job,
                Some(job) => converge_tenant::again(conn, &job, now)?,
                None => converge_tenant::queue(conn, tenant_id, now)?,
            }));
        }

        let converge: Vec<i64> = converge.into_iter().collect();
        let job = if tenant_wide {
            converge_tenant::queue(conn, tenant_id, now)?
        } else {
            converge_tenant::queue_rooms(conn, tenant_id, &converge, now)?
        };
        let entry = NewEntry {
            tenant_id: tenant_id.to_owned(),
            action: ACTION.to_owned(),
            user_id: from.to_owned(),
            room: None,
            reason: Some(audit_reason),
            actor: self.actor.map(str::to_owned),
            expires_at: None,
            job_id: Some(job.id),
        };
        moderation_log::append(conn, &entry, now)?;
        let data = EventData::UserMoved(UserMoved {
            from: from.to_owned(),
            to: to.to_owned(),
            rooms: rooms
                .iter()
                .map(|room| RoomRef {
                    kind: room.kind.clone(),
                    slug: room.slug.clone(),
                })
                .collect(),
            carried,
            job: job.id,
        });
        outbox::append(conn, tenant_id, None, &data, now)?;
        Ok(Ok(job))
    }

    /// The 409 when the new id is declared with another role in a room where the old one is.
    fn conflict(&self, rooms: &[DeclaredIn], theirs: &[(i64, String)]) -> Option<PlatformError> {
        let (from, to) = (self.from, self.to);
        let clashes: Vec<String> = rooms
            .iter()
            .filter_map(|room| {
                let (_, role) = theirs
                    .iter()
                    .find(|(key, role)| *key == room.room_key && *role != room.role)?;
                Some(format!(
                    "{}/{} ({to} is {role}, {from} is {})",
                    room.kind, room.slug, room.role
                ))
            })
            .collect();
        if clashes.is_empty() {
            return None;
        }
        Some(PlatformError::Conflict(format!(
            "{to} is already declared with another role where {from} is a member: {}; a move keeps {from}'s role, so give {to} that role there (PUT …/members/{to}) or remove one of them from the room, then move again",
            clashes.join(", ")
        )))
    }
}
