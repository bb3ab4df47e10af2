//! `GET /v1/tenants/{tenant}/events?after=&limit=`: the tenant's events feed (DESIGN §7.4),
//! oldest first — `{"events": [{id, type, at, tenant, room, data}], "next_after": n}`, where
//! `next_after` is the last event's id (or `after` when there is none yet). Ids count 1, 2, 3…
//! per tenant in commit order (`store/outbox.rs`), so a client that asks again with
//! `after=next_after` never misses an event and never sees one twice. `after` left out reads from
//! the oldest event kept (`retention.jobs_days`); `limit` is 1 to 1000, default 100.

use axum::Json;
use axum::extract::RawQuery;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::call::TenantCall;
use super::error::PlatformError;
use super::page;
use super::params::{TenantErrors, TenantPath};
use crate::rooms::FieldError;
use crate::store::outbox::{self, OutboxEvent, PublishedEvent};

/// One page of the feed, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Feed {
    pub events: Vec<PublishedEvent>,
    /// The `after` of the next call: the last event's id, or `after` when there is none yet.
    pub next_after: i64,
}

/// What the query asks for (its fields document the query parameters).
#[derive(Debug, PartialEq, IntoParams)]
#[into_params(parameter_in = Query)]
struct FeedQuery {
    /// Events after this id (default 0: from the oldest event kept).
    #[param(minimum = 0, required = false)]
    after: i64,
    /// At most this many events (default 100).
    #[param(minimum = 1, maximum = 1000, required = false)]
    limit: i64,
}

fn parse(query: Option<&str>) -> Result<FeedQuery, FieldError> {
    let (mut after, mut limit) = (0, page::DEFAULT_LIMIT);
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "after" => after = page::after(&value, "event")?,
            "limit" => limit = page::limit(&value)?,
            other => {
                return Err(FieldError::new(
                    other,
                    "is not a parameter of this call: use after and limit",
                ));
            }
        }
    }
    Ok(FeedQuery { after, limit })
}

/// The tenant's events feed (DESIGN §7.4): what became of its rooms, jobs, messages, moderation
/// and declared members, oldest first. Ids count 1, 2, 3… per tenant in commit order, so asking
/// again with `after=next_after` never misses an event and never sees one twice.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/events",
    operation_id = "events_feed",
    tag = "events",
    params(TenantPath, FeedQuery),
    responses((status = 200, description = "A page of events.", body = Feed), TenantErrors),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.events", skip_all, fields(tenant = %call.tenant.id))]
pub async fn handler(
    call: TenantCall,
    RawQuery(query): RawQuery,
) -> Result<Json<Feed>, PlatformError> {
    let FeedQuery { after, limit } = parse(query.as_deref())?;
    let tenant = call.tenant.id.clone();
    let events = call
        .app
        .store
        .run(move |c| outbox::list_after(c, &tenant, after, limit))
        .await?;
    Ok(Json(Feed {
        next_after: events.last().map_or(after, |event| event.seq),
        events: events.iter().map(OutboxEvent::published).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_defaults_to_the_start_and_bad_ones_name_the_parameter() {
        let query = |after, limit| FeedQuery { after, limit };
        assert_eq!(parse(None).unwrap(), query(0, 100));
        assert_eq!(parse(Some("after=41&limit=1000")).unwrap(), query(41, 1000));
        for (bad, field) in [
            ("after=-1", "after"),
            ("after=x", "after"),
            ("after=", "after"),
            ("after=1.5", "after"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("since=3", "since"),
        ] {
            assert_eq!(parse(Some(bad)).unwrap_err().field, field, "{bad}");
        }
    }
}
