//! SIGHUP: read the config file again and put it in force without dropping a request — tenants
//! added or removed, platform and admin tokens, hs_tokens (a rotation), the as_token, the log
//! level, job limits. Listeners and the database keep what they started with (a restart changes
//! them). A config that does not load is refused whole and the running one stays.

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
    let registration_changed = crate::registration::Registration::from_config(&new).to_yaml()
        != crate::registration::Registration::from_config(&old).to_yaml();
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
    if registration_changed {
        tracing::warn!(
            "the registration derived from the new config differs from the old one: print it with `openmeet-appservice registration`, install it in Synapse's app_service_config_files and restart Synapse (an hs_token list rotation needs this only when its first token changed)"
        );
    }
    app.health.config_changed.notify_one();
    app.jobs_wakeup.notify_one();
    app.webhooks_wakeup.notify_one();
    Ok(())
}
