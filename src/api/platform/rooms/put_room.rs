//! `PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}` `{name, topic?, visibility, open_to?, members?,
//! adopt?}`: this room should exist with these settings (and, with `members`, exactly these
//! members; with `adopt`, as the existing Matrix room it names). Stores the
//! desired state and queues one `ensure_room` job in one transaction (or, while the room's
//! `ensure_room` is queued and not yet running, answers with that one: it reads the declaration
//! when it runs); the same call twice queues nothing new and answers with the room's latest job —
//! unless that job ended `failed` or `dead`, then it queues a fresh one.

use axum::body::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::platform::call::{self, Accepted, RoomCall, TenantCall};
use crate::api::platform::error::{ErrorBody, PlatformError};
use crate::api::platform::job::JobAccepted;
use crate::api::platform::params::{BodyErrors, RoomPath, TenantErrors};
use crate::rooms::validate::Visibility;
use crate::rooms::{self, validate};
use crate::store::jobs::Job;
use crate::store::rooms::{self as room_store, Declaration, Declared};
use crate::store::{DbConnection, StoreError};

/// A room's declaration: the whole truth for what it names (DESIGN §7.1).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RoomDeclaration)]
struct Body {
    /// The room's name: one line, not blank, at most 255 bytes (e.g. "Summer Party Chat").
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        max_length = 255
    )]
    name: String,
    /// The topic: may span lines, at most 8192 bytes; left out, the room has none declared.
    #[schema(
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
        max_length = 8192
    )]
    topic: Option<String>,
    #[schema(value_type = Visibility)]
    visibility: String,
    /// A private event room open to the members of a group room of the same tenant as well as its
    /// invited members (join rule `restricted`); left out, invited members only.
    open_to: Option<OpenToBody>,
    /// When given, exactly these members (others the daemon added are removed); left out, the
    /// members stay as declared before.
    members: Option<Vec<MemberBody>>,
    /// An existing Matrix room to take over instead of creating one (DESIGN §14), for a room whose
    /// alias is not ours or is missing: it keeps its id, members and history, and gets the alias.
    adopt: Option<AdoptBody>,
}

/// The Matrix room a declaration adopts.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Adopt)]
struct AdoptBody {
    /// The room's id on the tenant's homeserver (e.g. "!abc123:example.org"; v12 ids have no
    /// server part).
    #[schema(
        pattern = r"^![^\s]+$",
        max_length = 255,
        example = "!OGEhHVWSdvArJzumhm:example.org"
    )]
    room_id: String,
}

/// The group room whose members may join a private event room (DESIGN §7.5).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OpenTo)]
pub struct OpenToBody {
    /// The kind of room whose members may join: only `group`.
    #[schema(pattern = "^group$", example = "group")]
    pub kind: String,
    /// The slug of a group room declared in this tenant.
    #[schema(pattern = r"^[a-z0-9._=-]+$", example = "hiking-club")]
    pub slug: String,
}

/// A declared member and their role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeclaredMember)]
pub struct MemberBody {
    /// A Matrix user of this homeserver, not the appservice's own (e.g. "@alice:example.org").
    #[schema(pattern = r"^@[^:\s]+:\S+$")]
    pub user_id: String,
    /// A role of the room's kind in `roles` of the daemon's config (by default events: host,
    /// moderator, speaker, participant, guest; groups: owner, admin, moderator, member).
    pub role: String,
}

