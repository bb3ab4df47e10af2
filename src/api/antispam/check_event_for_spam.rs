//! `POST /_openmeet/antispam/check_event_for_spam` `{event}` (the event in client format, with
//! its `event_id`)
//!
//! Synapse asks before it sends an event. In a managed room whose tenant has `rules`, a message
//! (`m.room.message`, `m.sticker`, `m.room.encrypted`) from a user below `applies_below_level` is
//! refused when it carries a blocked link domain or word, or goes over the rate limit (per user
//! and room, in this process's memory: `rules::rate`). Other events, state events, our own users'
//! events and unmanaged rooms are allowed without reading the database.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use ruma::UserId;
use serde::Deserialize;
use serde_json::Value;

use super::auth::CallingHomeserver;
use super::decision::{Answer, Refused, finish, level, room_and_users};
use crate::app::App;
use crate::store::unix_ms;

const CALLBACK: &str = "check_event_for_spam";

#[derive(Deserialize)]
pub struct Check {
    event: Event,
}

#[derive(Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    event_type: String,
    sender: String,
    room_id: String,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    state_key: Option<String>,
    #[serde(default)]
    content: Value,
}

#[tracing::instrument(name = "antispam.check_event_for_spam", skip_all, fields(sender = %check.event.sender, room = %check.event.room_id, event_type = %check.event.event_type))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Extension(CallingHomeserver(homeserver)): Extension<CallingHomeserver>,
    Json(check): Json<Check>,
) -> Response {
    let started = Instant::now();
    let answer = decide(&app, &homeserver, &check.event).await;
    finish(&app, CALLBACK, started, answer)
}

async fn decide(app: &App, homeserver: &str, event: &Event) -> Answer {
    if event.state_key.is_some() || !crate::rules::is_message(&event.event_type) {
        return Answer::Allowed;
    }
    let config = app.config();
    let own =
        UserId::parse(&event.sender).is_ok_and(|user| config.is_own_user_on(homeserver, &user));
    if own {
        return Answer::Allowed;
    }
    let (room, facts) =
        match room_and_users(app, homeserver, &event.room_id, &[&event.sender]).await {
            Ok(Some(found)) => found,
            Ok(None) => return Answer::Allowed,
            Err(error) => return Answer::Undecided(error),
        };
    let Some(rules) = (config.tenant(&room.tenant_id)).and_then(|tenant| tenant.rules.as_ref())
    else {
        return Answer::Allowed;
    };
    let level = level(&config, &room, &facts[0]);
    let now_ms = unix_ms(app.clock.now());
    let admit = |limit| {
        app.message_rates
            .admit(room.id, &event.sender, limit, now_ms)
    };
    match crate::rules::message(rules, level, &event.content, admit) {
        Some(refusal) => Answer::Refused(Box::new(Refused {
            event_type: Some(event.event_type.clone()),
            event_id: event.event_id.clone(),
            ..Refused::new(room, refusal, &event.sender)
        })),
        None => Answer::Allowed,
    }
}
