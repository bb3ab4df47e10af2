//! `ensure_room`: makes Synapse match a declared room. Creates it once (adopting it when an earlier
//! attempt created it but crashed before storing its id; a room open to a group after the group's
//! room, `open_to`), puts back the aliases of its slugs and its settings (`ensure_settings`), its
//! directory listings (`ensure_directory`), bans and unbans (`ensure_moderation`), invites the declared
//! members who are not banned, applies their power levels and the mutes by read-modify-write, and
//! kicks members removed from the declaration. Each step looks before it acts, so a re-run changes
//! nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::{Value, json};

use super::diagnose;
use super::{
    JobError, ensure_directory, ensure_moderation, ensure_settings, repair_room, teardown_room,
};
use crate::app::App;
use crate::config::Tenant;
use crate::matrix::{self, RoomState};
use crate::rooms::{self, RoomKind};
use crate::store::jobs::{self as job_store, Job, NewJob};
use crate::store::member_state::{self, MemberState, Membership, Restriction};
use crate::store::moderation::{self, Moderation};
use crate::store::room_access::{self, Access};
use crate::store::rooms::{self as room_store, Room, RoomStatus};
use crate::store::unix_ms;

pub const KIND: &str = "ensure_room";

/// The job kinds that bring a tenant's rooms to its moderation: a lifted tenant-wide row stays
/// while one of them is queued or running.
const CONVERGING_KINDS: &[&str] = &[KIND, super::converge_tenant::KIND];

/// The reason given when a member the platform removed is kicked.
const REMOVED: &str = "Removed from the room";

pub fn new_job(room: &Room) -> NewJob {
    new_job_for(&room.tenant_id, room.id)
}

/// The job for room `room_key` of `tenant_id`, when only its key is at hand.
pub fn new_job_for(tenant_id: &str, room_key: i64) -> NewJob {
    NewJob {
        tenant_id: tenant_id.to_owned(),
        room_key: Some(room_key),
        kind: KIND.to_owned(),
        payload: json!({}),
    }
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let room_key = job
        .room_key
        .ok_or_else(|| JobError::Permanent("the job names no room".into()))?;
    converge(app, job.id, room_key, None).await
}

/// Makes Synapse match room `room_key` and records how that ended; with `generation`, only if the
/// room was not deleted since that generation was read. A DELETE accepted meanwhile wins: the
/// room is neither marked ready nor failed, and what this run created is torn down. `job_id` is
/// the job that runs it.
pub async fn converge(
    app: &Arc<App>,
    job_id: i64,
    room_key: i64,
    generation: Option<i64>,
) -> Result<Value, JobError> {
    let declared = load(app, room_key)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("room {room_key} is no longer declared")))?;
    let room = &declared.room;
    if !room.status.is_live() || generation.is_some_and(|g| g != room.generation) {
        return Ok(json!({"skipped": "the room was deleted"}));
    }
    let generation = room.generation;
    let result = ensure(app, job_id, &declared).await;
    let now = unix_ms(app.clock.now());
    let (status, error) = match &result {
        Ok(_) => (RoomStatus::Ready, None),
        Err(error) if error.retry_kind() == matrix::RetryKind::Permanent => {
            (RoomStatus::Failed, Some(error.sentence()))
        }
        Err(_) => return result,
    };
    let current = app
        .store
        .write(move |c| {
            room_store::set_status_if_current(
                c,
                room_key,
                generation,
                status,
                error.as_deref(),
                now,
            )
        })
        .await?;
    if !current {
        tracing::info!(room_key, "the room was deleted while its job ran");
        return Ok(json!({"skipped": "the room was deleted while the job ran"}));
    }
    result
}

/// What a declared room means in Matrix terms: its tenant's bot, its alias, the members' levels.
struct Plan {
    tenant: Tenant,
    bot: OwnedUserId,
    desired: BTreeMap<OwnedUserId, i64>,
    alias: OwnedRoomAliasId,
}

/// A room as declared: its members, who is banned or muted there, the moderation rows read, and
/// who else may find and join it.
struct Declared {
    room: Room,
    members: Vec<MemberState>,
    moderation: Vec<Moderation>,
    access: Access,
}

