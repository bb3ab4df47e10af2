//! SIGHUP: read the config file again and put it in force without dropping a request — tenants
//! added or removed, platform and admin tokens, hs_tokens (a rotation), the as_token, the log
//! level, job limits. Listeners and the database keep what they started with (a restart changes
//! them). A config that does not load, or that moves a tenant with rooms to another homeserver
//! (`tenant_moves`), is refused whole and the running one stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::app::App;
use crate::config::Config;
use crate::observability::logging;

pub async fn run(app: Arc<App>, path: PathBuf, mut shutdown: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; config reloads need a restart");
                return;
            }
        };
        loop {
            tokio::select! {
                Some(()) = hangup.recv() => {
                    let outcome = match reload(&app, &path) {
                        Ok(()) => "applied",
                        Err(error) => {
                            tracing::error!("SIGHUP: kept the running config: {error}");
                            "rejected"
                        }
                    };
                    app.metrics.config_reloads.with_label_values(&[outcome]).inc();
                }
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (app, path);
        let _ = shutdown.wait_for(|stop| *stop).await;
    }
}

/// Loads `path` and puts it in force; the error says why nothing changed.
pub fn reload(app: &App, path: &Path) -> Result<(), String> {
    let mut new = Config::load(path).map_err(|error| error.to_string())?;
    let old = app.config();
    let mut notes = Vec::new();
    if new.listen != old.listen {
        notes.push("listen addresses change at the next restart");
        new.listen = old.listen.clone();
    }
    if new.database.url.describe() != old.database.url.describe()
        || new.database.max_connections != old.database.max_connections
    {
        notes.push("the database changes at the next restart");
    }
    new.database = old.database.clone();
    if new.jobs.worker_id != old.jobs.worker_id {
        notes.push("jobs.worker_id changes at the next restart");
        new.jobs.worker_id = old.jobs.worker_id.clone();
    }
    crate::tenant_moves::refuse_moves(&new, &app.store).map_err(|error| error.to_string())?;
    let changed_registrations = changed_registrations(&old, &new);
    let added: Vec<String> = new
        .tenants
        .iter()
        .filter(|t| !old.tenants.iter().any(|o| o.id == t.id))
        .map(|t| t.id.clone())
        .collect();
    let removed: Vec<String> = old
        .tenants
        .iter()
        .filter(|t| !new.tenants.iter().any(|n| n.id == t.id))
        .map(|t| t.id.clone())
        .collect();
    let (tenants, hs_tokens, level_changed) = (
        new.tenants.len(),
        new.appservice.hs_tokens.len(),
        new.logging.level != old.logging.level,
    );
    let level = new.logging.level.clone();
    app.replace_config(new).map_err(|error| error.to_string())?;
    if level_changed {
        logging::set_level(&level)?;
    }
    tracing::info!(
        tenants,
        ?added,
        ?removed,
        hs_tokens,
        %level,
        "SIGHUP: reloaded the config{}{}",
        if notes.is_empty() { "" } else { "; " },
        notes.join("; ")
    );
    for id in changed_registrations {
        tracing::warn!(
            homeserver = %id,
            "the registration derived from the new config differs from the old one: print it with `openmeet-appservice registration --homeserver {id}`, install it in that Synapse's app_service_config_files and restart that Synapse (an hs_token list rotation needs this only when its first token changed)"
        );
    }
    app.jobs_wakeup.notify_one();
    app.webhooks_wakeup.notify_one();
    Ok(())
}

/// The ids of the homeservers whose registration differs between `old` and `new` (added ones too).
fn changed_registrations(old: &Config, new: &Config) -> Vec<String> {
    let render = |homeserver: &crate::config::HomeserverConfig<'_>| {
        crate::registration::Registration::of(homeserver).to_yaml()
    };
    new.homeservers()
        .filter(|homeserver| {
            old.homeserver_by_id(homeserver.id).map(|old| render(&old)) != Some(render(homeserver))
        })
        .map(|homeserver| homeserver.id.to_owned())
        .collect()
}
