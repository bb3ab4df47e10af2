//! Rooms declared through the platform API, made real by the tenants' bots in the real Synapse:
//! a module per concern, sharing the helpers below.

use serde_json::Value;

use crate::environment::{SERVER_NAME, environment};
use crate::support::daemon::Daemon;
use crate::support::matrix_client::TestUser;

mod access;
mod adoption;
mod creation;
mod cutover;
mod members;
mod rename;
mod repair;
mod shared_queue;
mod teardown;

fn user(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

/// `PUT` a room as `tenant` and wait for its job; returns the job.
pub(crate) async fn declare(
    daemon: &Daemon,
    tenant: &str,
    kind: &str,
    slug: &str,
    body: Value,
) -> Value {
    daemon.declare(tenant, kind, slug, body).await
}

/// A state event's content as `viewer` sees it.
async fn state(viewer: &TestUser, room_id: &str, event_type: &str) -> Value {
    let hs = environment().synapse.url.as_str();
    viewer
        .state_event(hs, room_id, event_type, "")
        .await
        .unwrap_or_else(|| panic!("no {event_type} in {room_id}"))
}
