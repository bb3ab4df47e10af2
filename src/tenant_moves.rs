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

/// Refuses `new` when it puts a tenant of `old` on another homeserver while the tenant has
/// declared (not deleted) rooms; one sentence per such tenant. Asks the database only when a
/// tenant's homeserver changes.
pub fn refuse_moves(old: &Config, new: &Config, store: &Store) -> Result<(), MoveError> {
    let moved: Vec<_> = new
        .tenants
        .iter()
        .filter_map(|tenant| {
            let before = old.tenants.iter().find(|t| t.id == tenant.id)?;
            (before.homeserver != tenant.homeserver).then_some((before, tenant))
        })
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let mut conn = store.connection()?;
    let mut refusals = Vec::new();
    for (before, tenant) in moved {
        let (names, total) = tenant_rooms::live_names(&mut conn, &tenant.id, NAMED)?;
        if total == 0 {
            continue;
        }
        let more = match total - names.len() as i64 {
            0 => String::new(),
            more => format!(" and {more} more"),
        };
        refusals.push(format!(
            "tenant {:?} would move from homeserver {:?} to {:?} while it has {total} declared room(s) there ({}{more}): its rooms stay on the old server, so delete them through the platform API first (and declare them anew after the move), or keep tenants[].homeserver as it was",
            tenant.id,
            before.homeserver,
            tenant.homeserver,
            names.join(", ")
        ));
    }
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(MoveError::Refused(refusals))
    }
}