/// This room should exist with these settings (and, with `members`, exactly these members).
/// The same declaration again queues nothing new and answers with the room's latest job, unless
/// that job ended `failed` or `dead`. A change while the room's job is queued, not yet running,
/// answers with that job: it reads the newest declaration when it runs.
#[utoipa::path(
    put,
    path = "/v1/tenants/{tenant}/rooms/{kind}/{slug}",
    operation_id = "put_room",
    tag = "rooms",
    params(RoomPath),
    request_body = Body,
    responses(
        (status = 202, description = "Stored; the job makes Synapse match.", body = JobAccepted),
        (status = 409, description = "`adopt` names a Matrix room another declared room holds, or this room has another Matrix room already (`conflict`).", body = ErrorBody),
        TenantErrors,
        BodyErrors,
    ),
    security(("tenant_token" = [])),
)]
#[tracing::instrument(name = "platform.put_room", skip_all, fields(tenant = %room.call.tenant.id, kind = %room.kind.as_str(), slug = %room.slug))]
pub async fn handler(room: RoomCall, body: Bytes) -> Result<Accepted, PlatformError> {
    let body: Body = call::body(&body)?;
    validate::room_name(&body.name)?;
    if let Some(topic) = &body.topic {
        validate::topic(topic)?;
    }
    let visibility = validate::visibility(&body.visibility)?;
    let open_to = match &body.open_to {
        Some(open_to) => Some(open_to_slug(&room, visibility, open_to)?),
        None => None,
    };
    let members = match &body.members {
        Some(members) => Some(declared_members(&room.call, room.kind, members)?),
        None => None,
    };
    let adopt = match &body.adopt {
        Some(adopt) => Some(adopt_room_id(&adopt.room_id)?),
        None => None,
    };
    let declaration = Declaration {
        tenant_id: room.call.tenant.id.clone(),
        homeserver: room.call.tenant.homeserver.clone(),
        kind: room.kind,
        slug: room.slug.clone(),
        name: body.name.trim().to_owned(),
        topic: body.topic.clone(),
        visibility,
    };
    room.call
        .queue(move |conn, now| {
            let group_key = match &open_to {
                Some(slug) => match group_room(conn, &declaration.tenant_id, slug)? {
                    Ok(key) => Some(key),
                    Err(refused) => return Ok(Err(refused)),
                },
                None => None,
            };
            let adopt = match adopt {
                Some(room_id) => match to_adopt(conn, &declaration, room_id)? {
                    Ok(adopt) => adopt,
                    Err(refused) => return Ok(Err(refused)),
                },
                None => None,
            };
            Ok(Ok(store(
                conn,
                &declaration,
                group_key,
                members.as_deref(),
                adopt.as_deref(),
                now,
            )?))
        })
        .await
}

/// `open_to`'s group slug, checked: only a private event room is open to a group.
fn open_to_slug(
    room: &RoomCall,
    visibility: Visibility,
    open_to: &OpenToBody,
) -> Result<String, PlatformError> {
    if room.kind != rooms::RoomKind::Event {
        return Err(rooms::FieldError::new(
            "open_to",
            "only an event room can be open to a group's members; leave open_to out for a group room",
        )
        .into());
    }
    if open_to.kind != "group" {
        return Err(rooms::FieldError::new(
            "open_to.kind",
            format!(
                "must be \"group\", not {:?}: an event room is open to the members of a group room",
                open_to.kind
            ),
        )
        .into());
    }
    if visibility != Visibility::Private {
        return Err(rooms::FieldError::new(
            "open_to",
            format!("applies to private rooms only (this one is {}, which anyone may join already): send \"visibility\": \"private\", or leave open_to out", visibility.as_str()),
        )
        .into());
    }
    rooms::validate_slug(
        rooms::RoomKind::Group,
        &open_to.slug,
        &room.call.tenant.id,
        room.call.server_name(),
    )
    .map_err(|mut error| {
        error.field = "open_to.slug".into();
        error
    })?;
    Ok(open_to.slug.clone())
}

/// `adopt.room_id`, checked: a room id as Matrix writes them (never parsed further: v12 ids have
/// no server part).
fn adopt_room_id(room_id: &str) -> Result<String, PlatformError> {
    ruma::RoomId::parse(room_id).map_err(|error| {
        rooms::FieldError::new(
            "adopt.room_id",
            format!("{room_id:?} is not a Matrix room id ({error}): give the room's id as Synapse shows it, e.g. \"!abc123:example.org\""),
        )
    })?;
    Ok(room_id.to_owned())
}

