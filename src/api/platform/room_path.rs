//! The `/v1/tenants/{tenant}/rooms/{kind}/{slug}` part every room call shares.

use axum::http::HeaderMap;
use ruma::OwnedRoomAliasId;

use super::auth;
use super::error::PlatformError;
use crate::config::{Config, Tenant};
use crate::rooms::{self, RoomKind};

pub struct RoomPath<'a> {
    pub tenant: &'a Tenant,
    pub kind: RoomKind,
    pub slug: String,
    pub alias: OwnedRoomAliasId,
}

/// Checks the token against the tenant, then the kind and the slug.
pub fn parse<'a>(
    config: &'a Config,
    headers: &HeaderMap,
    (tenant, kind, slug): (String, String, String),
) -> Result<RoomPath<'a>, PlatformError> {
    let tenant = auth::tenant_in_path(config, headers, &tenant)?;
    let kind = RoomKind::parse(&kind)?;
    let alias = rooms::alias(kind, &slug, &tenant.id, &config.homeserver.server_name)?;
    Ok(RoomPath {
        tenant,
        kind,
        slug,
        alias,
    })
}