fn plan(app: &App, room: &Room, members: &[MemberState]) -> Result<Plan, JobError> {
    let config = app.config();
    let tenant = config
        .tenants
        .iter()
        .find(|t| t.id == room.tenant_id)
        .ok_or_else(|| {
            JobError::Permanent(format!(
                "tenant {} is no longer configured: add it back to tenants, or cancel the job",
                room.tenant_id
            ))
        })?;
    let kind = RoomKind::parse(&room.kind).map_err(|e| JobError::Permanent(e.to_string()))?;
    let levels = &config.roles;
    // A banned member is no member while the ban holds: not invited, no level.
    let desired = members
        .iter()
        .filter(|m| !m.ban.is_in_force())
        .filter_map(|m| {
            Some((
                UserId::parse(&m.user_id).ok()?,
                levels.level(kind, m.role()?).ok()?,
            ))
        })
        .collect();
    let server_name = &config.home_of(tenant).homeserver.server_name;
    let alias = rooms::alias(kind, &room.slug, &tenant.id, server_name)
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    Ok(Plan {
        bot: config.bot_user_id(tenant),
        tenant: tenant.clone(),
        desired,
        alias,
    })
}

/// Makes sure declared room `room_key` exists in Synapse and returns its id and version; `None`
/// when it is no longer declared, or was deleted since `generation` was read. One creation at a
/// time per room in this process (alias queries and jobs share the lock); across processes a lost
/// race finds the alias taken and adopts.
pub async fn ensure_created(
    app: &Arc<App>,
    room_key: i64,
    generation: i64,
) -> Result<Option<(OwnedRoomId, String)>, JobError> {
    let lock = app.room_lock(room_key);
    let _creating = lock.lock().await;
    let Some(Declared {
        room,
        members,
        access,
        ..
    }) = load(app, room_key).await?
    else {
        return Ok(None);
    };
    if !room.status.is_live() || room.generation != generation {
        return Ok(None);
    }
    if let (Some(room_id), Some(version)) = (&room.room_id, &room.room_version) {
        let room_id = RoomId::parse(room_id).map_err(|e| JobError::Permanent(e.to_string()))?;
        return Ok(Some((room_id, version.clone())));
    }
    let plan = plan(app, &room, &members)?;
    app.ensure_bot(&plan.tenant).await?;
    create(app, &room, &plan, access.open_to_room_key).await
}

async fn load(app: &Arc<App>, room_key: i64) -> Result<Option<Declared>, JobError> {
    let loaded = app
        .store
        .run(move |c| {
            let Some(room) = room_store::get(c, room_key)? else {
                return Ok(None);
            };
            let members = crate::store::members::members(c, room_key)?;
            let moderation = moderation::for_room(c, &room.tenant_id, room_key)?;
            Ok(Some(Declared {
                members: member_state::member_states(&members, &moderation),
                room,
                moderation,
                access: room_access::get(c, room_key)?,
            }))
        })
        .await?;
    Ok(loaded)
}