/// The Matrix room to name as the declared room's, when it is not named already; a 409 when the
/// declared room has another Matrix room, or another declared room has this one.
fn to_adopt(
    conn: &mut DbConnection,
    declaration: &Declaration,
    room_id: String,
) -> Result<Result<Option<String>, PlatformError>, StoreError> {
    let (tenant, kind) = (&declaration.tenant_id, declaration.kind.as_str());
    if let Some(holder) = room_store::find_live_by_room_id(conn, &room_id)?
        && (&holder.tenant_id, holder.kind, &holder.slug)
            != (tenant, declaration.kind, &declaration.slug)
    {
        return Ok(Err(PlatformError::Conflict(format!(
            "{room_id} is already the Matrix room of another declared room ({} {} of tenant {}): a Matrix room belongs to one declared room",
            holder.kind.as_str(),
            holder.slug,
            holder.tenant_id
        ))));
    }
    let current =
        room_store::find_live(conn, tenant, kind, &declaration.slug)?.and_then(|room| room.room_id);
    Ok(match current {
        Some(current) if current == room_id => Ok(None),
        Some(current) => Err(PlatformError::Conflict(format!(
            "this room already has the Matrix room {current}: adopt names the room to take over only before one is made; leave adopt out, or DELETE the room and declare it again with adopt"
        ))),
        None => Ok(Some(room_id)),
    })
}

/// The key of the group room declared (and not deleted) as `slug` in the tenant, or the 400
/// saying there is none.
fn group_room(
    conn: &mut DbConnection,
    tenant_id: &str,
    slug: &str,
) -> Result<Result<i64, PlatformError>, StoreError> {
    let kind = rooms::RoomKind::Group.as_str();
    Ok(match room_store::find_live(conn, tenant_id, kind, slug)? {
        Some(group) => Ok(group.id),
        None => Err(rooms::FieldError::new(
            "open_to.slug",
            format!("no group room is declared as {slug:?} in this tenant: declare the group's room first (PUT /v1/tenants/{tenant_id}/rooms/group/{slug}), then this one"),
        )
        .into()),
    })
}

/// Stores the declaration (and, when given, exactly these members) and returns the room's job:
/// for a new room, one read and four writes (the room, its slug, its members, its job); the group
/// it is open to costs a write only when it changes.
fn store(
    conn: &mut DbConnection,
    declaration: &Declaration,
    group_key: Option<i64>,
    members: Option<&[(String, String)]>,
    adopt: Option<&str>,
    now: i64,
) -> Result<Job, StoreError> {
    let (room, declared) = room_store::declare(conn, declaration, now)?;
    if let Some(room_id) = adopt {
        crate::store::room_changes::set_to_adopt(conn, room.id, room_id, now)?;
    }
    // A new room is open to nothing yet.
    let open_to_changed = !(declared == Declared::New && group_key.is_none())
        && crate::store::room_access::set_open_to(conn, room.id, group_key)?;
    let members_changed = match (members, declared) {
        (Some(members), Declared::New) => {
            crate::store::members::declare_members_of_new_room(conn, room.id, members, now)?
        }
        (Some(members), _) => crate::store::members::declare_members(conn, room.id, members, now)?,
        (None, _) => false,
    };
    if declared == Declared::New {
        // No job of the room to fold into yet.
        return crate::store::jobs::enqueue(conn, &crate::jobs::ensure_room::new_job(&room), now);
    }
    let changed = declared.changed() || members_changed || open_to_changed || adopt.is_some();
    call::ensure_if_changed(conn, &room, changed, now)
}

/// Why the sender or a tenant bot is no member (DESIGN §7.1).
pub const NOT_A_MEMBER: &str = "not a member the platform manages";

