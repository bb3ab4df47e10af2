//! `GET /_matrix/app/v1/rooms/{roomAlias}`
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#get_matrixappv1roomsroomalias>
//!
//! Synapse asks when someone resolves or joins an alias in our namespace that it does not know;
//! only the aliases of the tenants the calling homeserver hosts are ours there.
//! A room the platform declared is created now (the same creation its queued job would make —
//! one at a time per room) and we answer 200 once the room and its alias exist, because Synapse
//! reads its own database again after our answer. Anything else: 404.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ruma::RoomAliasId;

use super::auth::CallingHomeserver;
use super::error::{ApiError, empty_object};
use crate::app::App;
use crate::jobs::create_room;
use crate::rooms;
use crate::store::rooms as room_store;

#[tracing::instrument(name = "as.query_alias", skip_all, fields(alias = %alias))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Extension(CallingHomeserver(homeserver)): Extension<CallingHomeserver>,
    Path(alias): Path<String>,
) -> Response {
    let outcome = |label: &str| app.metrics.alias_queries.with_label_values(&[label]).inc();
    let config = &app.config();
    let Some(calling) = config.homeserver_by_id(&homeserver) else {
        // Its token was accepted under a config a reload has since replaced.
        outcome("not_ours");
        return ApiError::NotFound("this appservice has no such alias").into_response();
    };
    let parsed = RoomAliasId::parse(&alias).ok().and_then(|alias| {
        Some((
            rooms::parse_alias(alias.as_str(), &calling.homeserver.server_name)?,
            alias,
        ))
    });
    let Some((parts, alias)) = parsed else {
        outcome("not_ours");
        return ApiError::NotFound("this appservice has no such alias").into_response();
    };
    let hosted = config
        .tenant(&parts.tenant)
        .filter(|t| t.homeserver == calling.id);
    let Some(tenant) = hosted else {
        outcome("unknown_tenant");
        return ApiError::NotFound("no such tenant").into_response();
    };
    let (tenant_id, kind, slug) = (tenant.id.clone(), parts.kind.as_str(), parts.slug.clone());
    let declared = app
        .store
        .run(move |c| room_store::find_live(c, &tenant_id, kind, &slug))
        .await;
    let room = match declared {
        Ok(Some(room)) => room,
        Ok(_) => {
            outcome("undeclared");
            return ApiError::NotFound("no room is declared for this alias").into_response();
        }
        Err(error) => {
            outcome("failed");
            tracing::warn!(%error, "could not look the alias up");
            return ApiError::NotFound("the alias could not be looked up; try again")
                .into_response();
        }
    };
    let existed = room.room_id.is_some();
    let bot = config.bot_user_id(tenant);
    let created = match create_room::ensure_created(&app, room.id, room.generation).await {
        // The room existed but Synapse lost this alias (or it is an earlier slug's): put it back.
        Ok(Some((room_id, _))) if existed => app
            .client_for(&bot)
            .ensure_alias(&bot, alias, &room_id)
            .await
            .map_err(Into::into),
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            outcome("undeclared");
            return ApiError::NotFound("no room is declared for this alias").into_response();
        }
        Err(error) => Err(error),
    };
    match created {
        Ok(()) => {
            outcome(if existed { "existing" } else { "created" });
            empty_object().into_response()
        }
        Err(error) => {
            outcome("failed");
            tracing::warn!(error = %error.sentence(), "could not create the declared room for an alias query");
            ApiError::NotFound("the room could not be created; try again").into_response()
        }
    }
}
