//! `GET /v1/tenants/{tenant}/events?after=&limit=`: the tenant's events feed (DESIGN §7.4),
//! oldest first — `{"events": [{id, type, at, tenant, room, data}], "next_after": n}`, where
//! `next_after` is the last event's id (or `after` when there is none yet). Ids count 1, 2, 3…
//! per tenant in commit order (`store/outbox.rs`), so a client that asks again with
//! `after=next_after` never misses an event and never sees one twice. `after` left out reads from
//! the oldest event kept (`retention.jobs_days`); `limit` is 1 to 1000, default 100.

use axum::Json;
use axum::extract::RawQuery;
use serde::Serialize;

use super::call::TenantCall;
use super::error::PlatformError;
use super::page;
use crate::rooms::FieldError;
use crate::store::outbox::{self, OutboxEvent, PublishedEvent};

/// One page of the feed.
#[derive(Debug, Serialize)]
pub struct Feed {
    pub events: Vec<PublishedEvent>,
    /// The `after` of the next call.
    pub next_after: i64,
}

/// `(after, limit)` from the query string.
fn parse(query: Option<&str>) -> Result<(i64, i64), FieldError> {
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
    Ok((after, limit))
}

#[tracing::instrument(name = "platform.events", skip_all, fields(tenant = %call.tenant.id))]
pub async fn handler(
    call: TenantCall,
    RawQuery(query): RawQuery,
) -> Result<Json<Feed>, PlatformError> {
    let (after, limit) = parse(query.as_deref())?;
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
        assert_eq!(parse(None).unwrap(), (0, 100));
        assert_eq!(parse(Some("after=41&limit=1000")).unwrap(), (41, 1000));
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
