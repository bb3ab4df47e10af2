//! What every tenant-scoped call shares, written once: the caller's token checked against the
//! tenant in the path (and, for room calls, the kind and slug read), the config in force, the
//! request's time and the acting platform user; then one write transaction that stores the
//! declaration and returns the job that carries it out, the worker woken, and 202 with the job.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ruma::{OwnedRoomAliasId, OwnedUserId, ServerName};
use serde::de::DeserializeOwned;

use super::error::PlatformError;
use super::{auth, job};
use crate::app::App;
use crate::config::{Config, Tenant};
use crate::jobs::ensure_room;
use crate::rooms::{self, FieldError, RoomKind, validate};
use crate::store::job_folding;
use crate::store::jobs::{self, Job};
use crate::store::rooms::{self as room_store, Room};
use crate::store::{DbConnection, StoreError, unix_ms};

/// The header naming the platform user who acted (stored with moderation entries).
pub const ACTOR_HEADER: &str = "x-openmeet-actor";

/// A call under `/v1/tenants/{tenant}/…` by that tenant's token.
pub struct TenantCall {
    pub app: Arc<App>,
    /// The config in force when the call arrived; the call keeps it to the end.
    pub config: Arc<Config>,
    pub tenant: Tenant,
    /// Unix ms, from the app's clock.
    pub now: i64,
    /// `X-OpenMeet-Actor`, when the platform said who acted.
    pub actor: Option<String>,
}

/// A call under `/v1/tenants/{tenant}/rooms/{kind}/{slug}/…`.
pub struct RoomCall {
    pub call: TenantCall,
    pub kind: RoomKind,
    pub slug: String,
    /// The alias the slug gives (`#{kind}-{slug}-{tenant}:{server}`).
    pub alias: OwnedRoomAliasId,
}

impl FromRequestParts<Arc<App>> for TenantCall {
    type Rejection = PlatformError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let params = path_params(parts, app).await?;
        let config = app.config();
        let tenant = auth::tenant_in_path(&config, &parts.headers, param(&params, "tenant")?)?;
        let actor = parts
            .headers
            .get(ACTOR_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(|actor| actor.trim().chars().take(255).collect::<String>())
            .filter(|actor| !actor.is_empty());
        Ok(Self {
            tenant: tenant.clone(),
            config: config.clone(),
            app: app.clone(),
            now: unix_ms(app.clock.now()),
            actor,
        })
    }
}

impl FromRequestParts<Arc<App>> for RoomCall {
    type Rejection = PlatformError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let call = TenantCall::from_request_parts(parts, app).await?;
        let params = path_params(parts, app).await?;
        let kind = RoomKind::parse(param(&params, "kind")?)?;
        let slug = param(&params, "slug")?.to_owned();
        let alias = rooms::alias(kind, &slug, &call.tenant.id, call.server_name())?;
        Ok(Self {
            call,
            kind,
            slug,
            alias,
        })
    }
}

async fn path_params(
    parts: &mut Parts,
    app: &Arc<App>,
) -> Result<HashMap<String, String>, PlatformError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, app)
        .await
        .map_err(|rejection| PlatformError::Unreadable {
            status: rejection.status(),
            reason: rejection.body_text(),
        })?;
    Ok(params)
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, PlatformError> {
    params
        .get(name)
        .map(String::as_str)
        .ok_or(PlatformError::UnknownPath)
}

/// The request's JSON body as `T`; an empty body (or `null`, as the OpenAPI document allows for
/// an optional body) reads as `{}` when `T` allows it.
pub fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, PlatformError> {
    let bytes = if bytes.is_empty() || bytes == b"null" {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|error| PlatformError::BadBody(error.to_string()))
}

/// 202 with the job that carries the call out.
pub struct Accepted(pub Job);

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        (
            StatusCode::ACCEPTED,
            Json(job::JobAccepted {
                job: job::representation(&self.0),
            }),
        )
            .into_response()
    }
}

impl TenantCall {
    /// The server name of the tenant's homeserver: its aliases' and its members' (DESIGN §13).
    pub fn server_name(&self) -> &ServerName {
        &self.config.home_of(&self.tenant).homeserver.server_name
    }

    /// The user a call names in `field`: a valid user id of the tenant's homeserver, and not one
    /// of the appservice's own users there (its sender and tenant bots are never members, banned,
    /// muted or redacted; DESIGN §7.1) — by that homeserver's namespaces, not the default one's
    /// (DESIGN §13). `not_ours` says why in the call's terms.
    pub fn platform_user(
        &self,
        field: &str,
        value: &str,
        not_ours: &str,
    ) -> Result<OwnedUserId, PlatformError> {
        let user_id =
            validate::member_user_id(value, self.server_name()).map_err(|mut error| {
                error.field = field.into();
                error
            })?;
        let home = self.config.home_of(&self.tenant);
        if home.namespaces.is_our_user(user_id.as_str()) {
            return Err(FieldError::new(
                field,
                format!("{user_id} is one of the appservice's own users, {not_ours}"),
            )
            .into());
        }
        Ok(user_id)
    }

    /// Runs `change` in one write transaction and answers with the job it returns; the worker is
    /// woken. `change` may refuse the call with a `PlatformError` (then nothing is written).
    pub async fn queue<F>(&self, change: F) -> Result<Accepted, PlatformError>
    where
        F: FnOnce(&mut DbConnection, i64) -> Result<Result<Job, PlatformError>, StoreError>
            + Send
            + 'static,
    {
        let now = self.now;
        let job = self
            .app
            .store
            .write(move |conn| conn.write(|conn| change(conn, now)))
            .await??;
        self.app.jobs_wakeup.notify_one();
        self.app.webhooks_wakeup.notify_one();
        Ok(Accepted(job))
    }
}

impl RoomCall {
    /// Like [`TenantCall::queue`], on the room the path names, which must be declared and not
    /// deleted (404 otherwise).
    pub async fn queue_on_live_room<F>(&self, change: F) -> Result<Accepted, PlatformError>
    where
        F: FnOnce(&mut DbConnection, &Room, i64) -> Result<Result<Job, PlatformError>, StoreError>
            + Send
            + 'static,
    {
        let (tenant, kind, slug) = (
            self.call.tenant.id.clone(),
            self.kind.as_str(),
            self.slug.clone(),
        );
        let alias = self.alias.to_string();
        self.call
            .queue(move |conn, now| {
                let Some(room) = room_store::find_live(conn, &tenant, kind, &slug)? else {
                    return Ok(Err(PlatformError::NotFound(format!(
                        "no room is declared as {alias}: PUT the room first"
                    ))));
                };
                change(conn, &room, now)
            })
            .await
    }
}

/// The room's `ensure_room` when `changed`: the one already queued for the room when there is one
/// (it reads the declaration when it runs, so the change folds into it; DESIGN §15), else a new
/// one. Otherwise the room's latest job answers, unless it ended `failed` or `dead` — an identical
/// call then tries again (DESIGN §7.1).
pub fn ensure_if_changed(
    conn: &mut DbConnection,
    room: &Room,
    changed: bool,
    now: i64,
) -> Result<Job, StoreError> {
    let kinds = crate::jobs::DECLARATION_KINDS;
    if changed {
        if let Some(waiting) =
            job_folding::waiting_for_room(conn, room.id, kinds, ensure_room::KIND)?
        {
            return Ok(waiting);
        }
    } else {
        match jobs::latest_for_room(conn, room.id, kinds)? {
            Some(job) if !job.status.ended_badly() => return Ok(job),
            _ => {}
        }
    }
    jobs::enqueue(conn, &ensure_room::new_job(room), now)
}
