//! What every listener and worker of one daemon shares: config, database, the homeservers'
//! clients and health, metrics, clock. Inbound handlers reach a homeserver only through the
//! methods here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use ruma::{OwnedUserId, UserId};
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Config;
use crate::homeservers::links::{HomeserverLink, Links};
use crate::leadership::Leadership;
use crate::matrix;
use crate::observability::metrics::Metrics;
use crate::store::Store;

pub struct App {
    /// Swapped whole on a reload (SIGHUP); read it with `config()`.
    config: RwLock<Arc<Config>>,
    pub store: Store,
    /// Each homeserver's client and health, rebuilt with the config on a reload (an as_token or
    /// URL may change, a homeserver may be added); health is kept per homeserver id.
    links: RwLock<Arc<Links>>,
    /// Bumped by every reload, for the tasks kept per homeserver (watchdog, probe).
    reloaded: watch::Sender<u64>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    /// The singleton roles this replica runs (DESIGN §15).
    pub leadership: Leadership,
    /// Woken when a transaction stored new events, so the inbox processor starts at once.
    pub inbox_wakeup: Notify,
    /// Woken when a job was queued or finished, so the worker claims at once.
    pub jobs_wakeup: Notify,
    /// Woken after a commit that may have appended outbox events, so webhooks go out at once.
    pub webhooks_wakeup: Notify,
    /// One creation at a time per room (the worker and alias queries share these).
    room_locks: KeyedLocks<i64>,
    /// One registration and naming at a time per bot: a tenant's first jobs start together, and
    /// only one of them needs to call the homeserver.
    bot_locks: KeyedLocks<OwnedUserId>,
    /// Users known to exist on the homeserver, so repeated queries cost no homeserver call.
    registered: Mutex<HashSet<OwnedUserId>>,
    /// The display name this process last gave each bot.
    named: Mutex<HashMap<OwnedUserId, String>>,
    /// Each user's recent messages per room, for the rules' rate limit (DESIGN §7.3).
    pub message_rates: crate::rules::MessageRates,
}

impl App {
    /// Fails only when no HTTP client can be built (see [`matrix::Client::new`]).
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<Self>, matrix::Error> {
        let metrics = Arc::new(Metrics::new());
        let links = Links::build(&config, &metrics, None)?;
        let store = Store::new(&config.database);
        store.count_writer_turns(metrics.sqlite_writer.clone());
        let backend = store.backend();
        Ok(Arc::new(Self {
            config: RwLock::new(Arc::new(config)),
            store,
            links: RwLock::new(Arc::new(links)),
            reloaded: watch::Sender::new(0),
            metrics,
            clock,
            leadership: Leadership::new(backend),
            inbox_wakeup: Notify::new(),
            jobs_wakeup: Notify::new(),
            webhooks_wakeup: Notify::new(),
            registered: Mutex::new(HashSet::new()),
            named: Mutex::new(HashMap::new()),
            room_locks: KeyedLocks::default(),
            bot_locks: KeyedLocks::default(),
            message_rates: crate::rules::MessageRates::default(),
        }))
    }

