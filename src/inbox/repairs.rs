//! What delivered events call for, queued in the same transaction that marks them processed:
//! someone else changed `m.room.power_levels` or a setting the platform declared (name, topic,
//! join rule, history visibility, guest access, canonical alias) in a managed room → reconcile
//! it; a tenant's bot was kicked, banned or left a managed room → the room is `lost`, reconcile
//! it (only the room's own tenant bot; a deleted room's teardown makes its bot leave without
//! losing anything); a bot was invited into a room we neither manage nor wait to follow an
//! upgrade into (nor its own direct-message room with a user) → it declines; a managed room was upgraded → the bot follows it. The bots' own
//! events come back as echoes and cause nothing, so a repair never triggers another. Events in
//! rooms we do not manage cause nothing else.

use std::sync::Arc;

use ruma::UserId;

use super::classify::Observed;
use crate::config::Config;
use crate::jobs::{decline_invite, ensure_room, follow_upgrade};
use crate::rooms::settings;
use crate::store::direct_rooms;
use crate::store::inbox::{Handled, PendingEvent};
use crate::store::room_changes;
use crate::store::rooms::{self, Room, RoomStatus};
use crate::store::{DbConnection, StoreError, jobs};

/// An event of the batch with what the processor made of it.
type Processed = (PendingEvent, Handled<Observed>);

/// The follow-up for a batch (see `Store::process_inbox`).
pub fn follow_up(
    config: Arc<Config>,
    now_ms: i64,
) -> impl FnOnce(&mut DbConnection, &[Processed]) -> Result<(), StoreError> + Send + 'static {
    move |conn, processed| {
        for (event, handled) in processed {
            match &handled.meaning {
                Observed::OwnMembership(membership) if membership == "invite" => {
                    decline_if_unmanaged(conn, &config, event, now_ms)?
                }
                Observed::OwnMembership(membership)
                    if membership == "leave" || membership == "ban" =>
                {
                    if let Some(room) = managed(conn, &event.room_id)?
                        && is_rooms_own_bot(&config, &room, event)
                    {
                        tracing::warn!(room_id = %event.room_id, by = %event.sender, "a tenant bot was removed from a managed room: it is lost");
                        let reason =
                            format!("the bot was removed from the room by {}", event.sender);
                        room_changes::set_status(
                            conn,
                            room.id,
                            RoomStatus::Lost,
                            Some(&reason),
                            now_ms,
                        )?;
                        reconcile(conn, &room, now_ms)?;
                    }
                }
                Observed::Tombstone => {
                    let replacement = serde_json::from_str::<serde_json::Value>(&event.event_json)
                        .ok()
                        .and_then(|e| e["content"]["replacement_room"].as_str().map(str::to_owned));
                    if let (Some(room), Some(replacement)) =
                        (managed(conn, &event.room_id)?, replacement)
                    {
                        tracing::info!(room_id = %event.room_id, %replacement, "a managed room was upgraded: following");
                        jobs::enqueue(conn, &follow_upgrade::new_job(&room, &replacement), now_ms)?;
                    }
                }
                Observed::PowerLevels => {
                    if let Some(room) = managed(conn, &event.room_id)? {
                        tracing::info!(room_id = %event.room_id, by = %event.sender, "power levels changed by someone else: reconciling");
                        reconcile(conn, &room, now_ms)?;
                    }
                }
                Observed::Settings => {
                    // A topic the platform never declared is not the daemon's to put back.
                    let owned =
                        |room: &Room| event.event_type != settings::TOPIC || room.topic.is_some();
                    if let Some(room) = managed(conn, &event.room_id)?.filter(owned) {
                        tracing::info!(room_id = %event.room_id, by = %event.sender, event_type = %event.event_type, "a declared setting changed by someone else: reconciling");
                        reconcile(conn, &room, now_ms)?;
                    }
                }
                _ => {}
            }
        }
        super::members::members_seen(conn, processed, now_ms)
    }
}

fn managed(conn: &mut DbConnection, room_id: &str) -> Result<Option<Room>, StoreError> {
    rooms::find_live_by_room_id(conn, room_id)
}

/// Whether the membership `event` is about the bot of `room`'s own tenant: only losing that one
/// loses the room (the sender or another tenant's bot leaving changes nothing we rely on).
fn is_rooms_own_bot(config: &Config, room: &Room, event: &PendingEvent) -> bool {
    event
        .state_key
        .as_deref()
        .and_then(|key| UserId::parse(key).ok())
        .and_then(|user| {
            config
                .tenant_of_bot(&user)
                .map(|tenant| tenant.id == room.tenant_id)
        })
        .unwrap_or(false)
}

/// Queues the room's `ensure_room` unless one is already waiting.
fn reconcile(conn: &mut DbConnection, room: &Room, now_ms: i64) -> Result<(), StoreError> {
    if !jobs::has_queued(conn, room.id, ensure_room::KIND)? {
        jobs::enqueue(conn, &ensure_room::new_job(room), now_ms)?;
    }
    Ok(())
}

fn decline_if_unmanaged(
    conn: &mut DbConnection,
    config: &Config,
    event: &PendingEvent,
    now_ms: i64,
) -> Result<(), StoreError> {
    let Some(bot) = event
        .state_key
        .as_deref()
        .and_then(|key| UserId::parse(key).ok())
    else {
        return Ok(());
    };
    let Some(tenant) = config.tenant_of_bot(&bot) else {
        return Ok(());
    };
    // An upgraded room the bot could not join yet is not ours on record, but the failed
    // `follow_upgrade` tells the operator to invite the bot there: that invite is kept. So is one
    // into the bot's own direct-message room with a user (not managed, not foreign either).
    if rooms::find_by_room_id(conn, &event.room_id)?.is_none()
        && !follow_upgrade::is_pending_target(conn, &event.room_id)?
        && !direct_rooms::is_direct_room(conn, &tenant.id, &event.room_id)?
    {
        tracing::info!(room_id = %event.room_id, by = %event.sender, "a bot was invited into a room we do not manage: declining");
        jobs::enqueue(
            conn,
            &decline_invite::new_job(&tenant.id, &event.room_id),
            now_ms,
        )?;
    }
    Ok(())
}
