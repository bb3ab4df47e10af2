//! `ensure_room`'s directory step (DESIGN §7.5): a public room is listed in its tenant's own room
//! directory (the appservice room list of network `{tenant id}`), and in the server-wide one only
//! for a tenant that opted in (`tenants[].server_directory`); unlisted and private rooms are in
//! neither, and a room that stops being public leaves both. The homeserver refusing a server-wide
//! listing (Synapse's default `room_list_publication_rules` allow no one) is its operator's
//! policy: a warning, `directory_refusals_total` and a note on the room, never the job's failure.

use std::sync::Arc;

use ruma::{RoomId, UserId};

use super::JobError;
use super::ensure_settings::Fresh;
use crate::app::App;
use crate::rooms::directory::{self, Listings};
use crate::rooms::validate::Visibility;
use crate::store::room_access;
use crate::store::rooms::Room;

/// Makes the room's listings match `visibility`, and keeps the refusal's note on the room
/// (`note_before`: the one it has). A room this job just created is in no list yet, so nothing
/// is read back for it.
pub async fn ensure_directory(
    app: &Arc<App>,
    room: &Room,
    note_before: Option<&str>,
    bot: &UserId,
    room_id: &RoomId,
    visibility: Visibility,
    fresh: Fresh,
) -> Result<(), JobError> {
    let server_directory =
        (app.config().tenant(&room.tenant_id)).is_some_and(|tenant| tenant.server_directory);
    let wanted = directory::listings(visibility, server_directory);
    // Synapse cannot be asked about one entry of an appservice list, and the PUT is idempotent.
    if wanted.tenant || fresh == Fresh::Existing {
        app.client_for(bot)
            .set_listed_in_network(bot, &room.tenant_id, room_id, wanted.tenant)
            .await?;
    }
    let note = ensure_server_listing(app, &room.tenant_id, bot, room_id, wanted, fresh).await?;
    if note.as_deref() != note_before {
        let room_key = room.id;
        app.store
            .write(move |c| room_access::set_directory_note(c, room_key, note.as_deref()))
            .await?;
    }
    Ok(())
}

/// Lists the room in the server-wide directory or takes it out; returns the note to keep when
/// the homeserver refused to list it.
async fn ensure_server_listing(
    app: &Arc<App>,
    tenant_id: &str,
    bot: &UserId,
    room_id: &RoomId,
    wanted: Listings,
    fresh: Fresh,
) -> Result<Option<String>, JobError> {
    let homeserver = app.client_for(bot);
    let listed = match fresh {
        Fresh::JustCreated => false,
        Fresh::Existing => homeserver.is_published(room_id).await?,
    };
    if listed == wanted.server {
        return Ok(None);
    }
    match homeserver.set_published(bot, room_id, wanted.server).await {
        Ok(()) => Ok(None),
        Err(error) if wanted.server && error.is_publication_refused() => {
            tracing::warn!(%room_id, %error, "the homeserver refused to list the room in its server-wide directory (it stays in the tenant's own): allow the tenant bots in Synapse's room_list_publication_rules, or set server_directory: false for the tenant");
            app.metrics
                .directory_refusals
                .with_label_values(&[tenant_id])
                .inc();
            Ok(Some(directory::refusal_note(&error.to_string())))
        }
        Err(error) => Err(error.into()),
    }
}

/// Takes a room out of its tenant's directory: a room torn down, or one another room replaced
/// (a lost room made again, an upgrade followed). Needs no power in the room.
pub async fn delist(
    app: &App,
    bot: &UserId,
    tenant_id: &str,
    room_id: &RoomId,
) -> Result<(), JobError> {
    app.client_for(bot)
        .set_listed_in_network(bot, tenant_id, room_id, false)
        .await?;
    Ok(())
}