    /// The config in force (a reload swaps it; holders of an older one finish with it).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("lock is never poisoned").clone()
    }

    /// Every homeserver's client and health, for the config in force.
    pub fn links(&self) -> Arc<Links> {
        self.links.read().expect("lock is never poisoned").clone()
    }

    /// The homeserver with this id, while the config serves it.
    pub fn link(&self, id: &str) -> Option<Arc<HomeserverLink>> {
        self.links().get(id).cloned()
    }

    /// The homeserver tenant `tenant_id` lives on; the default one for a tenant no longer
    /// configured (its jobs fail on that before they call anything).
    pub fn link_of_tenant(&self, tenant_id: &str) -> Arc<HomeserverLink> {
        let homeserver = self
            .config()
            .homeserver_of(tenant_id)
            .map(|homeserver| homeserver.id.to_owned());
        let links = self.links();
        homeserver
            .and_then(|id| links.get(&id).cloned())
            .unwrap_or_else(|| links.default_link().clone())
    }

    /// The client of the homeserver `user_id` (one of our users) lives on: every call acting as
    /// a tenant bot or a homeserver's sender goes to that user's own homeserver.
    pub fn client_for(&self, user_id: &UserId) -> Arc<matrix::Client> {
        self.links()
            .for_server(user_id.server_name())
            .client
            .clone()
    }

    /// The default (top-level) homeserver's client.
    pub fn homeserver(&self) -> Arc<matrix::Client> {
        self.links().default_link().client.clone()
    }

    /// A receiver that changes at every reload (the tasks kept per homeserver follow it).
    pub fn reloads(&self) -> watch::Receiver<u64> {
        self.reloaded.subscribe()
    }

    /// Puts a new config in force, with a client built for each of its homeservers. The
    /// database and listeners stay as they started (the caller refuses changes to them).
    pub fn replace_config(&self, config: Config) -> Result<(), matrix::Error> {
        let links = Links::build(&config, &self.metrics, Some(&self.links()))?;
        *self.links.write().expect("lock is never poisoned") = Arc::new(links);
        *self.config.write().expect("lock is never poisoned") = Arc::new(config);
        // A new as_token or homeserver may know other users.
        self.forget_registered();
        self.reloaded.send_modify(|count| *count += 1);
        for link in self.links().iter() {
            link.health.config_changed.notify_one();
        }
        Ok(())
    }

    /// Whether `user_id` is known to exist on the homeserver (registered by this process, or
    /// found registered); `false` means not known yet, not known absent.
    pub fn known_registered(&self, user_id: &UserId) -> bool {
        self.registered
            .lock()
            .expect("lock is never poisoned")
            .contains(user_id)
    }

    /// Forgets which users are known to exist (the homeserver's database was reset).
    pub fn forget_registered(&self) {
        self.registered
            .lock()
            .expect("lock is never poisoned")
            .clear();
        self.named.lock().expect("lock is never poisoned").clear();
    }

    /// The lock that serialises creating room `key` in this process.
    pub fn room_lock(&self, key: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.room_locks.get(key)
    }

    /// The in-process lock of direct-message room `direct_key` (`direct_rooms.id`): one creation
    /// at a time. Room keys are positive, so the negated key shares their map without meeting one.
    pub fn direct_lock(&self, direct_key: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.room_locks.get(-direct_key)
    }

    /// Makes sure a tenant's bot exists and carries the display name "OpenMeet ({tenant name})".
    /// Registering and naming are remembered apart: a user query registers the bot without
    /// naming it, and a renamed tenant (a reload) names it again.
    pub async fn ensure_bot(&self, tenant: &crate::config::Tenant) -> Result<(), matrix::Error> {
        let bot = self.config().bot_user_id(tenant);
        let lock = self.bot_locks.get(bot.clone());
        let _one_at_a_time = lock.lock().await;
        self.ensure_user_registered(&bot).await?;
        let name = format!("OpenMeet ({})", tenant.name);
        let named = self.named.lock().expect("lock is never poisoned").get(&bot) == Some(&name);
        if !named {
            self.client_for(&bot).set_display_name(&bot, &name).await?;
            self.named
                .lock()
                .expect("lock is never poisoned")
                .insert(bot, name);
        }
        Ok(())
    }

    /// Makes sure one of our users (the sender or a tenant bot) exists on the homeserver.
    pub async fn ensure_user_registered(&self, user_id: &UserId) -> Result<(), matrix::Error> {
        if self
            .registered
            .lock()
            .expect("lock is never poisoned")
            .contains(user_id)
        {
            return Ok(());
        }
        self.client_for(user_id)
            .ensure_registered(user_id.localpart())
            .await?;
        self.registered
            .lock()
            .expect("lock is never poisoned")
            .insert(user_id.to_owned());
        Ok(())
    }
}

/// Async locks by key, each kept while someone holds it or waits for it.
struct KeyedLocks<K>(Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>);

impl<K> Default for KeyedLocks<K> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: Eq + std::hash::Hash> KeyedLocks<K> {
    fn get(&self, key: K) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().expect("lock is never poisoned");
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(key).or_default().clone()
    }
}
