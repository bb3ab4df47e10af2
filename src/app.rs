//! What every listener and worker of one daemon shares: config, database, homeserver client,
//! metrics, health, clock. Inbound handlers reach the homeserver only through the methods here.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use ruma::{OwnedUserId, UserId};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Config;
use crate::matrix;
use crate::observability::health::Health;
use crate::observability::metrics::Metrics;
use crate::store::Store;

pub struct App {
    /// Swapped whole on a reload (SIGHUP); read it with `config()`.
    config: RwLock<Arc<Config>>,
    pub store: Store,
    /// Rebuilt with the config on a reload (the as_token or homeserver settings may change).
    homeserver: RwLock<Arc<matrix::Client>>,
    pub metrics: Arc<Metrics>,
    pub health: Health,
    pub clock: Arc<dyn Clock>,
    /// Woken when a transaction stored new events, so the inbox processor starts at once.
    pub inbox_wakeup: Notify,
    /// Woken when a job was queued or finished, so the worker claims at once.
    pub jobs_wakeup: Notify,
    /// Woken after a commit that may have appended outbox events, so webhooks go out at once.
    pub webhooks_wakeup: Notify,
    /// One creation at a time per room (the worker and alias queries share these).
    room_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Users known to exist on the homeserver, so repeated queries cost no homeserver call.
    registered: Mutex<HashSet<OwnedUserId>>,
    /// The display name this process last gave each bot.
    named: Mutex<HashMap<OwnedUserId, String>>,
}

impl App {
    /// Fails only when no HTTP client can be built (see [`matrix::Client::new`]).
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<Self>, matrix::Error> {
        let metrics = Arc::new(Metrics::new());
        let homeserver = matrix::Client::new(
            &config.homeserver,
            config.appservice.as_token.clone(),
            metrics.clone(),
        )?;
        let store = Store::new(&config.database);
        Ok(Arc::new(Self {
            config: RwLock::new(Arc::new(config)),
            store,
            homeserver: RwLock::new(Arc::new(homeserver)),
            metrics,
            health: Health::default(),
            clock,
            inbox_wakeup: Notify::new(),
            jobs_wakeup: Notify::new(),
            webhooks_wakeup: Notify::new(),
            registered: Mutex::new(HashSet::new()),
            named: Mutex::new(HashMap::new()),
            room_locks: Mutex::new(HashMap::new()),
        }))
    }

    /// The config in force (a reload swaps it; holders of an older one finish with it).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("lock is never poisoned").clone()
    }

    /// The homeserver client for the config in force.
    pub fn homeserver(&self) -> Arc<matrix::Client> {
        self.homeserver
            .read()
            .expect("lock is never poisoned")
            .clone()
    }

    /// Puts a new config in force, with a homeserver client built for it. The database and
    /// listeners stay as they started (the caller refuses changes to them).
    pub fn replace_config(&self, config: Config) -> Result<(), matrix::Error> {
        let homeserver = matrix::Client::new(
            &config.homeserver,
            config.appservice.as_token.clone(),
            self.metrics.clone(),
        )?;
        *self.homeserver.write().expect("lock is never poisoned") = Arc::new(homeserver);
        *self.config.write().expect("lock is never poisoned") = Arc::new(config);
        // A new as_token or homeserver may know other users.
        self.forget_registered();
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
        let mut locks = self.room_locks.lock().expect("lock is never poisoned");
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(key).or_default().clone()
    }

    /// Makes sure a tenant's bot exists and carries the display name "OpenMeet ({tenant name})".
    /// Registering and naming are remembered apart: a user query registers the bot without
    /// naming it, and a renamed tenant (a reload) names it again.
    pub async fn ensure_bot(&self, tenant: &crate::config::Tenant) -> Result<(), matrix::Error> {
        let bot = self.config().bot_user_id(tenant);
        self.ensure_user_registered(&bot).await?;
        let name = format!("OpenMeet ({})", tenant.name);
        let named = self.named.lock().expect("lock is never poisoned").get(&bot) == Some(&name);
        if !named {
            self.homeserver().set_display_name(&bot, &name).await?;
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
        self.homeserver()
            .ensure_registered(user_id.localpart())
            .await?;
        self.registered
            .lock()
            .expect("lock is never poisoned")
            .insert(user_id.to_owned());
        Ok(())
    }
}