async fn ensure(app: &Arc<App>, job_id: i64, declared: &Declared) -> Result<Value, JobError> {
    let (room, members) = (&declared.room, declared.members.as_slice());
    let Plan {
        tenant,
        bot,
        desired,
        alias,
        ..
    } = plan(app, room, members)?;
    app.ensure_bot(&tenant).await?;
    let Some((mut room_id, mut version)) = ensure_created(app, room.id, room.generation).await?
    else {
        return Ok(json!({"skipped": "the room is no longer declared"}));
    };
    let first = app.client_for(&bot).room_state(&bot, &room_id).await;
    let (state, repair) = match first {
        Ok(state) if diagnose::healthy(&state, &bot) => (state, None),
        first => {
            let Some(repaired) = repair_room::repair(app, room, &bot, &room_id, first).await?
            else {
                return Ok(json!({"skipped": "the room was deleted while it was being replaced"}));
            };
            if let Some((new_id, new_version)) = repaired.replacement {
                (room_id, version) = (new_id, new_version);
            }
            (repaired.state, Some(repaired.record))
        }
    };
    // A room adopted from the sender may be of another version than new rooms get.
    if let Some(actual) = state.authority().map(|a| a.room_version().to_owned())
        && actual != version
    {
        let (room_key, id, now) = (room.id, room_id.to_string(), unix_ms(app.clock.now()));
        let (stored, generation) = (actual.clone(), room.generation);
        // Not stored when the room was deleted meanwhile; then the status is not written either.
        app.store
            .write(move |c| room_store::set_created(c, room_key, generation, &id, &stored, now))
            .await?;
        version = actual;
    }
    // Created from the declaration since this job read it (by this job, by an alias query under
    // the same room lock, or adopted from an earlier attempt's `createRoom`), and not repaired.
    let fresh = if room.room_id.is_none() && repair.is_none() {
        ensure_settings::Fresh::JustCreated
    } else {
        ensure_settings::Fresh::Existing
    };
    let open_to = super::open_to::group_room(app, declared.access.open_to_room_key).await?;
    let settings = ensure_settings::declared(room, open_to)?;
    ensure_settings::ensure_settings(app, room, &settings, &bot, &room_id, &state, fresh).await?;
    let note = declared.access.directory_note.as_deref();
    let visibility = settings.visibility;
    ensure_directory::ensure_directory(app, room, note, &bot, &room_id, visibility, fresh).await?;
    let mut memberships = state.memberships();
    let mut refused =
        ensure_moderation::ensure_bans(app, &bot, &room_id, &state, members, &mut memberships)
            .await?;
    for user in desired.keys() {
        match memberships.get(user).map(String::as_str) {
            Some("join" | "invite") => {}
            Some("ban") => {
                tracing::warn!(%user, "a declared member is banned from the room; not inviting")
            }
            _ => app.client_for(&bot).invite(&bot, &room_id, user).await?,
        }
    }
    for member in members {
        let Membership::Removed { reason } = &member.membership else {
            continue;
        };
        let Ok(user) = UserId::parse(&member.user_id) else {
            continue;
        };
        if matches!(
            memberships.get(&user).map(String::as_str),
            Some("join" | "invite")
        ) {
            let reason = reason.as_deref().unwrap_or(REMOVED);
            match app
                .client_for(&bot)
                .kick(&bot, &room_id, &user, reason)
                .await
            {
                Ok(()) => {}
                // Before room version 12 a member at the bot's own level cannot be kicked by it;
                // the rest of the declaration is still applied.
                Err(error) if error.is_forbidden() => {
                    tracing::warn!(%user, "cannot remove this member: their power level is at or above the bot's own")
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
    let (applied, unmutable) =
        apply_power_levels(app, &bot, &room_id, &version, &state, &desired, members).await?;
    let now = unix_ms(app.clock.now());
    let room_key = room.id;
    let read = declared.moderation.clone();
    app.store
        .write(move |c| {
            c.write(|c| {
                crate::store::members::record_applied_levels(c, room_key, &applied, now)?;
                moderation::forget_lifted(c, room_key, &read, job_id, CONVERGING_KINDS)
            })
        })
        .await?;
    refused.extend(ensure_moderation::unmutable(&unmutable));
    if !refused.is_empty() {
        return Err(JobError::Permanent(refused.join("; ")));
    }
    let mut result = json!({"room_id": room_id, "alias": alias, "room_version": version});
    if let Some(repair) = repair {
        result["repair"] = repair;
    }
    Ok(result)
}

/// Creates the room, or adopts it when the alias already points to one (an earlier attempt
/// created it and stopped before storing its id). Stores the id before anything else happens;
/// when the room was deleted while `createRoom` was in flight, queues the new room's teardown
/// instead and returns `None`.
async fn create(
    app: &Arc<App>,
    room: &Room,
    plan: &Plan,
    open_to_room_key: Option<i64>,
) -> Result<Option<(OwnedRoomId, String)>, JobError> {
    let (bot, alias) = (&plan.bot, &plan.alias);
    let version = match &app.config().homeserver_of_user(bot).homeserver.room_version {
        Some(version) => version.clone(),
        None => app.client_for(bot).default_room_version(bot).await?,
    };
    let open_to = super::open_to::group_room(app, open_to_room_key).await?;
    let declared = ensure_settings::declared(room, open_to)?;
    let body = rooms::create_room_body(&declared, bot, &version, &plan.desired);
    let room_id = match app.client_for(bot).create_room(bot, body).await {
        Ok(room_id) => room_id,
        Err(error) if error.is_in_use() => {
            match app
                .client_for(bot)
                .resolve_alias(bot, alias.clone())
                .await?
            {
                Some(room_id) => {
                    tracing::info!(%room_id, "the alias already names a room: adopting it");
                    room_id
                }
                None => {
                    return Err(JobError::Permanent(format!(
                        "the alias {alias} is taken but does not resolve: remove it from Synapse, then retry the job"
                    )));
                }
            }
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(%room_id, %version, "created the room");
    let (room_key, generation, id, stored_version, now) = (
        room.id,
        room.generation,
        room_id.to_string(),
        version.clone(),
        unix_ms(app.clock.now()),
    );
    let teardown = teardown_room::new_job_for(room, Some(&id), std::slice::from_ref(alias));
    let stored = app
        .store
        .write(move |c| {
            c.write(|c| {
                if room_store::set_created(c, room_key, generation, &id, &stored_version, now)? {
                    super::open_to::queue_followers(c, room_key, now)?;
                    return Ok(true);
                }
                job_store::enqueue(c, &teardown, now)?;
                Ok(false)
            })
        })
        .await?;
    if !stored {
        tracing::warn!(%room_id, "the room was deleted while it was being created: tearing the new room down");
        app.jobs_wakeup.notify_one();
        return Ok(None);
    }
    Ok(Some((room_id, version)))
}

/// Reads `m.room.power_levels`, sets the declared levels and the mutes, drops the entries of
/// removed members (and unmuted non-members) the daemon owned, leaves everyone else's alone, and
/// writes it back when anything changed. Returns what the daemon now owns per member, and the
/// muted users it cannot lower.
async fn apply_power_levels(
    app: &Arc<App>,
    bot: &UserId,
    room_id: &RoomId,
    version: &str,
    state: &RoomState,
    desired: &BTreeMap<OwnedUserId, i64>,
    members: &[MemberState],
) -> Result<(Vec<(String, Option<i32>)>, Vec<OwnedUserId>), JobError> {
    let current = state
        .content("m.room.power_levels", "")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let creators = match state.create() {
        Some((sender, content)) => rooms::privileged_creators(version, &sender, content),
        None => BTreeSet::new(),
    };
    let parsed = |m: &MemberState| UserId::parse(&m.user_id).ok();
    let muted: BTreeSet<OwnedUserId> = members
        .iter()
        .filter(|m| m.mute.is_in_force())
        .filter_map(parsed)
        .collect();
    // A mute's entry is the daemon's while it holds and until its lifting is applied.
    let owned: BTreeSet<OwnedUserId> = members
        .iter()
        .filter(|m| m.applied_level.is_some() || m.mute != Restriction::None)
        .filter_map(parsed)
        .collect();
    let wanted = rooms::Wanted {
        desired,
        muted: &muted,
        owned: &owned,
    };
    let reconciled = rooms::reconcile(&current, wanted, bot, &creators);
    if let Some(content) = &reconciled.content {
        app.client_for(bot)
            .set_state(bot, room_id, "m.room.power_levels", "", content)
            .await?;
    }
    for user in &reconciled.out_of_reach {
        tracing::warn!(%user, "cannot change this member's power level: it is at or above the bot's own");
    }
    // For members out of reach, what the room really has: the entry stays theirs to manage.
    let applied = members
        .iter()
        .filter(|m| m.membership != Membership::None)
        .map(|m| {
            let level = UserId::parse(&m.user_id).ok().and_then(|user| {
                if reconciled.out_of_reach.contains(&user) {
                    rooms::user_level(&current, &user)
                } else {
                    reconciled.levels.get(&user).copied()
                }
            });
            (m.user_id.clone(), level.map(|level| level as i32))
        })
        .collect();
    Ok((applied, reconciled.unmutable))
}
