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
//!
//! With several replicas one checks each homeserver: the holder of its `watchdog:{id}` role
//! (`leadership`) stores each verdict in `appservice_state`, and the others take it from there
//! every [`FOLLOW`]. A follower whose own jobs find the homeserver in trouble (they wake
//! `recheck`) checks it once itself rather than wait for the holder's next check.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::watch;

use crate::app::App;
use crate::homeservers::links::HomeserverLink;
use crate::homeservers::supervise::supervise;
use crate::leadership;
use crate::matrix::preflight::{self, Failure, Step};
use crate::observability::health::TokenState;
use crate::store::{state, unix_ms};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How often a replica that does not check a homeserver reads the verdict its checker stored.
const FOLLOW: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// The verdict the checking replica stored, for the others.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Shared {
    verdict: Verdict,
    detail: String,
    checked_at_ms: i64,
}

async fn watch_homeserver(app: Arc<App>, id: String, mut shutdown: watch::Receiver<bool>) {
    let mut last: Option<Verdict> = None;
    let mut followed_at: Option<i64> = None;
    let mut backoff = FIRST_BACKOFF;
    let role = leadership::watchdog(&id);
    loop {
        // The link of the config in force (a reload rebuilds its client, keeps its health).
        let Some(link) = app.link(&id) else { return };
        if !app.leadership.holds(&role) {
            if let Some(shared) = shared(&app, &id).await
                && followed_at != Some(shared.checked_at_ms)
                && is_fresh(&app, &id, &shared)
            {
                followed_at = Some(shared.checked_at_ms);
                apply(&app, &link, &shared.verdict);
                log(
                    &id,
                    &shared.verdict,
                    &shared.detail,
                    last.as_ref() != Some(&shared.verdict),
                );
                last = Some(shared.verdict);
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW) => continue,
                () = app.leadership.wait_for(&role) => continue,
                _ = link.health.recheck.notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            // This replica's jobs found trouble: look for itself once.
            let Some((verdict, detail)) = check(&app, &link).await else {
                return;
            };
            record(&app, &link, &verdict);
            log(&id, &verdict, &detail, last.as_ref() != Some(&verdict));
            last = Some(verdict);
            continue;
        }
        let Some((verdict, detail)) = check(&app, &link).await else {
            return;
        };
        record(&app, &link, &verdict);
        share(&app, &id, &verdict, &detail).await;
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

/// Stores `verdict` for the replicas that do not check this homeserver.
async fn share(app: &App, id: &str, verdict: &Verdict, detail: &str) {
    let now = unix_ms(app.clock.now());
    let shared = Shared {
        verdict: verdict.clone(),
        detail: detail.to_owned(),
        checked_at_ms: now,
    };
    let (key, value) = (
        state::health_key(id),
        serde_json::to_string(&shared).unwrap_or_default(),
    );
    if let Err(error) = app
        .store
        .write_in_background(move |c| state::set(c, &key, &value, now))
        .await
    {
        tracing::debug!(homeserver = id, %error, "could not share the homeserver's verdict with the other replicas");
    }
}

/// Whether a stored verdict is recent enough to follow: from the checker's last two intervals and
/// a lease's takeover (a verdict left by replicas long gone says nothing about now).
fn is_fresh(app: &App, id: &str, shared: &Shared) -> bool {
    let Some(interval) = app
        .config()
        .homeserver_by_id(id)
        .map(|homeserver| homeserver.homeserver.check_interval)
    else {
        return false;
    };
    let oldest = unix_ms(app.clock.now()) - (interval * 2 + leadership::TTL).as_millis() as i64;
    shared.checked_at_ms >= oldest
}

/// The verdict the checking replica stored last, if any.
async fn shared(app: &App, id: &str) -> Option<Shared> {
    let key = state::health_key(id);
    let stored = app.store.run(move |c| state::get(c, &key)).await.ok()??;
    serde_json::from_str(&stored).ok()
}

/// Sets the homeserver's health as `verdict` says, with its counters and gauges.
fn record(app: &App, link: &HomeserverLink, verdict: &Verdict) {
    let id = link.id.as_str();
    match verdict {
        Verdict::Ready => {
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
        Verdict::TokenRejected => app.metrics.token_rejected.with_label_values(&[id]).inc(),
        Verdict::Unreachable => app
            .metrics
            .homeserver_unreachable
            .with_label_values(&[id])
            .inc(),
        Verdict::Failing(_) => {}
    }
    apply(app, link, verdict);
}

/// Sets the homeserver's health as `verdict` says (what a follower takes from the checker).
fn apply(app: &App, link: &HomeserverLink, verdict: &Verdict) {
    let health = &link.health;
    let was_usable = health.homeserver_usable();
    match verdict {
        Verdict::Ready => {
            health.set_reachable(true);
            health.set_ping_ok(true);
            health.set_token(TokenState::Accepted);
        }
        Verdict::TokenRejected => {
            health.set_reachable(true);
            health.set_ping_ok(false);
            health.set_token(TokenState::Rejected);
        }
        Verdict::Unreachable => {
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
