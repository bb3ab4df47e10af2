//! `POST /_openmeet/antispam/user_may_join_room` `{user, room, is_invited}`
//!
//! Synapse asks before a local user joins a room. A user banned in a managed room, or across its
//! tenant (DESIGN §7.3), is refused even with an invite: an invite a moderator made by hand does
//! not lift a ban the platform declared. Our own users and unmanaged rooms are always allowed.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use ruma::UserId;
use serde::Deserialize;

use super::auth::CallingHomeserver;
use super::decision::{Answer, Refused, finish, room_and_users};
use crate::app::App;

const CALLBACK: &str = "user_may_join_room";

#[derive(Deserialize)]
pub struct Join {
    user: String,
    room: String,
}

#[tracing::instrument(name = "antispam.user_may_join_room", skip_all, fields(user = %join.user, room = %join.room))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Extension(CallingHomeserver(homeserver)): Extension<CallingHomeserver>,
    Json(join): Json<Join>,
) -> Response {
    let started = Instant::now();
    let answer = decide(&app, &homeserver, &join).await;
    finish(&app, CALLBACK, started, answer)
}

async fn decide(app: &App, homeserver: &str, join: &Join) -> Answer {
    let own =
        UserId::parse(&join.user).is_ok_and(|user| app.config().is_own_user_on(homeserver, &user));
    if own {
        return Answer::Allowed;
    }
    match room_and_users(app, homeserver, &join.room, &[&join.user]).await {
        Ok(None) => Answer::Allowed,
        Ok(Some((room, facts))) => match crate::rules::join(facts[0].banned) {
            Some(refusal) => Answer::Refused(Box::new(Refused::new(room, refusal, &join.user))),
            None => Answer::Allowed,
        },
        Err(error) => Answer::Undecided(error),
    }
}
