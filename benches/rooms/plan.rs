//! What each run declares: its tenants, rooms, members and roles, and its daemon's config.

use openmeet_appservice::rooms::{RoleLevels, RoomKind};
use serde_json::{Value, json};

use crate::common::daemon::fresh_copy;
use crate::support::daemon::DaemonConfig;
use crate::{MAX_PARALLEL, PER_TENANT, TENANTS};

/// The tenant ids of one run: `{prefix}0` … (lowercase, so bot and alias spell them alike).
pub fn tenants(prefix: &str) -> Vec<String> {
    (0..TENANTS).map(|i| format!("{prefix}{i}")).collect()
}

pub fn tenant_of(room: usize) -> usize {
    room % TENANTS
}

pub fn slug(room: usize) -> String {
    format!("room-{room:03}")
}

pub fn room_name(room: usize) -> String {
    format!("Bench Room {room:03}")
}

pub fn room_topic(room: usize) -> String {
    format!("Chat room for bench room {room:03}")
}

/// The role of a room's `index`-th member.
fn role(index: usize) -> &'static str {
    match index {
        0 => "host",
        1 => "moderator",
        _ => "participant",
    }
}

/// The level `role` gives in an event room, by the daemon's default role levels.
pub fn level(role: &str) -> i64 {
    RoleLevels::default()
        .level(RoomKind::Event, role)
        .expect("a default event role")
}

/// Room `room`'s `per_room` members and roles: users `room * per_room ..`, all distinct within a
/// run.
pub fn room_members(
    members: &[String],
    room: usize,
    per_room: usize,
) -> Vec<(String, &'static str)> {
    (0..per_room)
        .map(|i| {
            (
                members[(room * per_room + i) % members.len()].clone(),
                role(i),
            )
        })
        .collect()
}

/// The `PUT` body declaring room `room` (private) with `members`; without `members` when none.
pub fn put_body(room: usize, members: &[(String, &str)]) -> Value {
    let mut body = json!({
        "name": room_name(room),
        "topic": room_topic(room),
        "visibility": "private",
    });
    if !members.is_empty() {
        body["members"] = members
            .iter()
            .map(|(user_id, role)| json!({"user_id": user_id, "role": role}))
            .collect();
    }
    body
}

/// A copy of the registered config on a fresh database, with this run's four tenants; with
/// `jobs_enabled: false` it only serves the APIs and queues jobs.
pub fn run_config(
    base: &DaemonConfig,
    prefix: &str,
    database_url: Option<String>,
    jobs_enabled: bool,
) -> DaemonConfig {
    DaemonConfig {
        tenants: tenants(prefix)
            .into_iter()
            .map(|id| {
                let name = format!("Bench {id}");
                (id, name)
            })
            .collect(),
        extra_yaml: format!(
            "jobs:\n  enabled: {jobs_enabled}\n  max_parallel: {MAX_PARALLEL}\n  per_tenant: {PER_TENANT}\n"
        ),
        ..fresh_copy(base, database_url)
    }
}
