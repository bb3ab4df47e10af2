//! What the callbacks share: reading the room and its users in one turn on the database, the
//! three kinds of answer, and a refusal's audit entry and feed event, written after the answer.
//!
//! A refusal is answered at once and recorded by a task of its own (`store::antispam::
//! record_refusal`, retried with a pause while the database is away), so a slow write never makes
//! Synapse wait. Before answering, the refusal is logged (a warning naming the tenant, room, user
//! and rule): a refusal whose record could not be written, or a crash before it was, still leaves
//! that line, and `openmeet_as_antispam_unrecorded_total` counts the writes given up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::config::Config;
use crate::rules::Refusal;
use crate::store::antispam::{self, UserFacts};
use crate::store::outbox_data::RuleRefused;
use crate::store::rooms::Room;
use crate::store::{StoreError, unix_ms};

/// Attempts at writing a refusal's record before it is given up (and counted).
const RECORD_ATTEMPTS: u32 = 5;

/// How a callback ended.
pub enum Answer {
    Allowed,
    Refused(Box<Refused>),
    /// The daemon cannot decide (the database is away): the module's `fail_open` decides.
    Undecided(StoreError),
}

/// A refusal with what its record needs.
pub struct Refused {
    pub room: Room,
    pub refusal: Refusal,
    pub user_id: String,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub invitee: Option<String>,
}

impl Refused {
    /// A refusal in `room` of what `user_id` did.
    pub fn new(room: Room, refusal: Refusal, user_id: &str) -> Self {
        Self {
            room,
            refusal,
            user_id: user_id.to_owned(),
            event_type: None,
            event_id: None,
            invitee: None,
        }
    }
}

/// The live managed room `room_id` of the calling homeserver with the facts of `users` in it;
/// `None`: not a room we manage there (always allowed).
pub async fn room_and_users(
    app: &App,
    homeserver: &str,
    room_id: &str,
    users: &[&str],
) -> Result<Option<(Room, Vec<UserFacts>)>, StoreError> {
    let room_id = room_id.to_owned();
    let users: Vec<String> = users.iter().map(|user| (*user).to_owned()).collect();
    let now_ms = unix_ms(app.clock.now());
    let found = app
        .store
        .run(move |conn| {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            antispam::room_and_users(conn, &room_id, &users, now_ms)
        })
        .await?;
    Ok(found.filter(|(room, _)| room.homeserver == homeserver))
}

/// The user's level in the room as the daemon computes it: the higher of their declared role's
/// level and their tenant staff role's (as `ensure_room` sets them), else the room's default, 0.
pub fn level(config: &Config, room: &Room, facts: &UserFacts) -> i64 {
    let declared =
        (facts.role.as_deref()).and_then(|role| config.roles.level(room.kind, role).ok());
    let staff = (facts.staff_role.as_deref()).and_then(|role| config.roles.staff_level(role).ok());
    declared.max(staff).unwrap_or(0)
}

/// Times the callback, answers, and hands a refusal's record to a task of its own.
pub fn finish(
    app: &Arc<App>,
    callback: &'static str,
    started: Instant,
    answer: Answer,
) -> Response {
    let (outcome, response) = match answer {
        Answer::Allowed => ("allowed", Json(json!({})).into_response()),
        Answer::Refused(refused) => {
            let body = json!({"errcode": "M_FORBIDDEN", "error": refused.refusal.reason});
            record(app, callback, *refused);
            (
                "refused",
                (StatusCode::FORBIDDEN, Json(body)).into_response(),
            )
        }
        Answer::Undecided(error) => {
            tracing::warn!(%error, callback, "could not decide an antispam callback: the module's fail_open applies");
            let text =
                "the appservice cannot read its database now; the module's fail_open applies";
            (
                "error",
                (StatusCode::SERVICE_UNAVAILABLE, text).into_response(),
            )
        }
    };
    app.metrics
        .antispam_seconds
        .with_label_values(&[callback, outcome])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `POST /_openmeet/antispam/{callback}` for a callback the daemon has no rule for: allowed.
pub async fn allow_other(Path(callback): Path<String>) -> Response {
    tracing::debug!(
        callback,
        "allowed an antispam callback the daemon has no rule for; list only the four it serves in enabled_callbacks"
    );
    Json(json!({})).into_response()
}

fn record(app: &Arc<App>, callback: &'static str, refused: Refused) {
    let Refused {
        room,
        refusal,
        user_id,
        event_type,
        event_id,
        invitee,
    } = refused;
    let rule = refusal.rule.as_str();
    tracing::warn!(
        tenant = room.tenant_id,
        room = format!("{}/{}", room.kind, room.slug),
        room_id = room.room_id.as_deref().unwrap_or_default(),
        user_id,
        rule,
        callback,
        event_id = event_id.as_deref().unwrap_or_default(),
        "a rule refused"
    );
    (app.metrics.antispam_refusals)
        .with_label_values(&[room.tenant_id.as_str(), rule])
        .inc();
    let data = RuleRefused {
        user_id,
        rule: rule.to_owned(),
        reason: refusal.reason,
        callback: callback.to_owned(),
        event_type,
        event_id,
        invitee,
        room_id: room.room_id.clone().unwrap_or_default(),
    };
    let app = app.clone();
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(200);
        for attempt in 1..=RECORD_ATTEMPTS {
            let (in_room, refused) = (room.clone(), data.clone());
            let now_ms = unix_ms(app.clock.now());
            let written = app
                .store
                .write_in_background(move |conn| {
                    antispam::record_refusal(conn, &in_room, &refused, now_ms)
                })
                .await;
            match written {
                Ok(()) => {
                    app.webhooks_wakeup.notify_one();
                    return;
                }
                Err(error) if attempt == RECORD_ATTEMPTS => {
                    app.metrics.antispam_unrecorded.inc();
                    tracing::error!(%error, tenant = room.tenant_id, user_id = data.user_id, rule = data.rule, "gave up writing a refusal's audit entry and feed event; the warning logged before it is the only trace");
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "could not write a refusal's audit entry and feed event yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 3;
                }
            }
        }
    });
}
