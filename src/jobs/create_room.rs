//! How a declared room comes to exist in Matrix: the `ensure_room` job that converges it (its kind
//! and constructors live here, below every job kind that queues it), what a declaration means in
//! Matrix terms (`plan`), and its one creation (`ensure_created`: alias queries and jobs share it,
//! adopting a room an earlier attempt made). A private event room open to its group (DESIGN
//! §7.5) is made after the group's room (`group_room`), and every room open to a group follows
//! when the group room is made, replaced or deleted (`queue_followers`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::json;

use super::{JobError, ensure_settings, teardown_room};
use crate::app::App;
use crate::config::Tenant;
use crate::matrix::RoomConnection;
use crate::rooms;
use crate::store::jobs::{self as job_store, NewJob};
use crate::store::member_state::{self, MemberState};
use crate::store::moderation::{self, Moderation};
use crate::store::room_access::{self, Access};
use crate::store::room_changes;
use crate::store::rooms::{self as room_store, Room};
use crate::store::staff::{self, Staff};
use crate::store::{DbConnection, StoreError, unix_ms};

/// How long a creation waits for another replica making the same room before it tries again
/// later (longer than a `createRoom` takes, even a slow one).
const CREATION_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The job that makes Synapse match a declared room (`jobs/ensure_room.rs` runs it).
pub const KIND: &str = "ensure_room";

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

/// What a declared room means in Matrix terms: its tenant's bot, its alias, the members' levels,
/// and the tenant staff's.
pub(super) struct Plan {
    pub tenant: Tenant,
    pub bot: OwnedUserId,
    /// The members to invite, with their role's level.
    pub desired: BTreeMap<OwnedUserId, i64>,
    /// The tenant staff's levels here (never invited).
    pub staff: BTreeMap<OwnedUserId, i64>,
    /// Every user whose staff entry the daemon owns here: the staff, and the removed staff until
    /// every room dropped the entry.
    pub staff_owned: BTreeSet<OwnedUserId>,
    pub alias: OwnedRoomAliasId,
}

/// A room as declared: its members, who is banned or muted there, the moderation rows read, the
/// tenant's staff (removed ones included) and who else may find and join it.
pub(super) struct Declared {
    pub room: Room,
    pub members: Vec<MemberState>,
    pub moderation: Vec<Moderation>,
    pub staff: Vec<Staff>,
    pub access: Access,
}

/// The tenant staff's levels in a room with `members` (DESIGN §7.3), and every user whose staff
/// entry the daemon owns there (removed staff included). A ban wins over a staff role: staff
/// banned here (by the room or tenant-wide) get no level; a mute lowers theirs, as any muted
/// user's, in `rooms::reconcile`. A role no longer configured gives no level.
fn staff_levels(
    levels: &rooms::RoleLevels,
    staff: &[Staff],
    members: &[MemberState],
) -> (BTreeMap<OwnedUserId, i64>, BTreeSet<OwnedUserId>) {
    let banned_here = |user: &str| {
        members
            .iter()
            .any(|m| m.user_id == user && m.ban.is_in_force())
    };
    let wanted = staff
        .iter()
        .filter(|s| s.in_force() && !banned_here(&s.user_id))
        .filter_map(|s| {
            Some((
                UserId::parse(&s.user_id).ok()?,
                levels.staff_level(&s.role).ok()?,
            ))
        })
        .collect();
    let owned = staff
        .iter()
        .filter_map(|s| UserId::parse(&s.user_id).ok())
        .collect();
    (wanted, owned)
}

pub(super) fn plan(app: &App, declared: &Declared) -> Result<Plan, JobError> {
    let (room, members) = (&declared.room, declared.members.as_slice());
    let config = app.config();
    let tenant = super::configured_tenant(&config, &room.tenant_id)?;
    let kind = room.kind;
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
    let (staff, staff_owned) = staff_levels(levels, &declared.staff, members);
    let server_name = &config.home_of(tenant).homeserver.server_name;
    let alias = rooms::alias(kind, &room.slug, &tenant.id, server_name)
        .map_err(|e| JobError::Permanent(e.to_string()))?;
    Ok(Plan {
        bot: config.bot_user_id(tenant),
        tenant: tenant.clone(),
        desired,
        staff,
        staff_owned,
        alias,
    })
}

/// Makes sure declared room `room_key` exists in Synapse and returns its id and version; `None`
/// when it is no longer declared, or was deleted since `generation` was read. One creation at a
/// time per room, in this process (alias queries and jobs share the lock) and across replicas
/// (`store::creation_lock`, held from before `createRoom` until the id is stored): whoever waited
/// reads the room again and finds the id the other stored.
pub async fn ensure_created(
    app: &Arc<App>,
    room_key: i64,
    generation: i64,
) -> Result<Option<(OwnedRoomId, String)>, JobError> {
    let lock = app.room_lock(room_key);
    let _creating = lock.lock().await;
    let Some(_across_replicas) = app.store.creation_lock(room_key, CREATION_WAIT).await? else {
        return Err(JobError::Busy(format!(
            "another replica has been making this room for over {} s; it is tried again",
            CREATION_WAIT.as_secs()
        )));
    };
    let Some(declared) = load(app, room_key).await? else {
        return Ok(None);
    };
    let room = &declared.room;
    if !room.status.is_live() || room.generation != generation {
        return Ok(None);
    }
    // A room to adopt has its id and no version yet: the bot's first read of it gives one.
    if let Some(room_id) = &room.room_id {
        let room_id = RoomId::parse(room_id).map_err(|e| JobError::Permanent(e.to_string()))?;
        return Ok(Some((
            room_id,
            room.room_version.clone().unwrap_or_default(),
        )));
    }
    let plan = plan(app, &declared)?;
    app.ensure_bot(&plan.tenant).await?;
    create(app, room, &plan, declared.access.open_to_room_key).await
}

