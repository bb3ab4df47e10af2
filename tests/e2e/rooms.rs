//! Rooms declared through the platform API, made real by the tenants' bots in the real Synapse:
//! a module per concern, sharing the helpers below.

use serde_json::Value;

use crate::environment::{SERVER_NAME, environment};
use crate::support::daemon::Daemon;
use crate::support::matrix_client::TestUser;

mod access;
mod adoption;
mod big;
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

/// The bodies of the room's `m.room.message` events `viewer` can read, oldest first.
async fn texts(viewer: &TestUser, room_id: &str) -> Vec<String> {
    let hs = environment().synapse.url.as_str();
    let mut texts: Vec<String> = viewer
        .messages(hs, room_id, 100)
        .await
        .iter()
        .filter(|event| event["type"] == "m.room.message")
        .filter_map(|event| event["content"]["body"].as_str().map(str::to_owned))
        .collect();
    texts.reverse();
    texts
}

/// `PUT`s the room and waits for its job; returns the job whatever its end.
async fn declare_and_wait(daemon: &Daemon, kind: &str, slug: &str, body: Value) -> Value {
    let id = daemon.put_room("tenantA", kind, slug, body).await;
    let token = daemon.config.tenant_token("tenantA");
    daemon.wait_for_job(id, &token).await
}
