//! `GET /v1/tenants/{tenant}/moderation?user_id=&after=&limit=`: the tenant's moderation audit
//! log, oldest first — `{"entries": [{id, at, action, user_id, room, reason, actor, expires_at,
//! job}]}`. Times are RFC 3339 in UTC with milliseconds; `room` is `{kind, slug}` or null for a
//! tenant-wide call. Page on with `after` = the last entry's id.

use axum::Json;
use axum::extract::RawQuery;
use serde_json::{Value, json};

use super::call::TenantCall;
use super::error::PlatformError;
use super::page;
use crate::clock::rfc3339;
use crate::rooms::FieldError;
use crate::store::moderation_log::{self, Entry};

pub use super::page::{DEFAULT_LIMIT, MAX_LIMIT};

/// How an entry reads in the API and in `moderation list`.
pub fn representation(entry: &Entry) -> Value {
    let room = match (&entry.room_kind, &entry.room_slug) {
        (Some(kind), Some(slug)) => json!({"kind": kind, "slug": slug}),
        _ => Value::Null,
    };
    json!({
        "id": entry.id,
        "at": rfc3339(entry.at),
        "action": entry.action,
        "user_id": entry.user_id,
        "room": room,
        "reason": entry.reason,
        "actor": entry.actor,
        "expires_at": entry.expires_at.map(rfc3339),
        "job": entry.job_id,
    })
}

/// What the query asks for.
struct Query {
    user_id: Option<String>,
    after: i64,
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

#[tracing::instrument(name = "platform.moderation_log", skip_all, fields(tenant = %call.tenant.id))]
pub async fn handler(
    call: TenantCall,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, PlatformError> {
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
    let entries: Vec<Value> = entries.iter().map(representation).collect();
    Ok(Json(json!({"entries": entries})))
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
