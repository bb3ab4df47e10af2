//! The task that keeps this replica's leases (`leadership`): every [`ROUND`] it renews the roles
//! due, takes those whose holder let them lapse, and at shutdown gives up every role it holds.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use super::{ROUND, TTL, roles};
use crate::app::App;
use crate::store::{leader, unix_ms};

/// Takes, renews and gives up the roles until `shutdown`, then gives up every role this replica
/// holds, so another takes them at once.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut known: BTreeSet<String> = BTreeSet::new();
    loop {
        let wanted = roles(&app.config());
        if app.leadership.alone {
            for role in &wanted {
                app.metrics.leader.with_label_values(&[role]).set(1);
            }
        } else {
            round(&app, &wanted).await;
        }
        for gone in known.difference(&wanted).cloned().collect::<Vec<_>>() {
            give_up_role(&app, &gone).await;
        }
        known = wanted;
        tokio::select! {
            _ = tokio::time::sleep(ROUND) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    give_up(&app, &known).await;
}

/// One look at the roles: renews those due, tries those held by nobody or expired.
async fn round(app: &Arc<App>, wanted: &BTreeSet<String>) {
    let began = Instant::now();
    let due: Vec<String> = wanted
        .iter()
        .filter(|role| app.leadership.due(role, began))
        .cloned()
        .collect();
    if due.is_empty() {
        return;
    }
    let holder = app.config().jobs.worker_id.clone();
    let now = unix_ms(app.clock.now());
    let until = now + TTL.as_millis() as i64;
    let asked = due.clone();
    let answers: Vec<(String, Option<bool>)> = match app
        .store
        .write_in_background(move |c| {
            // A role another replica holds in force is not asked for: a follower only reads.
            let leases = leader::all(c)?;
            asked
                .into_iter()
                .map(|role| {
                    let taken = leases.iter().any(|lease| {
                        lease.name == role && lease.holder != holder && lease.expires_at >= now
                    });
                    let held = !taken && leader::hold(c, &role, &holder, now, until)?;
                    Ok((role, Some(held)))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
    {
        Ok(answers) => answers,
        Err(error) => {
            tracing::warn!(%error, "could not renew the singleton leases; roles lapse unless the database answers");
            due.into_iter().map(|role| (role, None)).collect()
        }
    };
    let changes = app.leadership.record(&answers, began);
    for role in &changes.taken {
        tracing::info!(role, "this replica now runs the role");
    }
    for role in &changes.lost {
        tracing::warn!(
            role,
            "another replica took the role (this one could not renew it in time)"
        );
    }
    for (role, _) in &answers {
        let held = app.leadership.holds(role);
        app.metrics
            .leader
            .with_label_values(&[role])
            .set(i64::from(held));
    }
}

async fn give_up_role(app: &Arc<App>, role: &str) {
    app.leadership.forget(&[role.to_owned()]);
    let _ = app.metrics.leader.remove_label_values(&[role]);
    if app.leadership.alone {
        return;
    }
    let (name, holder) = (role.to_owned(), app.config().jobs.worker_id.clone());
    if let Err(error) = app
        .store
        .write_in_background(move |c| leader::give_up_role(c, &name, &holder))
        .await
    {
        tracing::warn!(%error, role, "could not give up a role the config no longer has; its lease lapses");
    }
}

/// Stops acting on every role, then deletes this replica's rows.
async fn give_up(app: &Arc<App>, roles: &BTreeSet<String>) {
    let roles: Vec<String> = roles.iter().cloned().collect();
    app.leadership.forget(&roles);
    for role in &roles {
        app.metrics.leader.with_label_values(&[role]).set(0);
    }
    if app.leadership.alone {
        return;
    }
    let holder = app.config().jobs.worker_id.clone();
    match app
        .store
        .write_in_background(move |c| leader::give_up(c, &holder))
        .await
    {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "gave up this replica's roles"),
        Err(error) => {
            tracing::warn!(%error, "could not give up this replica's roles; they lapse within 15 s")
        }
    }
}
