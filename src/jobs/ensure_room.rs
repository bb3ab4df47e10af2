//! `ensure_room`: makes Synapse match a declared room. Creates it once (`create_room`: adopting it
//! when an earlier attempt created it but crashed before storing its id; a room open to a group
//! after the group's room), puts back the aliases of its slugs and its settings
//! (`ensure_settings`), its directory listings (`ensure_directory`), bans and unbans
//! (`ensure_moderation`), invites the declared
//! members who are not banned, applies their power levels, the tenant staff's (never invited) and
//! the mutes by read-modify-write, and kicks members removed from the declaration. Each step looks before it acts, so a re-run changes
//! nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ruma::{OwnedRoomAliasId, OwnedUserId, RoomId, UserId};
use serde_json::{Value, json};

use super::create_room::{self, Declared, Plan, ensure_created, load, plan};
use super::diagnose;
use super::in_room::{Fresh, InRoom, ManagedInStore, ManagedRooms};
use super::{JobError, ensure_directory, ensure_moderation, ensure_settings, repair_room};
use crate::app::App;
use crate::matrix::{self, RoomConnection, RoomState};
use crate::rooms::directory::{self, Listings};
use crate::rooms::{self, DeclaredRoom};
use crate::store::jobs::Job;
use crate::store::member_state::{MemberState, Membership, Restriction};
use crate::store::room_access;
use crate::store::room_changes;
use crate::store::rooms::{Room, RoomStatus};
use crate::store::unix_ms;
use crate::store::{moderation, staff};

pub use super::create_room::{KIND, new_job};

/// The job kinds that bring a tenant's rooms to its moderation and staff: a lifted tenant-wide
/// row (or a removed staff row) stays while one of them is queued or running.
const CONVERGING_KINDS: &[&str] = &[KIND, super::converge_tenant::KIND];

/// The reason given when a member the platform removed is kicked.
const REMOVED: &str = "Removed from the room";