pub(super) async fn load(app: &Arc<App>, room_key: i64) -> Result<Option<Declared>, JobError> {
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
                staff: staff::list(c, &room.tenant_id, true)?,
                room,
                moderation,
                access: room_access::get(c, room_key)?,
            }))
        })
        .await?;
    Ok(loaded)
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
    let homeserver = app.client_for(bot);
    let configured = app
        .config()
        .homeserver_of_user(bot)
        .homeserver
        .room_version
        .clone();
    let version = match configured {
        Some(version) => version,
        None => homeserver.default_room_version(bot).await?,
    };
    let open_to = group_room(app, open_to_room_key).await?;
    let declared = ensure_settings::declared(room, open_to);
    let levels = rooms::with_staff(&plan.desired, &plan.staff);
    let body = rooms::create_room_body(&declared, bot, &version, &levels);
    let room_id = create_or_adopt(&*homeserver, bot, alias, body).await?;
    tracing::info!(%room_id, %version, "created the room");
    let (room_key, generation, id, stored_version, now) = (
        room.id,
        room.generation,
        room_id.to_string(),
        version.clone(),
        unix_ms(app.clock.now()),
    );
    let teardown = teardown_room::new_job_for(room, Some(&id), std::slice::from_ref(alias));
    let followed = room.clone();
    let stored = app
        .store
        .write(move |c| {
            c.write(|c| {
                if room_changes::set_created(c, room_key, generation, &id, &stored_version, now)? {
                    queue_followers(c, &followed, now)?;
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

/// `createRoom` with `body`, or, when the alias it sets is taken, the room the alias names: an
/// earlier attempt created it and stopped before its id was stored.
pub(super) async fn create_or_adopt(
    homeserver: &impl RoomConnection,
    bot: &UserId,
    alias: &OwnedRoomAliasId,
    body: serde_json::Value,
) -> Result<OwnedRoomId, JobError> {
    match homeserver.create_room(bot, body).await {
        Ok(room_id) => Ok(room_id),
        Err(error) if error.is_in_use() => {
            match homeserver.resolve_alias(bot, alias.clone()).await? {
                Some(room_id) => {
                    tracing::info!(%room_id, "the alias already names a room: adopting it");
                    Ok(room_id)
                }
                None => Err(JobError::Permanent(format!(
                    "the alias {alias} is taken but does not resolve: remove it from Synapse, then retry the job"
                ))),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// The Matrix room whose members may join a room open to group room `open_to_room_key`: `None`
/// when it is open to no group, or its group
/// room is deleted (then the room is invite only). A group room not made yet is made first, as an
/// alias query would make it (under the group's own creation lock, so its job and this one create
/// it once): the event room waits for it instead of opening to nobody. Only event rooms are open to
/// groups, and groups to nothing, so the locks never wait on each other in a circle.
pub async fn group_room(
    app: &Arc<App>,
    open_to_room_key: Option<i64>,
) -> Result<Option<OwnedRoomId>, JobError> {
    let Some(group_key) = open_to_room_key else {
        return Ok(None);
    };
    let group = app
        .store
        .run(move |c| room_store::get(c, group_key))
        .await?;
    let Some(group) = group.filter(|group| group.status.is_live()) else {
        return Ok(None);
    };
    if let Some(room_id) = &group.room_id {
        let room_id = RoomId::parse(room_id).map_err(|e| JobError::Permanent(e.to_string()))?;
        return Ok(Some(room_id));
    }
    tracing::info!(group = %group.slug, "the group room the room is open to is not made yet: making it first");
    let created = Box::pin(ensure_created(app, group.id, group.generation)).await?;
    Ok(created.map(|(room_id, _)| room_id))
}

/// Queues an `ensure_room` for every declared room open to `room` when it is a group room, in the
/// transaction that made, replaced or deleted its Matrix room: their join rules follow. Event
/// rooms are open to nothing, so their creation asks nothing more of the database.
pub fn queue_followers(conn: &mut DbConnection, room: &Room, now: i64) -> Result<(), StoreError> {
    if room.kind != rooms::RoomKind::Group {
        return Ok(());
    }
    for room in room_access::open_to(conn, room.id)? {
        job_store::enqueue(conn, &new_job(&room), now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::member_state::{Hold, Membership, Restriction};

    fn staff(user_id: &str, role: &str, removed_at: Option<i64>) -> Staff {
        Staff {
            tenant_id: "tenantA".into(),
            user_id: user_id.into(),
            role: role.into(),
            actor: None,
            removed_at,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn staff_banned_here_get_no_level_and_removed_staff_stay_owned() {
        let rows = [
            staff("@mod:hs.test", "moderator", None),
            staff("@admin:hs.test", "admin", None),
            staff("@banned:hs.test", "admin", None),
            staff("@gone:hs.test", "moderator", Some(5)),
            staff("@unknown:hs.test", "owner", None),
        ];
        let banned = MemberState {
            user_id: "@banned:hs.test".into(),
            membership: Membership::None,
            applied_level: None,
            ban: Restriction::InForce(Hold {
                scope: "tenant",
                reason: None,
                expires_at: None,
            }),
            mute: Restriction::None,
        };
        let (wanted, owned) = staff_levels(&rooms::RoleLevels::default(), &rows, &[banned]);
        let user = |id: &str| UserId::parse(id).unwrap();
        assert_eq!(
            wanted,
            [(user("@mod:hs.test"), 50), (user("@admin:hs.test"), 75)].into()
        );
        assert_eq!(
            owned.len(),
            5,
            "every row's entry is the daemon's: {owned:?}"
        );
    }
}
