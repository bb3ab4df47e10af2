//! `GET /v1/tenants/{tenant}/reports?after=&limit=`: the reports members made about the tenant's
//! managed rooms and their events (DESIGN §7.3), oldest first — `{"reports": [{id, at, room,
//! room_id, event_id, reporter, reason, score, event, forwarded_at, forward_error}]}`. Page on with
//! `after` = the last report's id. Reports are kept for `retention.inbox_days`, like other chat
//! content the bots saw.

use axum::Json;
use axum::extract::RawQuery;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::platform::call::TenantCall;
use crate::api::platform::error::PlatformError;
use crate::api::platform::page::{self, DEFAULT_LIMIT};
use crate::api::platform::params::{TenantErrors, TenantPath};
use crate::clock::rfc3339;
use crate::rooms::{FieldError, RoomRef};
use crate::store::outbox_data::ReportedEvent;
use crate::store::reports::{self, Report};

/// One report, as the tenant sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportEntry {
    /// Page on with `after` = the last report's id; `report.created` names it too.
    pub id: i64,
    /// When the report arrived (RFC 3339, UTC, milliseconds).
    pub at: String,
    pub room: RoomRef,
    pub room_id: String,
    /// The reported event; `null` when the room itself was reported.
    pub event_id: Option<String>,
    /// The Matrix user who reported (the owner of the token, by the homeserver's whoami).
    pub reporter: String,
    pub reason: Option<String>,
    /// The score the client sent with an event report, if any.
    pub score: Option<i64>,
    /// The reported event as the tenant bot read it; `null` for a room report.
    pub event: Option<ReportedEvent>,
    /// When the report reached the homeserver (RFC 3339); `null` while the daemon still retries.
    pub forwarded_at: Option<String>,
    /// What the homeserver answered when it refused the report; `null` otherwise.
    pub forward_error: Option<String>,
}

/// A page of reports, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reports {
    pub reports: Vec<ReportEntry>,
}

fn representation(report: &Report) -> ReportEntry {
    let event = match (&report.event_sender, &report.event_type) {
        (Some(sender), Some(event_type)) => Some(ReportedEvent {
            sender: sender.clone(),
            event_type: event_type.clone(),
            content: report
                .event_content
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_else(|| serde_json::json!({})),
        }),
        _ => None,
    };
    ReportEntry {
        id: report.id,
        at: rfc3339(report.at),
        room: RoomRef {
            kind: report.room_kind.clone(),
            slug: report.room_slug.clone(),
        },
        room_id: report.room_id.clone(),
        event_id: report.event_id.clone(),
        reporter: report.reporter.clone(),
        reason: report.reason.clone(),
        score: report.score,
        event,
        forwarded_at: report.forwarded_at.map(rfc3339),
        forward_error: report.forward_error.clone(),
    }
}

/// What the query asks for (its fields document the query parameters).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
struct Query {
    /// Reports after this id (default 0: from the start).
    #[param(minimum = 0, required = false)]
    after: i64,
    /// At most this many reports (default 100).
    #[param(minimum = 1, maximum = 1000, required = false)]
    limit: i64,
}

impl Query {
    fn parse(query: Option<&str>) -> Result<Self, FieldError> {
        let mut parsed = Self {
            after: 0,
            limit: DEFAULT_LIMIT,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "after" => parsed.after = page::after(&value, "report")?,
                "limit" => parsed.limit = page::limit(&value)?,
                other => {
                    return Err(FieldError::new(
                        other,
                        "is not a parameter of this call: use after and limit",
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

/// The tenant's reports, oldest first.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/reports",
    operation_id = "list_reports",
    tag = "reports",
    params(TenantPath, Query),
    responses((status = 200, description = "A page of reports.", body = Reports), TenantErrors),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.reports", skip_all, fields(tenant = %call.tenant.id))]
pub async fn list(
    call: TenantCall,
    RawQuery(query): RawQuery,
) -> Result<Json<Reports>, PlatformError> {
    let Query { after, limit } = Query::parse(query.as_deref())?;
    let tenant = call.tenant.id.clone();
    let found = call
        .app
        .store
        .run(move |c| reports::list(c, &tenant, after, limit))
        .await?;
    Ok(Json(Reports {
        reports: found.iter().map(representation).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_defaults_and_bounds() {
        let query = Query::parse(None).unwrap();
        assert_eq!((query.after, query.limit), (0, 100));
        let query = Query::parse(Some("after=7&limit=1000")).unwrap();
        assert_eq!((query.after, query.limit), (7, 1000));
        for bad in [
            "limit=0",
            "limit=1001",
            "after=-1",
            "after=x",
            "user_id=@a:s",
        ] {
            assert!(Query::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