/// The longest `retry_after_ms` of a rate-limited invite that the job waits out itself before
/// inviting the rest; a longer one ends the attempt as a rate-limited pause (the worker queues
/// the job again for then, no attempt spent, and its next attempt invites only who is missing).
const LONGEST_WAIT_IN_JOB: Duration = Duration::from_secs(10);

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
            room_changes::set_status_if_current(
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

async fn ensure(app: &Arc<App>, job_id: i64, declared: &Declared) -> Result<Value, JobError> {
    let (room, members) = (&declared.room, declared.members.as_slice());
    let Plan {
        tenant,
        bot,
        desired,
        staff,
        staff_owned,
        alias,
    } = plan(app, declared)?;
    app.ensure_bot(&tenant).await?;
    let Some((mut room_id, mut version)) = ensure_created(app, room.id, room.generation).await?
    else {
        return Ok(json!({"skipped": "the room is no longer declared"}));
    };
    let homeserver = app.client_for(&bot);
    let first = homeserver.room_state(&bot, &room_id).await;
    let (state, repair) = match first {
        Ok(state) if diagnose::healthy(&state, &bot) => (state, None),
        first => {
            // Adopting (DESIGN §14): a room the bot cannot take over is never replaced.
            let adopting = room.room_version.is_none();
            let Some(repaired) =
                repair_room::repair(app, room, &bot, &room_id, first, adopting).await?
            else {
                return Ok(json!({"skipped": "the room was deleted while it was being replaced"}));
            };
            if let Some((new_id, new_version)) = repaired.replacement {
                (room_id, version) = (new_id, new_version);
            }
            (repaired.state, Some(repaired.record))
        }
    };
    let version = keep_what_the_room_says(app, declared, &room_id, &state, version).await?;
    let made = how_made(room, &bot, &state);
    // Created from the declaration since this job read it (by this job, by an alias query under
    // the same room lock, or adopted from an earlier attempt's `createRoom`), and not repaired.
    let fresh = if room.room_id.is_none() && repair.is_none() {
        Fresh::JustCreated
    } else {
        Fresh::Existing
    };
    let at = InRoom {
        room_key: room.id,
        tenant_id: &room.tenant_id,
        bot: &bot,
        room_id: &room_id,
        version: &version,
        state: &state,
        fresh,
    };
    let open_to = create_room::group_room(app, declared.access.open_to_room_key).await?;
    let settings = ensure_settings::declared(room, open_to);
    let aliases = super::slug_aliases(app, room).await?;
    let wanted = Wanted {
        settings: &settings,
        aliases: &aliases,
        listings: directory::listings(settings.visibility, tenant.server_directory),
        members,
        desired: &desired,
        staff: &staff,
        staff_owned: &staff_owned,
    };
    let managed = ManagedInStore(&app.store);
    let pacing = Pacing::new(LONGEST_WAIT_IN_JOB);
    let converged = converge_in_room(&*homeserver, &managed, &at, &wanted, &pacing).await;
    let waits = pacing.waits.load(Ordering::Relaxed);
    if waits > 0 {
        let link = app.link_of_tenant(&room.tenant_id);
        (app.metrics.rate_limit_waits)
            .with_label_values(&[link.id.as_str()])
            .inc_by(waits);
    }
    let Converged {
        directory_note,
        applied,
        refused,
    } = converged?;
    let note_before = declared.access.directory_note.as_deref();
    ensure_directory::keep_note(app, room, note_before, directory_note).await?;
    let now = unix_ms(app.clock.now());
    let room_key = room.id;
    let read = declared.moderation.clone();
    let staff_read = declared.staff.clone();
    app.store
        .write(move |c| {
            c.write(|c| {
                crate::store::members::record_applied_levels(c, room_key, &applied, now)?;
                moderation::forget_lifted(c, room_key, &read, job_id, CONVERGING_KINDS)?;
                staff::forget_removed(c, &staff_read, job_id, CONVERGING_KINDS)
            })
        })
        .await?;
    if !refused.is_empty() {
        return Err(JobError::Permanent(refused.join("; ")));
    }
    let mut result =
        json!({"room_id": room_id, "alias": alias, "room_version": version, "made": made});
    if let Some(repair) = repair {
        result["repair"] = repair;
    }
    Ok(result)
}

/// Stores what the room's state says that the declaration could not know: its version (a room
/// adopted may be of another version than new rooms get) and whether it is end-to-end encrypted
/// (an adopted one may be: it stays so, and GET says it). Returns the version.
async fn keep_what_the_room_says(
    app: &App,
    declared: &Declared,
    room_id: &RoomId,
    state: &RoomState,
    mut version: String,
) -> Result<String, JobError> {
    let room = &declared.room;
    if let Some(actual) = state.authority().map(|a| a.room_version().to_owned())
        && actual != version
    {
        let (room_key, id, now) = (room.id, room_id.to_string(), unix_ms(app.clock.now()));
        let (stored, generation) = (actual.clone(), room.generation);
        // Not stored when the room was deleted meanwhile; then the status is not written either.
        app.store
            .write(move |c| room_changes::set_created(c, room_key, generation, &id, &stored, now))
            .await?;
        version = actual;
    }
    let encrypted = state.content("m.room.encryption", "").is_some();
    if encrypted != declared.access.encrypted {
        let room_key = room.id;
        app.store
            .write(move |c| room_access::set_encrypted(c, room_key, encrypted))
            .await?;
    }
    Ok(version)
}

/// How the room came to be the declared room's, for the result (`rooms adopt` reports it):
/// `existing` (made before this job read it), `adopted` (named by `adopt`, or made by someone else
/// under our alias) or `created`.
fn how_made(room: &Room, bot: &UserId, state: &RoomState) -> &'static str {
    match (&room.room_id, &room.room_version) {
        (Some(_), Some(_)) => "existing",
        (Some(_), None) => "adopted",
        (None, _) if state.create().is_some_and(|(creator, _)| creator != bot) => "adopted",
        (None, _) => "created",
    }
}

/// What a declared room should be in Matrix, as [`converge_in_room`] is given it.
struct Wanted<'a> {
    settings: &'a DeclaredRoom,
    /// Every slug the room has had with its alias, the current one's included.
    aliases: &'a [(String, OwnedRoomAliasId)],
    listings: Listings,
    members: &'a [MemberState],
    /// The level of each member who is to be in the room.
    desired: &'a BTreeMap<OwnedUserId, i64>,
    /// The tenant staff's levels here: set, never invited.
    staff: &'a BTreeMap<OwnedUserId, i64>,
    /// The users whose staff entries the daemon owns (removed staff until every room dropped it).
    staff_owned: &'a BTreeSet<OwnedUserId>,
}

/// How a job meets the homeserver's rate limit (`M_LIMIT_EXCEEDED`): it waits out a
/// `retry_after` up to `longest_wait` and goes on, counting the waits for the metrics.
struct Pacing {
    longest_wait: Duration,
    waits: AtomicU64,
}

impl Pacing {
    fn new(longest_wait: Duration) -> Self {
        Self {
            longest_wait,
            waits: AtomicU64::new(0),
        }
    }

