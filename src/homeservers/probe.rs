//! The loop-back probe, one per homeserver: every `probe_interval_seconds` of a homeserver its
//! appservice sender posts a marker event in its private probe room; that Synapse delivers it
//! back to us in a transaction (the sender is in our user namespace), and the transaction
//! handler measures how long that took. When markers stop coming back, that Synapse is not
//! delivering to us, whatever else looks healthy —
//! `openmeet_as_probe_last_received_timestamp_seconds{homeserver}` goes stale and the alert
//! fires.
//!
//! Each probe room is created by its sender on first use and its id kept in `appservice_state`
//! (`state::probe_room_key`), shared by replicas; when it is gone (Synapse reset), a new one is
//! made.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ruma::api::client::message::send_message_event;
use ruma::events::{AnyMessageLikeEventContent, MessageLikeEventType};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, OwnedTransactionId, OwnedUserId, RoomId, UserId};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::app::App;
use crate::config::secret::random_token;
use crate::homeservers::links::HomeserverLink;
use crate::homeservers::supervise::supervise;
use crate::leadership;
use crate::matrix;
use crate::store::{state, unix_ms};

/// How often a probe that is off looks whether a reload turned it on.
const OFF_RECHECK: Duration = Duration::from_secs(10);

/// The marker's event type.
pub const EVENT_TYPE: &str = "net.openmeet.appservice.probe";

/// Probes every homeserver of the config in force, each in its own loop.
pub async fn run(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    supervise(app, shutdown, |app, id, shutdown| {
        probe_homeserver(app, id, shutdown)
    })
    .await;
}

async fn probe_homeserver(app: Arc<App>, id: String, mut shutdown: watch::Receiver<bool>) {
    // The series exist from the start, so "sent but none received" can be told.
    for counter in [&app.metrics.probes_sent, &app.metrics.probes_received] {
        counter.with_label_values(&[&id]).inc_by(0);
    }
    let mut room: Option<OwnedRoomId> = None;
    let mut failing = false;
    loop {
        let Some(link) = app.link(&id) else { return };
        let Some((interval, sender)) = app.config().homeserver_by_id(&id).map(|homeserver| {
            (
                homeserver.homeserver.probe_interval,
                homeserver.sender_user_id(),
            )
        }) else {
            return;
        };
        let Some(interval) = interval else {
            // Off; a reload may turn it on. (`config_changed` is the watchdog's alone.)
            tokio::select! {
                _ = tokio::time::sleep(OFF_RECHECK) => continue,
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        };
        // One replica probes each homeserver: the holder of its `probe:{id}` role.
        if app.leadership.holds(&leadership::probe(&id))
            && link.health.homeserver_usable()
            && link.health.ping_ok()
        {
            match send(&app, &link, &sender, &mut room).await {
                Ok(()) => {
                    app.metrics.probes_sent.with_label_values(&[&id]).inc();
                    if std::mem::take(&mut failing) {
                        tracing::info!(homeserver = %id, "the loop-back probe is posting markers again");
                    }
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(homeserver = %id, %error, "could not post a loop-back probe marker; trying again next interval");
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Posts one marker, making the probe room first when there is none (or it is gone).
async fn send(
    app: &App,
    link: &HomeserverLink,
    sender: &UserId,
    room: &mut Option<OwnedRoomId>,
) -> Result<(), matrix::Error> {
    if room.is_none() {
        *room = stored_room(app, &link.id).await;
    }
    if let Some(room_id) = room.clone() {
        match post(app, link, sender, &room_id).await {
            Err(error) if error.is_no_way_in() => {
                tracing::info!(homeserver = %link.id, %room_id, "the probe room is gone (was Synapse reset?); making a new one");
            }
            other => return other,
        }
    }
    let room_id = create_room(app, link, sender).await?;
    *room = Some(room_id.clone());
    post(app, link, sender, &room_id).await
}

async fn stored_room(app: &App, id: &str) -> Option<OwnedRoomId> {
    let key = state::probe_room_key(id);
    let stored = app
        .store
        .run(move |c| state::get(c, &key))
        .await
        .ok()
        .flatten()?;
    RoomId::parse(stored).ok()
}

async fn create_room(
    app: &App,
    link: &HomeserverLink,
    sender: &UserId,
) -> Result<OwnedRoomId, matrix::Error> {
    let body = json!({
        "name": "openmeet-appservice probe",
        "topic": "Loop-back probe markers of the OpenMeet appservice; nobody else belongs here.",
        "preset": "private_chat",
        "visibility": "private",
    });
    let room_id = link.client.create_room(sender, body).await?;
    let (id, now) = (room_id.to_string(), unix_ms(app.clock.now()));
    let key = state::probe_room_key(&link.id);
    if let Err(error) = app
        .store
        .write(move |c| state::set(c, &key, &id, now))
        .await
    {
        tracing::warn!(homeserver = %link.id, %error, "could not store the probe room's id; it is made again at the next start");
    }
    tracing::info!(homeserver = %link.id, %room_id, "created the loop-back probe room");
    Ok(room_id)
}

async fn post(
    app: &App,
    link: &HomeserverLink,
    sender: &UserId,
    room_id: &RoomId,
) -> Result<(), matrix::Error> {
    let content = json!({"sent_at_ms": unix_ms(app.clock.now())});
    let raw = Raw::<AnyMessageLikeEventContent>::from_json(
        serde_json::value::to_raw_value(&content)
            .map_err(|e| matrix::Error::Request(e.to_string()))?,
    );
    let txn_id = OwnedTransactionId::from(format!("probe-{}", &random_token()[..24]));
    let request = send_message_event::v3::Request::new_raw(
        room_id.to_owned(),
        txn_id,
        MessageLikeEventType::from(EVENT_TYPE),
        raw,
    );
    link.client.send(request, Some(sender)).await?;
    Ok(())
}

/// Called by the transaction handler for each delivered event of [`EVENT_TYPE`] from one of our
/// senders; the sender's server name says which homeserver's probe came back.
pub fn received(app: &App, event_json: &str) {
    let Some(event) = serde_json::from_str::<Value>(event_json).ok() else {
        return;
    };
    let Some(sent_at_ms) = event["content"]["sent_at_ms"].as_i64() else {
        return;
    };
    let config = app.config();
    let Some(homeserver) = event["sender"]
        .as_str()
        .and_then(|sender| OwnedUserId::try_from(sender).ok())
        .map(|sender| config.homeserver_of_user(&sender))
    else {
        return;
    };
    let id = homeserver.id;
    let now = app.clock.now();
    let delay_ms = (unix_ms(now) - sent_at_ms).max(0);
    let metrics = &app.metrics;
    metrics.probes_received.with_label_values(&[id]).inc();
    metrics
        .probe_delay_seconds
        .with_label_values(&[id])
        .set(Duration::from_millis(delay_ms as u64).as_secs_f64());
    metrics
        .probe_last_received_seconds
        .with_label_values(&[id])
        .set(
            now.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
        );
    tracing::debug!(
        homeserver = id,
        delay_ms,
        "a loop-back probe marker came back"
    );
}
