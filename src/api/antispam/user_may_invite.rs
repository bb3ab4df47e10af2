//! `POST /_openmeet/antispam/user_may_invite` `{inviter, invitee, room_id}`
//!
//! Synapse asks before a local user invites someone. Into a managed room, only users at the
//! invite level the daemon pins (`rooms::power_levels::PINNED_LEVELS`, 50) or above invite, as the
//! daemon computes levels from declared roles; and no one invites a user banned there or across
//! the tenant. The tenant bots and the sender are never refused; unmanaged rooms are allowed.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use ruma::UserId;
use serde::Deserialize;

use super::auth::CallingHomeserver;
use super::decision::{Answer, Refused, finish, level, room_and_users};
use crate::app::App;

const CALLBACK: &str = "user_may_invite";

#[derive(Deserialize)]
pub struct Invite {
    inviter: String,
    invitee: String,
    room_id: String,
}

#[tracing::instrument(name = "antispam.user_may_invite", skip_all, fields(inviter = %invite.inviter, invitee = %invite.invitee, room = %invite.room_id))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Extension(CallingHomeserver(homeserver)): Extension<CallingHomeserver>,
    Json(invite): Json<Invite>,
) -> Response {
    let started = Instant::now();
    let answer = decide(&app, &homeserver, &invite).await;
    finish(&app, CALLBACK, started, answer)
}

async fn decide(app: &App, homeserver: &str, invite: &Invite) -> Answer {
    let config = app.config();
    let own =
        UserId::parse(&invite.inviter).is_ok_and(|user| config.is_own_user_on(homeserver, &user));
    if own {
        return Answer::Allowed;
    }
    let users = [invite.inviter.as_str(), invite.invitee.as_str()];
    match room_and_users(app, homeserver, &invite.room_id, &users).await {
        Ok(None) => Answer::Allowed,
        Ok(Some((room, facts))) => {
            let inviter_level = level(&config, &room, &facts[0]);
            match crate::rules::invite(inviter_level, facts[1].banned) {
                Some(refusal) => Answer::Refused(Box::new(Refused {
                    invitee: Some(invite.invitee.clone()),
                    ..Refused::new(room, refusal, &invite.inviter)
                })),
                None => Answer::Allowed,
            }
        }
        Err(error) => Answer::Undecided(error),
    }
}
