//! Tenant tokens: `Authorization: Bearer <tenant api_token>`. A token reaches only its own tenant.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::PlatformError;
use crate::config::{Config, Tenant};

/// The tenant whose token the request carries (compared in constant time).
pub fn tenant<'a>(config: &'a Config, headers: &HeaderMap) -> Result<&'a Tenant, PlatformError> {
    let presented = crate::api::bearer::token(headers).ok_or(PlatformError::MissingToken)?;
    let presented = Sha256::digest(presented.as_bytes());
    let mut found = None;
    for tenant in &config.tenants {
        let matches =
            bool::from(Sha256::digest(tenant.api_token.expose().as_bytes()).ct_eq(&presented));
        if matches && found.is_none() {
            found = Some(tenant);
        }
    }
    found.ok_or(PlatformError::UnknownToken)
}

/// The tenant named in the path, which must be the token's own.
pub fn tenant_in_path<'a>(
    config: &'a Config,
    headers: &HeaderMap,
    tenant_id: &str,
) -> Result<&'a Tenant, PlatformError> {
    let caller = tenant(config, headers)?;
    if !config.tenants.iter().any(|t| t.id == tenant_id) {
        return Err(PlatformError::UnknownTenant(tenant_id.to_owned()));
    }
    if caller.id != tenant_id {
        return Err(PlatformError::OtherTenant(caller.id.clone()));
    }
    Ok(caller)
}