    /// Invites `user`, waiting out the rate limit while each wait is short. With a 5,000-member
    /// room a `rate_limited: true` registration meets Synapse's `rc_invites` (per room and per
    /// issuer, 0.3/s after a burst of 10 by default); ours says false, which exempts the bots.
    async fn invite(
        &self,
        homeserver: &impl RoomConnection,
        bot: &UserId,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<(), matrix::Error> {
        loop {
            let error = match homeserver.invite(bot, room_id, user).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            match error.retry_kind() {
                matrix::RetryKind::RateLimited(wait) if wait <= self.longest_wait => {
                    self.waits.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(wait_ms = wait.as_millis() as u64, %user, "invites rate limited by the homeserver; waiting");
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(error),
            }
        }
    }
}

/// How converging ended, for the store: the note of a server-wide listing refused, the level the
/// daemon now owns per member, and a sentence per ban or mute the bot could not make.
#[derive(Debug)]
struct Converged {
    directory_note: Option<String>,
    applied: Vec<(String, Option<i32>)>,
    refused: Vec<String>,
}

/// Makes the Matrix room match `wanted`, step by step, each looking before it acts: aliases and
/// settings, directory listings, bans, invites, kicks of removed members, then the power levels
/// with the mutes. A refusal (a listing, a member at the bot's own level) is noted and the rest goes
/// on; any other failure stops here, and the next attempt starts over from the room's state.
async fn converge_in_room(
    homeserver: &impl RoomConnection,
    rooms: &impl ManagedRooms,
    at: &InRoom<'_>,
    wanted: &Wanted<'_>,
    pacing: &Pacing,
) -> Result<Converged, JobError> {
    let (bot, room_id) = (at.bot, at.room_id);
    ensure_settings::ensure_settings(homeserver, rooms, at, wanted.aliases, wanted.settings)
        .await?;
    let directory_note = ensure_directory::ensure_listings(
        homeserver,
        bot,
        at.tenant_id,
        room_id,
        wanted.listings,
        at.fresh,
    )
    .await?;
    let mut memberships = at.state.memberships();
    let mut refused =
        ensure_moderation::ensure_bans(homeserver, at, wanted.members, &mut memberships).await?;
    for user in wanted.desired.keys() {
        match memberships.get(user).map(String::as_str) {
            Some("join" | "invite") => {}
            Some("ban") => {
                tracing::warn!(%user, "a declared member is banned from the room; not inviting")
            }
            _ => pacing.invite(homeserver, bot, room_id, user).await?,
        }
    }
    for member in wanted.members {
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
            match homeserver.kick(bot, room_id, &user, reason).await {
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
    let (applied, unmutable) = apply_power_levels(homeserver, at, wanted).await?;
    refused.extend(ensure_moderation::unmutable(&unmutable));
    Ok(Converged {
        directory_note,
        applied,
        refused,
    })
}

/// Reads `m.room.power_levels`, sets the declared members' and the tenant staff's levels (the
/// higher for a user who is both) and the mutes, drops the entries of removed members and staff
/// (and unmuted non-members) the daemon owned, leaves everyone else's alone, and writes it back
/// when anything changed. Returns what the daemon now owns per member, and the muted users it
/// cannot lower.
async fn apply_power_levels(
    homeserver: &impl RoomConnection,
    at: &InRoom<'_>,
    wanted: &Wanted<'_>,
) -> Result<(Vec<(String, Option<i32>)>, Vec<OwnedUserId>), JobError> {
    let (bot, state, members) = (at.bot, at.state, wanted.members);
    let desired = &rooms::with_staff(wanted.desired, wanted.staff);
    let current = state
        .content("m.room.power_levels", "")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let creators = match state.create() {
        Some((sender, content)) => rooms::privileged_creators(at.version, &sender, content),
        None => BTreeSet::new(),
    };
    let parsed = |m: &MemberState| UserId::parse(&m.user_id).ok();
    let muted: BTreeSet<OwnedUserId> = members
        .iter()
        .filter(|m| m.mute.is_in_force())
        .filter_map(parsed)
        .collect();
    // A mute's entry is the daemon's while it holds and until its lifting is applied.
    let mut owned: BTreeSet<OwnedUserId> = members
        .iter()
        .filter(|m| m.applied_level.is_some() || m.mute != Restriction::None)
        .filter_map(parsed)
        .collect();
    owned.extend(wanted.staff_owned.iter().cloned());
    let wanted = rooms::Wanted {
        desired,
        muted: &muted,
        owned: &owned,
    };
    let reconciled = rooms::reconcile(&current, wanted, bot, &creators);
    if let Some(content) = &reconciled.content {
        homeserver
            .set_state(bot, at.room_id, "m.room.power_levels", "", content)
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

#[cfg(test)]
#[path = "ensure_room_tests.rs"]
mod tests;
