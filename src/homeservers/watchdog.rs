//! Keeps each homeserver's health true, one check loop per homeserver (DESIGN §13: one
//! homeserver's trouble never delays another's checks). The preflight (whoami as that
//! homeserver's sender, the sender registered, an appservice ping round trip) runs at start and
//! every `check_interval` of that homeserver; its verdict sets the homeserver's health and
//! decides whether its tenants' jobs may call it.
//!
//! - The token refused: the homeserver unhealthy, its tenants' jobs wait, and it is asked again at
//!   most once per interval (whoami alone), or at once after a config reload.
//! - The homeserver unreachable: its tenants' jobs wait; checks back off from 250 ms up to a
//!   minute.
//! - Healthy again: the check that says so ended with a ping, and a successful ping makes that
//!   Synapse resend its backlog of transactions at once; the worker is woken.
//!
//! Each change of verdict is logged once, naming the homeserver, with what to do about it;
//! repeats are debug lines. A homeserver a reload adds gets its loop; a removed one's ends.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::watch;

use crate::app::App;
use crate::homeservers::links::HomeserverLink;
use crate::homeservers::supervise::supervise;
use crate::matrix::preflight::{self, Failure, Step};
use crate::observability::health::TokenState;

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Ready,
    TokenRejected,
    Unreachable,
    /// Another step failed: the token works, but the sender or the ping does not.
    Failing(Step),
}

/// Checks every homeserver of the config in force, each in its own loop.
pub async fn run(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    supervise(app, shutdown, |app, id, shutdown| {
        watch_homeserver(app, id, shutdown)
    })
    .await;
}

async fn watch_homeserver(app: Arc<App>, id: String, mut shutdown: watch::Receiver<bool>) {
    let mut last: Option<Verdict> = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        // The link of the config in force (a reload rebuilds its client, keeps its health).
        let Some(link) = app.link(&id) else { return };
        let Some((verdict, detail)) = check(&app, &link).await else {
            return;
        };
        record(&app, &link, &verdict);
        let changed = last.as_ref() != Some(&verdict);
        log(&id, &verdict, &detail, changed);
        last = Some(verdict.clone());
        let Some(interval) = app
            .config()
            .homeserver_by_id(&id)
            .map(|homeserver| homeserver.homeserver.check_interval)
        else {
            return;
        };
        let wait = match verdict {
            Verdict::Ready | Verdict::TokenRejected => {
                backoff = FIRST_BACKOFF;
                interval
            }
            Verdict::Unreachable | Verdict::Failing(_) => {
                let wait = backoff.min(interval);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        // While the token is refused, work does not wake the check: one call per interval.
        let listen_to_work = verdict != Verdict::TokenRejected;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = link.health.recheck.notified(), if listen_to_work => {}
            _ = link.health.config_changed.notified() => { backoff = FIRST_BACKOFF; }
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Runs the preflight against the homeserver; while its token is refused, only whoami until it
/// is accepted. `None`: the config in force no longer serves it.
async fn check(app: &App, link: &HomeserverLink) -> Option<(Verdict, String)> {
    let config = app.config();
    let homeserver = config.homeserver_by_id(&link.id)?;
    let client = &link.client;
    let result = if link.health.token() == TokenState::Rejected {
        match preflight::sender(client, &homeserver).await {
            Ok(_) => preflight::ping(client, &homeserver).await.map(|_| ()),
            Err(failure) => Err(failure),
        }
    } else {
        preflight::run(client, &homeserver).await
    };
    Some(match result {
        Ok(()) => (Verdict::Ready, String::new()),
        Err(Failure { step, message }) => (
            match step {
                Step::Token => Verdict::TokenRejected,
                Step::Versions => Verdict::Unreachable,
                other => Verdict::Failing(other),
            },
            message,
        ),
    })
}

fn record(app: &App, link: &HomeserverLink, verdict: &Verdict) {
    let health = &link.health;
    let id = link.id.as_str();
    let was_usable = health.homeserver_usable();
    match verdict {
        Verdict::Ready => {
            health.set_reachable(true);
            health.set_ping_ok(true);
            health.set_token(TokenState::Accepted);
            let now = app
                .clock
                .now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            app.metrics
                .last_successful_ping_seconds
                .with_label_values(&[id])
                .set(now.as_secs_f64());
        }
        Verdict::TokenRejected => {
            app.metrics.token_rejected.with_label_values(&[id]).inc();
            health.set_reachable(true);
            health.set_ping_ok(false);
            health.set_token(TokenState::Rejected);
        }
        Verdict::Unreachable => {
            app.metrics
                .homeserver_unreachable
                .with_label_values(&[id])
                .inc();
            health.set_ping_ok(false);
            health.set_reachable(false);
        }
        Verdict::Failing(_) => {
            health.set_reachable(true);
            health.set_ping_ok(false);
            health.set_token(TokenState::Accepted);
        }
    }
    if !was_usable && health.homeserver_usable() {
        // Its tenants' paused jobs may run again.
        app.jobs_wakeup.notify_one();
    }
}

fn log(homeserver: &str, verdict: &Verdict, detail: &str, changed: bool) {
    if !changed {
        tracing::debug!(homeserver, ?verdict, "homeserver check: unchanged");
        return;
    }
    match verdict {
        Verdict::Ready => tracing::info!(
            homeserver,
            "homeserver check passed: the as_token is accepted and Synapse reaches us; healthy"
        ),
        Verdict::TokenRejected => tracing::error!(
            homeserver,
            "homeserver unhealthy: {detail} Its tenants' jobs wait (they do not fail) and resume by themselves once the token is accepted; the token is checked again once per check_interval_seconds of this homeserver, or at once after a config reload (SIGHUP)."
        ),
        Verdict::Unreachable => tracing::warn!(
            homeserver,
            "homeserver unhealthy: {detail} Its tenants' jobs wait until it answers."
        ),
        Verdict::Failing(step) => {
            tracing::warn!(homeserver, ?step, "homeserver unhealthy: {detail}")
        }
    }
}
