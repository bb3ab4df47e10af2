//! What the antispam callbacks read and write (DESIGN §7.3, "Rules before send"): the managed room
//! behind a Matrix room id with the users' declared roles, staff roles and bans, in a few indexed reads on one
//! connection; and a refusal's audit entry with its feed event, in one transaction.

use diesel::prelude::*;

use super::moderation::Kind;
use super::moderation_log::{self, NewEntry};
use super::outbox::{self, EventData};
use super::outbox_data::RuleRefused;
use super::rooms::{self, Room, within_write};
use super::schema::{moderation, room_members, tenant_staff};
use super::{DbConnection, StoreError};
use crate::on_backend;

/// What the store says of one user in the room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFacts {
    /// The declared role (`None`: not a declared member, or removed).
    pub role: Option<String>,
    /// Banned here, by the room or tenant-wide, and in force now.
    pub banned: bool,
    /// Their tenant staff role (`None`: not staff, or removed).
    pub staff_role: Option<String>,
}

/// The live managed room with Matrix id `room_id`, and the facts of each of `users` in it, in
/// their order; `None`: not a room we manage (deleted rooms are no longer managed).
pub fn room_and_users(
    conn: &mut DbConnection,
    room_id: &str,
    users: &[&str],
    now_ms: i64,
) -> Result<Option<(Room, Vec<UserFacts>)>, StoreError> {
    let Some(room) = rooms::find_live_by_room_id(conn, room_id)? else {
        return Ok(None);
    };
    let roles: Vec<(String, Option<String>)> = on_backend!(conn, c => room_members::table
        .filter(room_members::room_key.eq(room.id))
        .filter(room_members::user_id.eq_any(users))
        .select((room_members::user_id, room_members::role))
        .load(c))?;
    let banned: Vec<String> = on_backend!(conn, c => moderation::table
        .filter(moderation::tenant_id.eq(&room.tenant_id))
        .filter(moderation::user_id.eq_any(users))
        .filter(moderation::kind.eq(Kind::Ban.as_str()))
        .filter(moderation::room_key.eq(0).or(moderation::room_key.eq(room.id)))
        .filter(moderation::lifted_at.is_null())
        .filter(moderation::expires_at.is_null().or(moderation::expires_at.gt(now_ms)))
        .select(moderation::user_id)
        .load(c))?;
    let staff: Vec<(String, String)> = on_backend!(conn, c => tenant_staff::table
        .filter(tenant_staff::tenant_id.eq(&room.tenant_id))
        .filter(tenant_staff::user_id.eq_any(users))
        .filter(tenant_staff::removed_at.is_null())
        .select((tenant_staff::user_id, tenant_staff::role))
        .load(c))?;
    let facts = users
        .iter()
        .map(|user| UserFacts {
            role: roles
                .iter()
                .find(|(id, _)| id == user)
                .and_then(|(_, role)| role.clone()),
            banned: banned.iter().any(|id| id == user),
            staff_role: staff
                .iter()
                .find(|(id, _)| id == user)
                .map(|(_, role)| role.clone()),
        })
        .collect();
    Ok(Some((room, facts)))
}

/// Appends the refusal's audit entry (action `refuse`, reason `{rule}: {reason}`) and its
/// `rule.refused` feed event for `room`, in one transaction.
pub fn record_refusal(
    conn: &mut DbConnection,
    room: &Room,
    refused: &RuleRefused,
    now_ms: i64,
) -> Result<(), StoreError> {
    within_write(conn, |conn| {
        let entry = NewEntry {
            tenant_id: room.tenant_id.clone(),
            action: "refuse".to_owned(),
            user_id: refused.user_id.clone(),
            room: Some((room.kind.as_str().to_owned(), room.slug.clone())),
            reason: Some(format!("{}: {}", refused.rule, refused.reason)),
            ..NewEntry::default()
        };
        moderation_log::append(conn, &entry, now_ms)?;
        let data = EventData::RuleRefused(refused.clone());
        outbox::append_for_room(conn, room, &data, now_ms)?;
        Ok(())
    })
}
