//! `GET /v1/tenants/{tenant}/moderation?user_id=&after=&limit=`: the tenant's moderation audit
//! log, oldest first — `{"entries": [{id, at, action, user_id, room, reason, actor, expires_at,
//! job}]}`. Times are RFC 3339 in UTC with milliseconds; `room` is `{kind, slug}` or null for a
//! tenant-wide call. Page on with `after` = the last entry's id.

use axum::Json;
use axum::extract::RawQuery;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::platform::call::TenantCall;
use crate::api::platform::error::PlatformError;
use crate::api::platform::page;
use crate::api::platform::params::{TenantErrors, TenantPath};
use crate::clock::rfc3339;
use crate::rooms::FieldError;
use crate::rooms::RoomRef;
use crate::store::moderation_log::{self, Entry};

pub use crate::api::platform::page::{DEFAULT_LIMIT, MAX_LIMIT};

/// One moderation call, as the audit log keeps it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModerationEntry {
    /// Page on with `after` = the last entry's id.
    pub id: i64,
    /// When the call arrived (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// `ban`, `unban`, `mute`, `unmute`, `redact`, `move` (a user move: `user_id` is the old
    /// Matrix id, `reason` says the new one), `staff` (made tenant staff: `reason` is the role),
    /// `unstaff` or `refuse` (a rule before send refused a join, invite or message: `reason` is
    /// `{rule}: {sentence shown}`, no job).
    pub action: String,
    pub user_id: String,
    /// The room; `null` for a tenant-wide call.
    pub room: Option<RoomRef>,
    pub reason: Option<String>,
    /// `X-OpenMeet-Actor` of the call.
    pub actor: Option<String>,
    /// When the ban or mute lifts by itself (RFC 3339).
    pub expires_at: Option<String>,
    /// The job that carries it out.
    pub job: Option<i64>,
}

/// A page of the audit log, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModerationLog {
    pub entries: Vec<ModerationEntry>,
}

/// How an entry reads in the API and in `moderation list`.
pub fn representation(entry: &Entry) -> ModerationEntry {
    let room = RoomRef::from_columns(entry.room_kind.as_deref(), entry.room_slug.as_deref());
    ModerationEntry {
        id: entry.id,
        at: rfc3339(entry.at),
        action: entry.action.clone(),
        user_id: entry.user_id.clone(),
        room,
        reason: entry.reason.clone(),
        actor: entry.actor.clone(),
        expires_at: entry.expires_at.map(rfc3339),
        job: entry.job_id,
    }
}

/// What the query asks for (its fields document the query parameters).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct Query {
    /// Only this user's entries (a full Matrix user id).
    #[param(pattern = r"^@[^:\s]+:\S+$", example = "@alice:example.org")]
    user_id: Option<String>,
    /// Entries after this id (default 0: from the start).
    #[param(minimum = 0, required = false)]
    after: i64,
    /// At most this many entries (default 100).
    #[param(minimum = 1, maximum = 1000, required = false)]
    limit: i64,
}

impl Query {
    fn parse(query: Option<&str>) -> Result<Self, FieldError> {
        let mut parsed = Self {
            user_id: None,
            after: 0,
            limit: DEFAULT_LIMIT,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "user_id" => {
                    ruma::UserId::parse(value.as_ref()).map_err(|_| {
                        FieldError::new(
                            "user_id",
                            format!("{value:?} is not a Matrix user id; write it in full, e.g. @alice:example.org"),
                        )
                    })?;
                    parsed.user_id = Some(value.into_owned());
                }
                "after" => parsed.after = page::after(&value, "entry")?,
                "limit" => parsed.limit = page::limit(&value)?,
                other => {
                    return Err(FieldError::new(
                        other,
                        "is not a parameter of this call: use user_id, after and limit",
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// The tenant's moderation audit log, oldest first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/moderation",
    operation_id = "moderation_log",
    tag = "moderation",
    params(TenantPath, Query),
    responses((status = 200, description = "A page of entries.", body = ModerationLog), TenantErrors),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.moderation_log", skip_all, fields(tenant = %call.tenant.id))]
pub async fn handler(
    call: TenantCall,
    RawQuery(query): RawQuery,
) -> Result<Json<ModerationLog>, PlatformError> {
    let Query {
        user_id,
        after,
        limit,
    } = Query::parse(query.as_deref())?;
    let tenant = call.tenant.id.clone();
    let entries = call
        .app
        .store
        .run(move |c| moderation_log::list(c, Some(&tenant), user_id.as_deref(), after, limit))
        .await?;
    Ok(Json(ModerationLog {
        entries: entries.iter().map(representation).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_defaults_and_bounds() {
        let query = Query::parse(None).unwrap();
        assert_eq!((query.user_id, query.after, query.limit), (None, 0, 100));
        let query = Query::parse(Some("user_id=%40a%3As&after=7&limit=1000")).unwrap();
        assert_eq!(
            (query.user_id.as_deref(), query.after, query.limit),
            (Some("@a:s"), 7, 1000)
        );
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "after=-1",
            "after=",
            "user_id=alice",
            "page=2",
        ] {
            assert!(Query::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
