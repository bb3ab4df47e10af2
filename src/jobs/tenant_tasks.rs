//! Tasks that each work for one tenant under a lease — the worker's job attempts, the webhook
//! sessions: how many run per tenant, waiting for the next one to end, and stopping with a grace
//! period. A task that panics or is cut short keeps its lease, so it runs again once that lapses
//! (or at this process's next start, which takes its own leases back).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinSet};

pub struct TenantTasks {
    running: JoinSet<()>,
    tenants: HashMap<Id, String>,
    /// What a task is, for the log (`job attempt`, `webhook delivery`).
    what: &'static str,
}

impl TenantTasks {
    pub fn new(what: &'static str) -> Self {
        Self {
            running: JoinSet::new(),
            tenants: HashMap::new(),
            what,
        }
    }

    pub fn spawn(&mut self, tenant: String, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.running.spawn(task);
        self.tenants.insert(handle.id(), tenant);
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// How many tasks run for each tenant that has any.
    pub fn per_tenant(&self) -> HashMap<String, usize> {
        let mut busy = HashMap::new();
        for tenant in self.tenants.values() {
            *busy.entry(tenant.clone()).or_default() += 1;
        }
        busy
    }

    /// Waits until a task ends; never returns while none runs (a `select!` branch that stays
    /// quiet). Cancel-safe.
    pub async fn next_ended(&mut self) {
        let id = match self.running.join_next_with_id().await {
            Some(Ok((id, ()))) => id,
            Some(Err(error)) => {
                tracing::error!(%error, task = self.what, "a task panicked; its lease will lapse and it runs again");
                error.id()
            }
            None => std::future::pending().await,
        };
        self.tenants.remove(&id);
    }

    /// Lets the running tasks finish within `grace`, then cuts the rest short (they keep their
    /// leases).
    pub async fn stop(mut self, grace: Duration) {
        let drained = tokio::time::timeout(grace, async {
            while self.running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = self.running.len(),
                task = self.what,
                "stopping with tasks in flight; they run again at the next start or when their leases lapse"
            );
            self.running.abort_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_are_counted_per_tenant_until_they_end_and_a_panic_is_one_that_ended() {
        let mut tasks = TenantTasks::new("test task");
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("a".into(), async {
            let _ = wait.await;
        });
        tasks.spawn("a".into(), async { panic!("on purpose") });
        tasks.spawn("b".into(), async {});
        assert_eq!(tasks.len(), 3);
        tasks.next_ended().await;
        tasks.next_ended().await;
        assert_eq!(tasks.per_tenant(), HashMap::from([("a".to_owned(), 1)]));
        release.send(()).unwrap();
        tasks.next_ended().await;
        assert!(tasks.per_tenant().is_empty());
        assert_eq!(tasks.len(), 0);
    }

    #[tokio::test]
    async fn stop_cuts_short_what_outlives_the_grace() {
        let mut tasks = TenantTasks::new("test task");
        tasks.spawn("a".into(), std::future::pending());
        let started = std::time::Instant::now();
        tasks.stop(Duration::from_millis(50)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
