//! A [`Store`] on a fresh database of either backend, migrated, for tests of `src/store/`; a
//! PostgreSQL database is dropped again when the test ends.

use std::time::Duration;

use openmeet_appservice::config::{Database, DatabaseUrl};
use openmeet_appservice::store::Store;

use super::Backend;

pub struct TestStore {
    pub store: Store,
    pub url: String,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if self.url.starts_with("postgres") {
            let url = self.url.clone();
            let _ = std::panic::catch_unwind(|| super::postgres::drop_database(&url));
        }
    }
}

/// A migrated store named after `name` on `backend`.
pub fn fresh(name: &str, backend: Backend) -> TestStore {
    let url = backend.database_url(name).unwrap_or_else(|| {
        format!(
            "sqlite://{}/{name}.db",
            super::python::scratch_dir(name).display()
        )
    });
    let store = Store::new(&Database {
        url: DatabaseUrl::parse(&url).unwrap(),
        migrate_on_start: true,
        max_connections: 8,
        acquire_timeout: Duration::from_secs(10),
    });
    store.migrate().unwrap();
    TestStore { store, url }
}

/// Declares a private event room `slug` of `tenant` on the default homeserver (named "`slug`
/// Chat") and returns its room key.
pub fn declare_room(store: &Store, tenant: &str, slug: &str) -> i64 {
    use openmeet_appservice::rooms::{RoomKind, Visibility};
    use openmeet_appservice::store::rooms::{self, Declaration};
    let declaration = Declaration {
        tenant_id: tenant.into(),
        homeserver: "default".into(),
        kind: RoomKind::Event,
        slug: slug.into(),
        name: format!("{slug} Chat"),
        topic: None,
        visibility: Visibility::Private,
    };
    rooms::declare(&mut store.connection().unwrap(), &declaration, 0)
        .unwrap()
        .0
        .id
}
