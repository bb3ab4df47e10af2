//! One task per homeserver of the config in force (its watchdog, its probe), started and stopped
//! as reloads add and remove homeservers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use crate::app::App;

/// Runs `task(app, id, shutdown)` once for every homeserver of the config in force, starting
/// one for each homeserver a reload adds and stopping the task of one it removes. A task should
/// return when [`App::link`] no longer knows its id.
pub async fn supervise<F, Fut>(app: Arc<App>, mut shutdown: watch::Receiver<bool>, task: F)
where
    F: Fn(Arc<App>, String, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut reloads = app.reloads();
    // Dropping the set (the supervisor aborted at shutdown) aborts every task in it.
    let mut tasks = tokio::task::JoinSet::new();
    let mut running: HashMap<String, tokio::task::AbortHandle> = HashMap::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let links = app.links();
        running.retain(|id, handle| {
            let keep = links.get(id).is_some() && !handle.is_finished();
            if !keep {
                handle.abort();
            }
            keep
        });
        for link in links.iter() {
            if !running.contains_key(&link.id) {
                let handle = tasks.spawn(task(app.clone(), link.id.clone(), shutdown.clone()));
                running.insert(link.id.clone(), handle);
            }
        }
        tokio::select! {
            changed = reloads.changed() => if changed.is_err() { break },
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
}
