//! A tenant's rooms live on its homeserver; pointing the tenant at another homeserver would
//! orphan them (DESIGN §13). A config that does so while the tenant has declared rooms is
//! refused, naming the rooms; moving a tenant is declaring its rooms anew on the new server
//! after deleting them on the old one.

use crate::config::Config;
use crate::store::{Store, StoreError, tenant_rooms};

/// How many rooms a refusal names before it says "and N more".
const NAMED: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("{}", .0.join("; "))]
    Refused(Vec<String>),
    #[error("cannot check whether a tenant with rooms moves to another homeserver: {0}")]
    Store(#[from] StoreError),
}

/// Refuses `config` when it puts a tenant on another homeserver than the one its declared (not
/// deleted) rooms live on, as the database records them; one sentence per such tenant. Asked at
/// start and at every reload, so neither a SIGHUP nor a restart (a rollout) moves a tenant away
/// from its rooms.
pub fn refuse_moves(config: &Config, store: &Store) -> Result<(), MoveError> {
    let mut conn = store.connection()?;
    let mut refusals = Vec::new();
    for tenant in &config.tenants {
        let Some(elsewhere) =
            tenant_rooms::live_elsewhere(&mut conn, &tenant.id, &tenant.homeserver, NAMED)?
        else {
            continue;
        };
        let total = elsewhere.total;
        let more = match total - elsewhere.names.len() as i64 {
            0 => String::new(),
            more => format!(" and {more} more"),
        };
        refusals.push(format!(
            "tenant {:?} would move from homeserver {:?} to {:?} while it has {total} declared room(s) there ({}{more}): its rooms stay on the old server, so delete them through the platform API first (and declare them anew after the move), or keep tenants[].homeserver as it was",
            tenant.id,
            elsewhere.homeserver,
            tenant.homeserver,
            elsewhere.names.join(", ")
        ));
    }
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(MoveError::Refused(refusals))
    }
}
