//! `ensure_room`'s directory step (DESIGN §7.5): a public room is listed in its tenant's own room
//! directory (the appservice room list of network `{tenant id}`), and in the server-wide one only
//! for a tenant that opted in (`tenants[].server_directory`); unlisted and private rooms are in
//! neither, and a room that stops being public leaves both. The homeserver refusing a server-wide
//! listing (Synapse's default `room_list_publication_rules` allow no one) is its operator's
//! policy: a warning, `directory_refusals_total` and a note on the room, never the job's failure.

use ruma::{RoomId, UserId};

use super::JobError;
use super::in_room::Fresh;
use crate::app::App;
use crate::matrix::RoomConnection;
use crate::rooms::directory::{self, Listings};
use crate::store::room_access;
use crate::store::rooms::Room;

/// Keeps the note of a server-wide listing refused (`note`, what [`ensure_listings`] answered) on
/// the room, which had `before`, and counts the refusal.
pub async fn keep_note(
    app: &App,
    room: &Room,
    before: Option<&str>,
    note: Option<String>,
) -> Result<(), JobError> {
    if note.is_some() {
        app.metrics
            .directory_refusals
            .with_label_values(&[&room.tenant_id])
            .inc();
    }
    if note.as_deref() != before {
        let room_key = room.id;
        app.store
            .write(move |c| room_access::set_directory_note(c, room_key, note.as_deref()))
            .await?;
    }
    Ok(())
}

/// Lists the room where `wanted` says and takes it out of the rest; returns the note to keep
/// when the homeserver refused to list it server-wide. A room this job just created is in no list
/// yet, so nothing is read back for it.
pub async fn ensure_listings(
    homeserver: &impl RoomConnection,
    bot: &UserId,
    tenant_id: &str,
    room_id: &RoomId,
    wanted: Listings,
    fresh: Fresh,
) -> Result<Option<String>, JobError> {
    // Synapse cannot be asked about one entry of an appservice list, and the PUT is idempotent.
    if wanted.tenant || fresh == Fresh::Existing {
        homeserver
            .set_listed_in_network(bot, tenant_id, room_id, wanted.tenant)
            .await?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::memory::{Homeserver, World};
    use crate::rooms::validate::Visibility;

    const BOT: &str = "@openmeet-bot-tenanta:hs.test";

    async fn ensure(
        world: World,
        visibility: Visibility,
        server_directory: bool,
        fresh: Fresh,
    ) -> (Result<Option<String>, JobError>, World, usize) {
        let homeserver = Homeserver::new(world, None);
        let (bot, room_id) = (
            UserId::parse(BOT).unwrap(),
            RoomId::parse("!party:hs.test").unwrap(),
        );
        let wanted = directory::listings(visibility, server_directory);
        let result = ensure_listings(&homeserver, &bot, "tenantA", &room_id, wanted, fresh).await;
        (result, homeserver.world(), homeserver.calls())
    }

    #[tokio::test]
    async fn a_new_private_or_unlisted_room_costs_no_call_and_a_new_public_one_one() {
        for visibility in [Visibility::Private, Visibility::Unlisted] {
            let (result, world, calls) =
                ensure(World::default(), visibility, true, Fresh::JustCreated).await;
            assert_eq!((result.unwrap(), calls), (None, 0), "{visibility:?}");
            assert!(world.listed.is_empty() && !world.published);
        }
        let (result, world, calls) = ensure(
            World::default(),
            Visibility::Public,
            false,
            Fresh::JustCreated,
        )
        .await;
        assert_eq!((result.unwrap(), calls), (None, 1));
        assert_eq!(world.listed, ["tenantA".to_owned()].into());
        assert!(
            !world.published,
            "the tenant did not opt into the server-wide directory"
        );
    }

    #[tokio::test]
    async fn a_refused_server_wide_listing_is_a_note_and_the_tenants_own_listing_stands() {
        let world = World {
            refuse_publication: true,
            ..World::default()
        };
        let (result, world, _) = ensure(world, Visibility::Public, true, Fresh::Existing).await;
        let note = result.unwrap().expect("a note");
        assert!(note.contains("Not allowed to publish room"), "{note}");
        assert_eq!(world.listed, ["tenantA".to_owned()].into());
        assert!(!world.published);
    }

    #[tokio::test]
    async fn a_room_that_stops_being_public_leaves_both_lists() {
        let world = World {
            listed: ["tenantA".to_owned()].into(),
            published: true,
            ..World::default()
        };
        for visibility in [Visibility::Unlisted, Visibility::Private] {
            let (result, after, _) = ensure(world.clone(), visibility, true, Fresh::Existing).await;
            assert_eq!(result.unwrap(), None);
            assert!(
                after.listed.is_empty() && !after.published,
                "{visibility:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_server_wide_listing_without_the_opt_in_is_taken_out_and_with_it_kept() {
        let world = World {
            listed: ["tenantA".to_owned()].into(),
            published: true,
            ..World::default()
        };
        let (_, after, _) = ensure(world.clone(), Visibility::Public, false, Fresh::Existing).await;
        assert!(!after.published);
        let (_, after, calls) = ensure(world, Visibility::Public, true, Fresh::Existing).await;
        assert!(after.published);
        assert_eq!(
            calls, 2,
            "the tenant list's PUT and the server-wide read, no write"
        );
    }
}