/// Checks every member and role; returns `(user_id, role)` pairs.
pub fn declared_members(
    call: &TenantCall,
    kind: rooms::RoomKind,
    members: &[MemberBody],
) -> Result<Vec<(String, String)>, PlatformError> {
    let levels = &call.config.roles;
    let mut declared: Vec<(String, String)> = Vec::with_capacity(members.len());
    for member in members {
        let user_id = call.platform_user("user_id", &member.user_id, NOT_A_MEMBER)?;
        levels.level(kind, &member.role)?;
        if declared.iter().any(|(u, _)| u == user_id.as_str()) {
            return Err(rooms::FieldError::new(
                "members",
                format!("{user_id} is listed twice: give each member once"),
            )
            .into());
        }
        declared.push((user_id.to_string(), member.role.clone()));
    }
    Ok(declared)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use diesel::Connection;
    use diesel::connection::InstrumentationEvent;

    use super::*;
    use crate::config::{Database, DatabaseUrl};
    use crate::on_backend;
    use crate::store::{Store, jobs};

    fn declaration(slug: &str) -> Declaration {
        Declaration {
            tenant_id: "tenantA".into(),
            homeserver: "default".into(),
            kind: crate::rooms::RoomKind::Event,
            slug: slug.into(),
            name: "Party Chat".into(),
            topic: Some("Chat room for the party".into()),
            visibility: crate::rooms::Visibility::Private,
        }
    }

    fn members(count: usize) -> Vec<(String, String)> {
        (0..count)
            .map(|i| (format!("@user{i}:server.test"), "participant".to_owned()))
            .collect()
    }

    /// The statements one PUT sends, as the handler runs it (one write transaction).
    fn statements(
        conn: &mut DbConnection,
        slug: &str,
        members: Option<&[(String, String)]>,
    ) -> (Job, usize) {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        on_backend!(&mut *conn, c => c.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let job = conn
            .write(|conn| store(conn, &declaration(slug), None, members, None, 1_000))
            .expect("stored");
        on_backend!(&mut *conn, c => c.set_instrumentation(|_: InstrumentationEvent<'_>| {}));
        (job, count.load(Ordering::Relaxed))
    }

    #[test]
    fn a_put_costs_one_read_and_a_write_per_table_it_changes() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}/put_room.db", dir.path().display());
        let store = Store::new(&Database {
            url: DatabaseUrl::parse(&url).expect("a valid URL"),
            migrate_on_start: true,
            max_connections: 1,
            acquire_timeout: std::time::Duration::from_secs(5),
        });
        store.migrate().expect("migrations apply");
        let conn = &mut *store.connection().expect("a connection");
        let five = members(5);

        // BEGIN, the room by slug, the room, its slug, its job, COMMIT.
        assert_eq!(statements(conn, "party", None).1, 6);
        // … and one insert for all members.
        let (first, count) = statements(conn, "picnic", Some(&five));
        assert_eq!(count, 7);
        // The same again: BEGIN, the room, its members, the group it is open to (none: one
        // update that finds nothing to clear), its latest job, COMMIT; nothing queued.
        let (same, count) = statements(conn, "picnic", Some(&five));
        assert_eq!(count, 6);
        assert_eq!(same.id, first.id);
        // Members changed: one upsert for the added, changed and removed, and the room's newest
        // job read: still queued, so the change folds into it (DESIGN §15).
        let mut changed = members(6);
        changed[0].1 = "host".into();
        changed.remove(1);
        let (folded, count) = statements(conn, "picnic", Some(&changed));
        assert_eq!(count, 7);
        assert_eq!(folded.id, same.id);
        // Once that job ran, a change queues a new one: one read and one insert.
        let (running, paused) = (Default::default(), Default::default());
        let limits = jobs::ClaimLimits {
            total: 10,
            per_tenant: 10,
            running: &running,
            paused: &paused,
        };
        jobs::claim(conn, "worker", 1_000, 60_000, &limits).expect("claimed");
        let ended = jobs::Outcome::Succeeded {
            result: serde_json::json!({}),
        };
        assert!(jobs::finish(conn, same.id, "worker", &ended, 1_000).expect("finished"));
        changed.push(("@user9:server.test".into(), "participant".into()));
        let (requeued, count) = statements(conn, "picnic", Some(&changed));
        assert_eq!(count, 8);
        assert_ne!(requeued.id, same.id);
        let stored =
            crate::store::members::members(conn, requeued.room_key.expect("a room")).expect("read");
        let roles: Vec<(&str, Option<&str>)> = stored
            .iter()
            .map(|m| (m.user_id.as_str(), m.role.as_deref()))
            .collect();
        assert_eq!(
            roles,
            [
                ("@user0:server.test", Some("host")),
                ("@user1:server.test", None),
                ("@user2:server.test", Some("participant")),
                ("@user3:server.test", Some("participant")),
                ("@user4:server.test", Some("participant")),
                ("@user5:server.test", Some("participant")),
                ("@user9:server.test", Some("participant")),
            ]
        );
    }
}
