//! `serve`: migrations, the three listeners, the inbox processor and the preflight loop, with a
//! graceful shutdown on SIGTERM or SIGINT (stop accepting, finish in-flight requests, finish the
//! current inbox batch).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::matrix::preflight;
use crate::observability::health::TokenState;
use crate::{api, jobs, observability};

/// How often a healthy daemon repeats the preflight (whoami and ping).
const RECHECK: Duration = Duration::from_secs(300);
/// The longest wait between preflight attempts while the homeserver is not ready.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub async fn serve(app: Arc<App>) -> anyhow::Result<()> {
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
    let listeners = [
        (
            "appservice",
            config.listen.appservice,
            api::appservice::router(app.clone()),
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
    let processor = tokio::spawn(jobs::inbox::run(app.clone(), shutdown_rx.clone()));
    let worker = config
        .jobs
        .enabled
        .then(|| tokio::spawn(jobs::worker::run(app.clone(), shutdown_rx.clone())));
    let preflight = tokio::spawn(preflight_loop(app.clone(), shutdown_rx));

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = shutdown_tx.send(true);
    while let Some(result) = tasks.join_next().await {
        result?.context("a listener failed")?;
    }
    preflight.abort();
    let _ = processor.await;
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    tracing::info!("stopped");
    Ok(())
}

pub async fn bind(name: &str, address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| {
        format!("cannot listen on {address} for listen.{name}: is another process using it? Choose a free address in the config.")
    })
}

/// Runs the preflight until it passes (readiness stays red until then), then repeats it now and
/// then so that readiness follows the homeserver.
async fn preflight_loop(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let wait = match preflight::run(&app.homeserver(), &app.config()).await {
            Ok(report) => {
                app.health.set_token(TokenState::Accepted);
                app.health.set_ping_ok(true);
                let now = app
                    .clock
                    .now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                app.metrics
                    .last_successful_ping_seconds
                    .set(now.as_secs_f64());
                tracing::info!(sender = %report.sender, ping_ms = report.ping.as_millis() as u64, "preflight passed: ready");
                backoff = Duration::from_millis(250);
                RECHECK
            }
            Err(failure) => {
                match failure.step {
                    preflight::Step::Token => {
                        app.health.set_token(TokenState::Rejected);
                    }
                    // The homeserver did not answer: what it thinks of the token is unknown.
                    preflight::Step::Versions => {}
                    _ => {
                        app.health.set_token(TokenState::Accepted);
                    }
                }
                app.health.set_ping_ok(false);
                tracing::warn!(step = ?failure.step, retry_in_ms = backoff.as_millis() as u64, "preflight failed: {}", failure.message);
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = app.health.recheck.notified() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
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
