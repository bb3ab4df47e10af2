//! `serve`: migrations, the three listeners, the inbox processor, the job worker, the webhook
//! worker, the singletons' leases (`leadership`), the retention pruner, the homeserver watchdog
//! and the SIGHUP reloader, with a graceful shutdown on SIGTERM or SIGINT: stop accepting, finish
//! in-flight requests and the current inbox batch, finish the jobs and deliveries in hand within
//! a grace period or hand them back, give up the roles — another replica takes over at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::homeservers::{probe, watchdog};
use crate::{api, inbox, jobs, leadership, observability, reload, webhooks};

/// Serves until SIGTERM or SIGINT; `config_path` is re-read on SIGHUP.
pub async fn serve(app: Arc<App>, config_path: PathBuf) -> anyhow::Result<()> {
    let config = app.config().clone();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), database = %config.database.url.describe(), "starting");
    if config.database.migrate_on_start {
        let store = app.store.clone();
        let applied = tokio::task::spawn_blocking(move || store.migrate())
            .await?
            .context("could not apply migrations at start (set database.migrate_on_start: false to run `migrate` separately)")?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations");
        }
    }
    // Held for the daemon's life: `migrate-db` refuses a database a daemon is using.
    let url = config.database.url.clone();
    let _presence = match tokio::task::spawn_blocking(move || crate::store::presence::hold(&url))
        .await?
    {
        Ok(presence) => Some(presence),
        Err(error) => {
            tracing::warn!(%error, "could not take the database's presence lock: migrate-db will not see that this daemon uses it");
            None
        }
    };
    // A config that moves a tenant away from its rooms' homeserver is refused here as at a reload.
    // A database that cannot answer yet does not stop the start (the daemon answers 503 until it
    // is back, as always); the next reload checks again.
    let store = app.store.clone();
    let checked = config.clone();
    match tokio::task::spawn_blocking(move || crate::tenant_moves::refuse_moves(&checked, &store))
        .await?
    {
        Ok(()) => {}
        Err(refused @ crate::tenant_moves::MoveError::Refused(_)) => {
            return Err(anyhow::Error::new(refused).context("refusing to start"));
        }
        Err(error) => {
            tracing::warn!(%error, "could not check at start that no tenant moved away from its rooms' homeserver")
        }
    }
    // SQLite's event-id dedupe, read before Synapse's first transaction rather than inside it.
    let started = std::time::Instant::now();
    match app.store.load_seen_events().await {
        Ok(Some((events, bytes))) => tracing::info!(
            events,
            mib = format!("{:.1}", bytes as f64 / 1_048_576.0),
            ms = started.elapsed().as_millis() as u64,
            "loaded the event ids the inbox holds"
        ),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, "could not load the event ids the inbox holds at start; the first transaction will")
        }
    }
    let listeners = [
        (
            "appservice",
            config.listen.appservice,
            api::appservice::router(app.clone()).merge(api::client::router(app.clone())),
        ),
        (
            "platform",
            config.listen.platform,
            api::platform::router(app.clone()),
        ),
        (
            "metrics",
            config.listen.metrics,
            observability::routes::router(app.clone()),
        ),
    ];
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for (name, address, router) in listeners {
        let listener = bind(name, address).await?;
        tracing::info!(listener = name, %address, "listening");
        let mut shutdown = shutdown_rx.clone();
        tasks.spawn(async move {
            let stop = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        });
    }
    let processor = tokio::spawn(inbox::run(app.clone(), shutdown_rx.clone()));
    let checkpoints = tokio::spawn(crate::store::checkpoint::run(
        app.store.clone(),
        shutdown_rx.clone(),
    ));
    let worker = config
        .jobs
        .enabled
        .then(|| tokio::spawn(jobs::worker::run(app.clone(), shutdown_rx.clone())));
    let probe = config
        .jobs
        .enabled
        .then(|| tokio::spawn(probe::run(app.clone(), shutdown_rx.clone())));
    let webhooks = config
        .jobs
        .enabled
        .then(|| tokio::spawn(webhooks::run(app.clone(), shutdown_rx.clone())));
    let leadership = tokio::spawn(leadership::leases::run(app.clone(), shutdown_rx.clone()));
    let pruner = tokio::spawn(jobs::prune::run(app.clone(), shutdown_rx.clone()));
    let watchdog = tokio::spawn(watchdog::run(app.clone(), shutdown_rx.clone()));
    let queue_stats = tokio::spawn(observability::queue_stats::run(
        app.clone(),
        shutdown_rx.clone(),
    ));
    let reloader = tokio::spawn(reload::run(app.clone(), config_path, shutdown_rx));

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = shutdown_tx.send(true);
    while let Some(result) = tasks.join_next().await {
        result?.context("a listener failed")?;
    }
    watchdog.abort();
    queue_stats.abort();
    if let Some(probe) = probe {
        probe.abort();
    }
    reloader.abort();
    let _ = processor.await;
    let _ = checkpoints.await;
    let _ = pruner.await;
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    if let Some(webhooks) = webhooks {
        let _ = webhooks.await;
    }
    let _ = leadership.await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn bind(name: &str, address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address} for listen.{name}: is another process using it? Choose a free address in the config.")
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
