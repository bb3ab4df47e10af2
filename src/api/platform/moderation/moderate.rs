//! What the ban and mute calls share (DESIGN §7.3): the user checked (a user id of the tenant's
//! homeserver, not one of our own users), the reason and expiry checked, then one write
//! transaction that declares or lifts the ban or mute, schedules or cancels its lifting, queues
//! the convergence and appends the audit entry with the job — or refuses with nothing written.
//!
//! The call only records intent: it asks the homeserver nothing (Matrix bans or mutes any user
//! id, one it has never seen or without a profile too); the job acts on the rooms.

use ruma::OwnedUserId;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::api::platform::call::{self, Accepted, RoomCall, TenantCall};
use crate::api::platform::error::PlatformError;
use crate::jobs::{converge_tenant, lift_moderation, redact_user};
use crate::rooms::FieldError;
use crate::store::moderation::{self, Declared, Kind, Scope};
use crate::store::moderation_log::{self, NewEntry};
use crate::store::{DbConnection, StoreError, jobs};

/// The longest `expires_in_seconds`: a year (a longer one is a permanent ban or mute).
pub const MAX_EXPIRES_IN_SECONDS: i64 = 366 * 24 * 60 * 60;

/// The most bytes a reason may hold (Matrix carries it in the ban's membership event).
pub const MAX_REASON_BYTES: usize = 1024;

/// How far back `redact: true` reaches (DESIGN §7.3: `since` defaults to 24 h).
const REDACT_SINCE_MS: i64 = 24 * 60 * 60 * 1000;

/// The body of `DELETE …/bans/{user_id}` and `…/mutes/{user_id}` (both optional).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Lifting)]
pub struct LiftBody {
    /// Why it is lifted, for the audit log; not blank, at most 1024 bytes.
    #[schema(
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
        max_length = 1024
    )]
    reason: Option<String>,
}

impl LiftBody {
    /// The reason given, checked like a lifting's (`None` when left out).
    pub fn checked_reason(self) -> Result<Option<String>, PlatformError> {
        self.reason.map(reason_text).transpose()
    }
}

/// The `{user_id}` at the end of the path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// A Matrix user of this homeserver, not the appservice's own.
    #[param(pattern = r"^@[^:\s]+:\S+$", example = "@alice:example.org")]
    pub user_id: String,
}

/// One moderation call, checked.
pub struct Action {
    kind: Kind,
    user_id: OwnedUserId,
    reason: Option<String>,
    /// `Some`: declare it, lifting by itself at that time (`Some(None)`: until lifted);
    /// `None`: lift it.
    declare: Option<Option<i64>>,
    /// Also redact the user's recent events (tenant-wide bans).
    redact: bool,
}

impl Action {
    /// A ban or mute to declare for the user in the path.
    pub fn declare(
        call: &TenantCall,
        kind: Kind,
        user_id: &str,
        reason: Option<String>,
        expires_in_seconds: Option<i64>,
    ) -> Result<Self, PlatformError> {
        let checked = Self::check_declare(call, kind, user_id, reason, expires_in_seconds);
        if checked.is_err() {
            count(call, kind.action(true), REFUSED);
        }
        checked
    }

    fn check_declare(
        call: &TenantCall,
        kind: Kind,
        user_id: &str,
        reason: Option<String>,
        expires_in_seconds: Option<i64>,
    ) -> Result<Self, PlatformError> {
        let user_id = user(call, user_id)?;
        let reason = reason_checked(kind, reason)?;
        let expires_at = match expires_in_seconds {
            None => None,
            Some(seconds) if (1..=MAX_EXPIRES_IN_SECONDS).contains(&seconds) => {
                Some(call.now + seconds * 1000)
            }
            Some(seconds) => {
                return Err(FieldError::new(
                    "expires_in_seconds",
                    format!(
                        "is {seconds}; give a whole number of seconds from 1 to {MAX_EXPIRES_IN_SECONDS} (a year), or leave it out for no expiry"
                    ),
                )
                .into());
            }
        };
        Ok(Self {
            kind,
            user_id,
            reason,
            declare: Some(expires_at),
            redact: false,
        })
    }

    /// The lifting of a ban or mute for the user in the path.
    pub fn lift(
        call: &TenantCall,
        kind: Kind,
        user_id: &str,
        body: LiftBody,
    ) -> Result<Self, PlatformError> {
        let checked = Self::check_lift(call, kind, user_id, body);
        if checked.is_err() {
            count(call, kind.action(false), REFUSED);
        }
        checked
    }

    fn check_lift(
        call: &TenantCall,
        kind: Kind,
        user_id: &str,
        body: LiftBody,
    ) -> Result<Self, PlatformError> {
        let user_id = user(call, user_id)?;
        let reason = body.checked_reason()?;
        Ok(Self {
            kind,
            user_id,
            reason,
            declare: None,
            redact: false,
        })
    }

    pub fn with_redaction(mut self, redact: bool) -> Self {
        self.redact = redact;
        self
    }

    fn action(&self) -> &'static str {
        self.kind.action(self.declare.is_some())
    }
}

