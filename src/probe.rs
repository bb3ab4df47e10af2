//! The loop-back probe: every `homeserver.probe_interval_seconds` the appservice's sender posts a
//! marker event in its private probe room; Synapse delivers it back to us in a transaction (the
//! sender is in our user namespace), and the transaction handler measures how long that took.
//! When markers stop coming back, Synapse is not delivering to us, whatever else looks healthy —
//! `openmeet_as_probe_last_received_timestamp_seconds` goes stale and the alert fires.
//!
//! The probe room is created by the sender on first use and its id kept in `appservice_state`,
//! shared by replicas; when it is gone (Synapse reset), a new one is made.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ruma::api::client::message::send_message_event;
use ruma::events::{AnyMessageLikeEventContent, MessageLikeEventType};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, OwnedTransactionId, RoomId};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::app::App;
use crate::config::secret::random_token;
use crate::matrix;
use crate::store::{state, unix_ms};

/// How often a probe that is off looks whether a reload turned it on.
const OFF_RECHECK: Duration = Duration::from_secs(10);

/// The marker's event type.
pub const EVENT_TYPE: &str = "net.openmeet.appservice.probe";

pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut room: Option<OwnedRoomId> = None;
    let mut failing = false;
    loop {
        let Some(interval) = app.config().homeserver.probe_interval else {
            // Off; a reload may turn it on. (`config_changed` is the watchdog's alone.)
            tokio::select! {
                _ = tokio::time::sleep(OFF_RECHECK) => continue,
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        };
        if app.health.homeserver_usable() && app.health.ping_ok() {
            match send(&app, &mut room).await {
                Ok(()) => {
                    app.metrics.probes_sent.inc();
                    if std::mem::take(&mut failing) {
                        tracing::info!("the loop-back probe is posting markers again");
                    }
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(%error, "could not post a loop-back probe marker; trying again next interval");
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
async fn send(app: &App, room: &mut Option<OwnedRoomId>) -> Result<(), matrix::Error> {
    if room.is_none() {
        *room = stored_room(app).await;
    }
    if let Some(room_id) = room.clone() {
        match post(app, &room_id).await {
            Err(error) if error.is_no_way_in() => {
                tracing::info!(%room_id, "the probe room is gone (was Synapse reset?); making a new one");
            }
            other => return other,
        }
    }
    let room_id = create_room(app).await?;
    *room = Some(room_id.clone());
    post(app, &room_id).await
}

async fn stored_room(app: &App) -> Option<OwnedRoomId> {
    let stored = app
        .store
        .run(|c| state::get(c, state::PROBE_ROOM_ID))
        .await
        .ok()
        .flatten()?;
    RoomId::parse(stored).ok()
}

async fn create_room(app: &App) -> Result<OwnedRoomId, matrix::Error> {
    let sender = app.config().sender_user_id();
    let body = json!({
        "name": "openmeet-appservice probe",
        "topic": "Loop-back probe markers of the OpenMeet appservice; nobody else belongs here.",
        "preset": "private_chat",
        "visibility": "private",
    });
    let room_id = app.homeserver().create_room(&sender, body).await?;
    let (id, now) = (room_id.to_string(), unix_ms(app.clock.now()));
    if let Err(error) = app
        .store
        .write(move |c| state::set(c, state::PROBE_ROOM_ID, &id, now))
        .await
    {
        tracing::warn!(%error, "could not store the probe room's id; it is made again at the next start");
    }
    tracing::info!(%room_id, "created the loop-back probe room");
    Ok(room_id)
}

async fn post(app: &App, room_id: &RoomId) -> Result<(), matrix::Error> {
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
    let sender = app.config().sender_user_id();
    app.homeserver().send(request, Some(&sender)).await?;
    Ok(())
}

/// Called by the transaction handler for each delivered event of [`EVENT_TYPE`] from our sender.
pub fn received(app: &App, event_json: &str) {
    let Some(sent_at_ms) = serde_json::from_str::<Value>(event_json)
        .ok()
        .and_then(|event| event["content"]["sent_at_ms"].as_i64())
    else {
        return;
    };
    let now = app.clock.now();
    let delay_ms = (unix_ms(now) - sent_at_ms).max(0);
    let metrics = &app.metrics;
    metrics.probes_received.inc();
    metrics
        .probe_delay_seconds
        .set(Duration::from_millis(delay_ms as u64).as_secs_f64());
    metrics.probe_last_received_seconds.set(
        now.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
    );
    tracing::debug!(delay_ms, "a loop-back probe marker came back");
}
