//! The platform API's OpenAPI 3.1 document (DESIGN §7.4), generated from the `#[utoipa::path]`
//! annotation next to each handler and the `ToSchema` types the handlers answer with, so it
//! cannot drift from the code. Served at `GET /v1/openapi.json` without auth, printed by
//! `openmeet-appservice openapi`, and checked in as `docs/platform-api.openapi.json`
//! (`make openapi` rewrites it; `tests/openapi.rs` fails when it is stale).
//!
//! The operations are the ones `super::operations` routes: a new route is its handler's
//! `#[utoipa::path]` (reusing the path parameters and error sets of `params.rs`) and one line
//! there.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use crate::store::outbox_data as data;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "OpenMeet appservice platform API",
        description = "The internal API OpenMeet core uses to declare Matrix rooms, their members \
            and moderation, send bot messages, follow the jobs that carry it all out and read what became of it (the events \
            feed; webhooks POST the same events). Every \
            error is JSON `{\"error\": \"<sentence>\", \"code\": \"<machine code>\"}`.",
    ),
    components(schemas(
        ErrorBody,
        data::RoomReady,
        data::RoomFailed,
        data::RoomLost,
        data::RoomReplaced,
        data::RoomDeleted,
        data::JobDead,
        data::MessageSent,
        data::ModerationApplied,
        data::MemberChange,
        data::UserMoved,
        data::ReportCreated,
        data::ReportedEvent,
        data::RuleRefused,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "rooms", description = "Declared rooms and their members (DESIGN §7, §7.1)."),
        (name = "messages", description = "Bot messages (DESIGN §7.2)."),
        (name = "moderation", description = "Bans, mutes, redactions and the audit log (DESIGN §7.3)."),
        (name = "reports", description = "Reports members made through the homeserver's report endpoints (DESIGN §7.3)."),
        (name = "users", description = "A user's Matrix id changing (DESIGN §14)."),
        (name = "events", description = "The events feed: what became of the declarations (DESIGN §7.4)."),
        (name = "jobs", description = "The jobs mutating calls queue."),
        (name = "operations", description = "For operators, and this document."),
    ),
)]
pub struct PlatformApi;

/// The security schemes the operations name: the tenant's `api_token`, and `admin_token`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "tenant_token",
            bearer(
                "The tenant's `tenants[].api_token` from the daemon's config; it reaches only \
                 that tenant's paths and jobs.",
            ),
        );
        components.add_security_scheme(
            "admin_token",
            bearer("The daemon's `admin_token`; without one in the config the route is off."),
        );
    }
}

/// The document as served and checked in: pretty-printed JSON (keys in a stable order), ending
/// with a newline.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, document) = super::operations().split_for_parts();
        let mut text = document
            .to_pretty_json()
            .unwrap_or_else(|error| unreachable!("the OpenAPI document serializes: {error}"));
        text.push('\n');
        text
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "get_openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object)),
)]
pub async fn served() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_crates_version_and_no_server() {
        let document: serde_json::Value =
            serde_json::from_str(document()).expect("the document is JSON");
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(document.get("servers").is_none(), "{}", document["servers"]);
    }
}
