//! `teardown_room`: takes a deleted room down in Synapse, step by step and resumable after a crash
//! at any step: remove its aliases and directory entry first (an alias left on a room nobody can
//! join would resolve forever), set the join rule to invite, kick every member and pending invitee
//! except the bot ("Room being deleted"), then the bot leaves and forgets. History stays.

use std::sync::Arc;

use ruma::{OwnedRoomAliasId, RoomId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::JobError;
use super::in_room::{ManagedInStore, ManagedRooms};
use crate::app::App;
use crate::matrix::{self, RoomConnection};
use crate::store::jobs::{Job, NewJob};
use crate::store::rooms::Room;

pub const KIND: &str = "teardown_room";
const REASON: &str = "Room being deleted";

/// What to take down, captured when the platform deleted the room (a later declaration of the
/// same slug may already describe a new room).
#[derive(Deserialize)]
struct Payload {
    room_id: Option<String>,
    aliases: Vec<OwnedRoomAliasId>,
}

pub fn new_job(room: &Room, aliases: &[OwnedRoomAliasId]) -> NewJob {
    new_job_for(room, room.room_id.as_deref(), aliases)
}

/// Takes down `room_id`, which work racing a DELETE of `room` created (DESIGN §7.1: DELETE wins).
pub fn new_job_for(room: &Room, room_id: Option<&str>, aliases: &[OwnedRoomAliasId]) -> NewJob {
    NewJob {
        tenant_id: room.tenant_id.clone(),
        room_key: Some(room.id),
        kind: KIND.to_owned(),
        payload: json!({"room_id": room_id, "aliases": aliases}),
    }
}

/// The same teardown once more, for a repeated DELETE after `failed` ended in failure.
pub fn again(failed: &Job) -> NewJob {
    NewJob {
        tenant_id: failed.tenant_id.clone(),
        room_key: failed.room_key,
        kind: KIND.to_owned(),
        payload: serde_json::from_str(&failed.payload).unwrap_or_else(|_| json!({})),
    }
}

pub async fn run(app: &Arc<App>, job: &Job) -> Result<Value, JobError> {
    let payload: Payload = super::payload(job)?;
    let bot = super::tenant_bot(app, job).await?;
    let homeserver = app.client_for(&bot);
    let managed = ManagedInStore(&app.store);
    take_down(&*homeserver, &managed, &bot, &job.tenant_id, payload).await
}

/// The teardown itself, step by step; every step looks before it acts, so a run after a crash
/// at any step finishes the work and repeats none of it.
async fn take_down(
    homeserver: &impl RoomConnection,
    managed: &impl ManagedRooms,
    bot: &UserId,
    tenant_id: &str,
    payload: Payload,
) -> Result<Value, JobError> {
    for alias in payload.aliases {
        ensure_alias_removed(homeserver, managed, bot, alias, payload.room_id.as_deref()).await?;
    }
    let Some(room_id) = payload.room_id else {
        return Ok(json!({"room_id": null, "note": "the room was never created in Synapse"}));
    };
    let room_id =
        RoomId::parse(&room_id).map_err(|error| JobError::Permanent(error.to_string()))?;
    // Out of the tenant's directory first, whether or not the bot is still in the room.
    homeserver
        .set_listed_in_network(bot, tenant_id, &room_id, false)
        .await?;
    let (kicked, out_of_reach) = match homeserver.room_state(bot, &room_id).await {
        Ok(state) => clear(homeserver, bot, &room_id, &state).await?,
        // The bot is out already: an earlier attempt got as far as leaving.
        Err(error) if error.is_forbidden() => (0, Vec::new()),
        Err(error) => return Err(error.into()),
    };
    homeserver.ensure_left_and_forgotten(bot, &room_id).await?;
    Ok(json!({"room_id": room_id, "kicked": kicked, "could_not_kick": out_of_reach}))
}

/// Removes `alias` unless it names a room we manage other than `room_id`: a slug declared again
/// after the DELETE (or released by it) may already name a new room.
async fn ensure_alias_removed(
    homeserver: &impl RoomConnection,
    managed: &impl ManagedRooms,
    bot: &UserId,
    alias: OwnedRoomAliasId,
    room_id: Option<&str>,
) -> Result<(), JobError> {
    let Some(target) = homeserver.resolve_alias(bot, alias.clone()).await? else {
        return Ok(());
    };
    if room_id != Some(target.as_str()) && managed.holder(&target).await?.is_some() {
        return Ok(());
    }
    Ok(homeserver.ensure_alias_removed(bot, alias).await?)
}

/// Unpublishes, closes and empties the room; returns how many were kicked and who could not be.
async fn clear(
    homeserver: &impl RoomConnection,
    bot: &UserId,
    room_id: &RoomId,
    state: &matrix::RoomState,
) -> Result<(usize, Vec<String>), JobError> {
    homeserver.set_published(bot, room_id, false).await?;
    if state
        .content("m.room.canonical_alias", "")
        .is_some_and(|content| content.as_object().is_some_and(|c| !c.is_empty()))
    {
        homeserver
            .set_state(bot, room_id, "m.room.canonical_alias", "", &json!({}))
            .await?;
    }
    if state
        .content("m.room.join_rules", "")
        .and_then(|c| c["join_rule"].as_str())
        != Some("invite")
    {
        homeserver
            .set_state(
                bot,
                room_id,
                "m.room.join_rules",
                "",
                &json!({"join_rule": "invite"}),
            )
            .await?;
    }
    let (mut kicked, mut out_of_reach) = (0, Vec::new());
    for (user, membership) in state.memberships() {
        if user == bot || !matches!(membership.as_str(), "join" | "invite" | "knock") {
            continue;
        }
        match homeserver.kick(bot, room_id, &user, REASON).await {
            Ok(()) => kicked += 1,
            // Before room version 12 a member at the bot's own level cannot be kicked by it.
            Err(error) if error.is_forbidden() => {
                tracing::warn!(%user, "cannot kick this member: their power level equals the bot's");
                out_of_reach.push(user.to_string());
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok((kicked, out_of_reach))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use ruma::{OwnedRoomId, OwnedUserId};

    use super::*;
    use crate::matrix::memory::{Fault, Homeserver, World};

    const BOT: &str = "@openmeet-bot-tenanta:hs.test";
    const ROOM: &str = "!party:hs.test";

    /// The Matrix rooms the store declares.
    struct Managed(BTreeSet<String>);

    impl ManagedRooms for Managed {
        async fn holder(&self, room_id: &RoomId) -> Result<Option<i64>, JobError> {
            Ok(self.0.contains(room_id.as_str()).then_some(1))
        }
    }

    fn room(id: &str) -> OwnedRoomId {
        RoomId::parse(id).unwrap()
    }

    /// A public room with its alias, listed everywhere, with a host, a guest still invited and a
    /// member at the bot's own level (who cannot be kicked before room version 12).
    fn before() -> World {
        let mut world = World {
            aliases: [("#event-party-tenantA:hs.test".to_owned(), room(ROOM))].into(),
            listed: ["tenantA".to_owned()].into(),
            published: true,
            ..World::default()
        };
        world
            .state
            .insert("m.room.join_rules".into(), json!({"join_rule": "public"}));
        world.state.insert(
            "m.room.canonical_alias".into(),
            json!({"alias": "#event-party-tenantA:hs.test"}),
        );
        for (user, membership) in [
            (BOT, "join"),
            ("@host:hs.test", "join"),
            ("@guest:hs.test", "invite"),
            ("@equal:hs.test", "join"),
            ("@gone:hs.test", "leave"),
        ] {
            world.members.insert(user.into(), membership.into());
        }
        world.unkickable.insert("@equal:hs.test".into());
        world
    }

    fn payload() -> Payload {
        Payload {
            room_id: Some(ROOM.to_owned()),
            aliases: vec![OwnedRoomAliasId::try_from("#event-party-tenantA:hs.test").unwrap()],
        }
    }

    fn bot() -> OwnedUserId {
        UserId::parse(BOT).unwrap()
    }

    async fn run_on(homeserver: &Homeserver) -> Result<Value, JobError> {
        let managed = Managed(BTreeSet::new());
        take_down(homeserver, &managed, &bot(), "tenantA", payload()).await
    }

    #[tokio::test]
    async fn a_teardown_empties_closes_and_leaves_the_room_and_takes_it_out_of_every_list() {
        let homeserver = Homeserver::new(before(), None);
        let result = run_on(&homeserver).await.unwrap();
        assert_eq!(result["kicked"], 2, "{result}");
        assert_eq!(result["could_not_kick"], json!(["@equal:hs.test"]));
        let after = homeserver.world();
        assert!(after.aliases.is_empty() && after.listed.is_empty() && !after.published);
        assert_eq!(
            after.state["m.room.join_rules"],
            json!({"join_rule": "invite"})
        );
        assert_eq!(after.state["m.room.canonical_alias"], json!({}));
        assert_eq!(after.members[BOT], "leave");
        assert_eq!(after.members["@guest:hs.test"], "leave");
        assert_eq!(
            after.kicks.get("@gone:hs.test"),
            None,
            "a member who left is no kick"
        );
    }

    #[tokio::test]
    async fn a_teardown_cut_short_at_any_call_finishes_on_the_next_run_and_repeats_no_kick() {
        let clean = Homeserver::new(before(), None);
        run_on(&clean).await.unwrap();
        let (done, calls) = (clean.world(), clean.calls());
        for n in 0..calls {
            for fault in [Fault::Before(n), Fault::After(n)] {
                let cut = Homeserver::new(before(), Some(fault));
                let error = run_on(&cut).await.unwrap_err();
                assert_eq!(
                    error.retry_kind(),
                    matrix::RetryKind::Transient,
                    "{fault:?}"
                );
                let again = Homeserver::new(cut.world(), None);
                run_on(&again).await.unwrap();
                let after = again.world();
                // The second run may find less to do (and so report fewer kicks), never more.
                assert_eq!(
                    World {
                        kicks: done.kicks.clone(),
                        ..after.clone()
                    },
                    done,
                    "{fault:?}"
                );
                assert!(
                    after.kicks.values().all(|&kicks| kicks == 1),
                    "{fault:?}: {:?}",
                    after.kicks
                );
            }
        }
    }

    #[tokio::test]
    async fn an_alias_naming_another_managed_room_stays_and_a_leftover_one_goes() {
        let mut world = before();
        world.aliases = [
            (
                "#event-party-tenantA:hs.test".to_owned(),
                room("!new:hs.test"),
            ),
            (
                "#event-old-tenantA:hs.test".to_owned(),
                room("!stale:hs.test"),
            ),
        ]
        .into();
        let homeserver = Homeserver::new(world, None);
        let managed = Managed(["!new:hs.test".to_owned()].into());
        let mut payload = payload();
        payload
            .aliases
            .push(OwnedRoomAliasId::try_from("#event-old-tenantA:hs.test").unwrap());
        take_down(&homeserver, &managed, &bot(), "tenantA", payload)
            .await
            .unwrap();
        let aliases: Vec<String> = homeserver.world().aliases.into_keys().collect();
        assert_eq!(aliases, ["#event-party-tenantA:hs.test"]);
    }

    #[tokio::test]
    async fn a_room_the_bot_already_left_is_only_taken_out_of_the_lists() {
        let mut world = before();
        world.members.insert(BOT.into(), "leave".into());
        let homeserver = Homeserver::new(world, None);
        let result = run_on(&homeserver).await.unwrap();
        assert_eq!(result["kicked"], 0, "{result}");
        let after = homeserver.world();
        assert!(after.listed.is_empty() && after.aliases.is_empty());
        assert_eq!(
            after.members["@host:hs.test"], "join",
            "nothing else was asked"
        );
    }
}
