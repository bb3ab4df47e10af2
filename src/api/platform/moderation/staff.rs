//! `PUT /v1/tenants/{tenant}/staff/{user_id}` `{role}`: the user is tenant staff — they hold the
//! role's level (`roles.staff`: `moderator` 50, `admin` 75) in every managed room of the tenant,
//! rooms declared later included, without being invited (DESIGN §7.3 "Across the tenant").
//! `DELETE …/staff/{user_id}` `{reason?}`: no longer staff; the rooms drop the entry (a role
//! declared in a room still gives its level). `GET …/staff` lists the staff, `GET
//! …/staff/{user_id}` one of them.
//!
//! A higher role declared in a room wins; a mute there lowers staff like anyone (it is
//! moderation), and a ban there (of the room or tenant-wide) leaves them no level in that room.
//! Each PUT and DELETE queues the tenant's fan-out (`converge_tenant`) and writes an audit entry
//! (`staff`, the role in `reason`; `unstaff`), so the platform hears `moderation.applied` once
//! every room is queued.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::moderate::{LiftBody, UserPath};
use crate::api::platform::call::{self, Accepted, TenantCall};
use crate::api::platform::error::PlatformError;
use crate::api::platform::job::JobAccepted;
use crate::api::platform::params::{ActorHeader, BodyErrors, TenantErrors, TenantPath};
use crate::clock::rfc3339;
use crate::jobs::converge_tenant;
use crate::rooms::FieldError;
use crate::store::moderation_log::{self, NewEntry};
use crate::store::staff::{self, Staff};

/// A staff role to give.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StaffRole)]
struct PutBody {
    /// A staff role of `roles.staff` in the daemon's config: `moderator` (50) or `admin` (75)
    /// by default.
    #[schema(value_type = String, required = true, example = "moderator")]
    role: Option<String>,
}

/// One member of the tenant's staff.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffMember {
    pub user_id: String,
    pub role: String,
    /// The power level the role gives in every managed room of the tenant (a higher role
    /// declared in a room wins there).
    pub level: Option<i64>,
    /// `X-OpenMeet-Actor` of the last change.
    pub actor: Option<String>,
    /// When they were made staff with this role, or last changed (RFC 3339).
    pub updated_at: String,
}

/// The tenant's staff, by user id.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffList {
    pub staff: Vec<StaffMember>,
}

fn representation(call: &TenantCall, row: &Staff) -> StaffMember {
    StaffMember {
        user_id: row.user_id.clone(),
        role: row.role.clone(),
        level: call.config.roles.staff_level(&row.role).ok(),
        actor: row.actor.clone(),
        updated_at: rfc3339(row.updated_at),
    }
}

fn staff_user(call: &TenantCall, value: &str) -> Result<ruma::OwnedUserId, PlatformError> {
    call.platform_user(
        "user_id",
        value,
        "which holds its own level and is never staff",
    )
}

/// Make the user tenant staff with this role: its level in every managed room of the tenant,
/// rooms declared later included, without an invitation.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/staff/{user_id}",
    operation_id = "put_staff",
    tag = "moderation",
    params(TenantPath, UserPath, ActorHeader),
    request_body = PutBody,
    responses(
        (status = 202, description = "Stored, with its audit entry; the job converges every room.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.put_staff", skip_all, fields(tenant = %call.tenant.id))]
pub async fn put(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: PutBody = call::body(&body)?;
    let user_id = staff_user(&call, &user_id)?;
    let Some(role) = body.role else {
        let valid: Vec<&str> = call.config.roles.staff.keys().map(String::as_str).collect();
        return Err(FieldError::new(
            "role",
            format!("is required; use one of: {}", valid.join(", ")),
        )
        .into());
    };
    call.config.roles.staff_level(&role)?;
    let (tenant_id, actor) = (call.tenant.id.clone(), call.actor.clone());
    call.queue(move |conn, now| {
        let user = user_id.as_str();
        let changed = staff::put(conn, &tenant_id, user, &role, actor.as_deref(), now)?;
        let job = converge_tenant::queue_if_changed(conn, &tenant_id, changed, now)?;
        let entry = NewEntry {
            tenant_id: tenant_id.clone(),
            action: "staff".to_owned(),
            user_id: user.to_owned(),
            reason: Some(role),
            actor,
            job_id: Some(job.id),
            ..NewEntry::default()
        };
        moderation_log::append(conn, &entry, now)?;
        Ok(Ok(job))
    })
    .await
}

/// Remove the user from the tenant's staff: every room drops the level (a role declared in a
/// room still gives its own).
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/staff/{user_id}",
    operation_id = "delete_staff",
    tag = "moderation",
    params(TenantPath, UserPath, ActorHeader),
    request_body = Option<LiftBody>,
    responses(
        (status = 202, description = "Removed, with its audit entry; the job converges every room.", body = JobAccepted),
        TenantErrors, BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.delete_staff", skip_all, fields(tenant = %call.tenant.id))]
pub async fn delete(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
    body: Bytes,
) -> Result<Accepted, PlatformError> {
    let body: LiftBody = call::body(&body)?;
    let reason = body.checked_reason()?;
    let user_id = staff_user(&call, &user_id)?;
    let (tenant_id, actor) = (call.tenant.id.clone(), call.actor.clone());
    call.queue(move |conn, now| {
        let user = user_id.as_str();
        let changed = staff::remove(conn, &tenant_id, user, actor.as_deref(), now)?;
        let job = converge_tenant::queue_if_changed(conn, &tenant_id, changed, now)?;
        let entry = NewEntry {
            tenant_id: tenant_id.clone(),
            action: "unstaff".to_owned(),
            user_id: user.to_owned(),
            reason,
            actor,
            job_id: Some(job.id),
            ..NewEntry::default()
        };
        moderation_log::append(conn, &entry, now)?;
        Ok(Ok(job))
    })
    .await
}

/// The tenant's staff, by user id.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff",
    operation_id = "list_staff",
    tag = "moderation",
    params(TenantPath),
    responses((status = 200, description = "The staff.", body = StaffList), TenantErrors),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.list_staff", skip_all, fields(tenant = %call.tenant.id))]
pub async fn list(call: TenantCall) -> Result<Json<StaffList>, PlatformError> {
    let tenant = call.tenant.id.clone();
    let rows = call
        .app
        .store
        .run(move |c| staff::list(c, &tenant, false))
        .await?;
    let staff = rows.iter().map(|row| representation(&call, row)).collect();
    Ok(Json(StaffList { staff }))
}

/// One member of the tenant's staff; 404 when the user is not staff.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/{user_id}",
    operation_id = "get_staff",
    tag = "moderation",
    params(TenantPath, UserPath),
    responses((status = 200, description = "The staff member.", body = StaffMember), TenantErrors),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.get_staff", skip_all, fields(tenant = %call.tenant.id))]
pub async fn get(
    call: TenantCall,
    Path(UserPath { user_id }): Path<UserPath>,
) -> Result<Json<StaffMember>, PlatformError> {
    let user_id = staff_user(&call, &user_id)?;
    let (tenant, user) = (call.tenant.id.clone(), user_id.to_string());
    let row = call
        .app
        .store
        .run(move |c| staff::get(c, &tenant, &user))
        .await?;
    match row.filter(Staff::in_force) {
        Some(row) => Ok(Json(representation(&call, &row))),
        None => Err(PlatformError::NotFound(format!(
            "{user_id} is not staff of this tenant: PUT staff/{user_id} with a role first"
        ))),
    }
}
