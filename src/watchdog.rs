//! Keeps readiness true to the homeserver. The preflight (whoami as the sender, the sender
//! registered, an appservice ping round trip) runs at start and every `check_interval`; its
//! verdict sets readiness and decides whether jobs may call the homeserver.
//!
//! - The token refused: readiness red, jobs wait, and the homeserver is asked again at most once
//!   per interval (whoami alone), or at once after a config reload.
//! - The homeserver unreachable: jobs wait; checks back off from 250 ms up to a minute.
//! - Ready again: the check that says so ended with a ping, and a successful ping makes Synapse
//!   resend its backlog of transactions at once.
//!
//! Each change of verdict is logged once, with what to do about it; repeats are debug lines.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::watch;

use crate::app::App;
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

pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut last: Option<Verdict> = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let (verdict, detail) = check(&app).await;
        record(&app, &verdict);
        let changed = last.as_ref() != Some(&verdict);
        log(&verdict, &detail, changed);
        last = Some(verdict.clone());
        let interval = app.config().homeserver.check_interval;
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
            _ = app.health.recheck.notified(), if listen_to_work => {}
            _ = app.health.config_changed.notified() => { backoff = FIRST_BACKOFF; }
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Runs the preflight; while the token is refused, only whoami until it is accepted.
async fn check(app: &App) -> (Verdict, String) {
    let config = app.config();
    let client = app.homeserver();
    let result = if app.health.token() == TokenState::Rejected {
        match preflight::sender(&client, &config).await {
            Ok(_) => preflight::ping(&client, &config).await.map(|_| ()),
            Err(failure) => Err(failure),
        }
    } else {
        preflight::run(&client, &config).await.map(|_| ())
    };
    match result {
        Ok(()) => (Verdict::Ready, String::new()),
        Err(Failure { step, message }) => (
            match step {
                Step::Token => Verdict::TokenRejected,
                Step::Versions => Verdict::Unreachable,
                other => Verdict::Failing(other),
            },
            message,
        ),
    }
}

fn record(app: &App, verdict: &Verdict) {
    let health = &app.health;
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
                .set(now.as_secs_f64());
        }
        Verdict::TokenRejected => {
            app.metrics.token_rejected.inc();
            health.set_reachable(true);
            health.set_ping_ok(false);
            health.set_token(TokenState::Rejected);
        }
        Verdict::Unreachable => {
            app.metrics.homeserver_unreachable.inc();
            health.set_ping_ok(false);
            health.set_reachable(false);
        }
        Verdict::Failing(_) => {
            health.set_reachable(true);
            health.set_ping_ok(false);
            health.set_token(TokenState::Accepted);
        }
    }
}

fn log(verdict: &Verdict, detail: &str, changed: bool) {
    if !changed {
        tracing::debug!(?verdict, "homeserver check: unchanged");
        return;
    }
    match verdict {
        Verdict::Ready => tracing::info!(
            "homeserver check passed: the as_token is accepted and Synapse reaches us; ready"
        ),
        Verdict::TokenRejected => tracing::error!(
            "not ready: {detail} Jobs wait (they do not fail) and resume by themselves once the token is accepted; the token is checked again once per homeserver.check_interval_seconds, or at once after a config reload (SIGHUP)."
        ),
        Verdict::Unreachable => tracing::warn!("not ready: {detail} Jobs wait until it answers."),
        Verdict::Failing(step) => tracing::warn!(?step, "not ready: {detail}"),
    }
}