/// The user a call names: a valid user id of our homeserver, not the sender or a tenant bot.
fn user(call: &TenantCall, value: &str) -> Result<OwnedUserId, PlatformError> {
    call.platform_user("user_id", value, "which cannot be banned or muted")
}

/// A ban needs a reason (Matrix shows it with the ban); a mute may have one.
fn reason_checked(kind: Kind, reason: Option<String>) -> Result<Option<String>, PlatformError> {
    match reason {
        Some(reason) => Ok(Some(reason_text(reason)?)),
        None if kind == Kind::Ban => Err(FieldError::new(
            "reason",
            "is required for a ban: say why, e.g. \"Spam\" (members see it with the ban)",
        )
        .into()),
        None => Ok(None),
    }
}

fn reason_text(reason: String) -> Result<String, PlatformError> {
    let reason = reason.trim().to_owned();
    if reason.is_empty() {
        return Err(
            FieldError::new("reason", "must not be blank; say why, or leave it out").into(),
        );
    }
    crate::rooms::validate::lines("reason", &reason)?;
    if reason.len() > MAX_REASON_BYTES {
        return Err(FieldError::new(
            "reason",
            format!(
                "is {} bytes long, over the limit of {MAX_REASON_BYTES}; shorten it",
                reason.len()
            ),
        )
        .into());
    }
    Ok(reason)
}

/// Declares or lifts the ban or mute in `scope` and schedules (or cancels) its lifting. Returns
/// whether the rooms have something to change.
fn store(
    conn: &mut DbConnection,
    tenant_id: &str,
    scope: Scope,
    action: &Action,
    actor: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let user_id = action.user_id.as_str();
    let changed = match action.declare {
        Some(expires_at) => moderation::declare(
            conn,
            &Declared {
                tenant_id,
                scope,
                user_id,
                kind: action.kind,
                reason: action.reason.as_deref(),
                expires_at,
                actor,
            },
            now,
        )?,
        None => moderation::lift(conn, tenant_id, scope, user_id, action.kind, now)?,
    };
    let expires_at = action.declare.flatten();
    lift_moderation::schedule(
        conn,
        tenant_id,
        scope,
        user_id,
        action.kind,
        expires_at,
        now,
    )?;
    Ok(changed)
}

/// The audit entry of `action`, carried out by `job`.
fn entry(
    tenant_id: &str,
    room: Option<(String, String)>,
    action: &Action,
    actor: Option<String>,
    job: &jobs::Job,
) -> NewEntry {
    NewEntry {
        tenant_id: tenant_id.to_owned(),
        action: action.action().to_owned(),
        user_id: action.user_id.to_string(),
        room,
        reason: action.reason.clone(),
        actor,
        expires_at: action.declare.flatten(),
        job_id: Some(job.id),
    }
}

/// A ban or mute in the room the path names; answered with the room's `ensure_room`.
pub async fn in_room(room: &RoomCall, action: Action) -> Result<Accepted, PlatformError> {
    let tenant_id = room.call.tenant.id.clone();
    let actor = room.call.actor.clone();
    let name = action.action();
    let accepted = room
        .queue_on_live_room(move |conn, room, now| {
            let scope = Scope::Room(room.id);
            let changed = store(conn, &tenant_id, scope, &action, actor.as_deref(), now)?;
            let job = call::ensure_if_changed(conn, room, changed, now)?;
            let place = Some((room.kind.as_str().to_owned(), room.slug.clone()));
            moderation_log::append(conn, &entry(&tenant_id, place, &action, actor, &job), now)?;
            Ok(Ok(job))
        })
        .await?;
    count(&room.call, name, ACCEPTED);
    Ok(accepted)
}

/// A tenant-wide ban or mute; answered with the fan-out that converges every room of the tenant.
pub async fn tenant_wide(call: &TenantCall, action: Action) -> Result<Accepted, PlatformError> {
    let tenant_id = call.tenant.id.clone();
    let actor = call.actor.clone();
    let name = action.action();
    let accepted = call
        .queue(move |conn, now| {
            let changed = store(
                conn,
                &tenant_id,
                Scope::Tenant,
                &action,
                actor.as_deref(),
                now,
            )?;
            let job = converge_tenant::queue_if_changed(conn, &tenant_id, changed, now)?;
            if action.redact {
                let reason = action.reason.as_deref().unwrap_or("Banned");
                let since = now - REDACT_SINCE_MS;
                let redaction =
                    redact_user::new_job(&tenant_id, None, action.user_id.as_str(), since, reason);
                jobs::enqueue(conn, &redaction, now)?;
            }
            moderation_log::append(conn, &entry(&tenant_id, None, &action, actor, &job), now)?;
            Ok(Ok(job))
        })
        .await?;
    count(call, name, ACCEPTED);
    Ok(accepted)
}

/// `outcome` of `openmeet_as_moderation_actions_total` for a call that stored its action.
const ACCEPTED: &str = "accepted";
/// … and for a call refused with a 4xx (nothing stored).
const REFUSED: &str = "refused";

fn count(call: &TenantCall, action: &str, outcome: &str) {
    call.app
        .metrics
        .moderation_actions
        .with_label_values(&[action, outcome])
        .inc();
}
