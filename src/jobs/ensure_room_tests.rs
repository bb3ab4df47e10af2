//! `ensure_room`'s decisions against the in-memory homeserver: creation and adoption, settings
//! that drifted, a member demoted or removed, mutes, refusals in the middle, and a convergence cut
//! short at any call.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ruma::{OwnedRoomId, RoomId};
use serde_json::json;

use super::create_room::create_or_adopt;
use super::*;
use crate::matrix::memory::{CREATED, Fault, Homeserver, World};
use crate::rooms::{RoomKind, Visibility};
use crate::store::member_state::{Hold, Restriction};

const BOT: &str = "@openmeet-bot-tenanta:hs.test";
const ALIAS: &str = "#event-party-tenantA:hs.test";
const HOST: &str = "@host:hs.test";
const GUEST: &str = "@guest:hs.test";
/// The longest rate-limit wait the tests' jobs wait out.
const WAIT: Duration = Duration::from_millis(50);

/// No declared room holds any Matrix room but this one.
struct NoOtherRooms;

impl ManagedRooms for NoOtherRooms {
    async fn holder(&self, _: &RoomId) -> Result<Option<i64>, JobError> {
        Ok(None)
    }
}

/// A declared room: its settings, members and their levels, and whether its tenant lists rooms
/// server-wide.
struct Case {
    settings: DeclaredRoom,
    members: Vec<MemberState>,
    desired: BTreeMap<OwnedUserId, i64>,
    staff: BTreeMap<OwnedUserId, i64>,
    staff_owned: BTreeSet<OwnedUserId>,
    server_directory: bool,
    version: &'static str,
}

fn user(id: &str) -> OwnedUserId {
    UserId::parse(id).unwrap()
}

fn bot() -> OwnedUserId {
    user(BOT)
}

fn member(user_id: &str, role: Option<&str>, applied_level: Option<i32>) -> MemberState {
    MemberState {
        user_id: user_id.to_owned(),
        membership: match role {
            Some(role) => Membership::Declared { role: role.into() },
            None => Membership::Removed { reason: None },
        },
        applied_level,
        ban: Restriction::None,
        mute: Restriction::None,
    }
}

fn hold() -> Restriction {
    Restriction::InForce(Hold {
        scope: "room",
        reason: Some("spam".into()),
        expires_at: None,
    })
}

/// A public event room with a host at 100 and a guest at 0, in room version 12.
fn party() -> Case {
    Case {
        settings: DeclaredRoom {
            kind: RoomKind::Event,
            slug: "party".into(),
            tenant: "tenantA".into(),
            name: "Party Chat".into(),
            topic: Some("Chat for the party".into()),
            visibility: Visibility::Public,
            open_to: None,
        },
        members: vec![
            member(HOST, Some("host"), None),
            member(GUEST, Some("guest"), None),
        ],
        desired: [(user(HOST), 100), (user(GUEST), 0)].into(),
        staff: BTreeMap::new(),
        staff_owned: BTreeSet::new(),
        server_directory: false,
        version: "12",
    }
}

async fn create(homeserver: &Homeserver, case: &Case) -> Result<OwnedRoomId, JobError> {
    let body = rooms::create_room_body(&case.settings, &bot(), case.version, &case.desired);
    let alias = OwnedRoomAliasId::try_from(ALIAS).unwrap();
    create_or_adopt(homeserver, &bot(), &alias, body).await
}

/// One attempt of `ensure_room` on the created room: it reads the state, then converges.
async fn converge(
    homeserver: &Homeserver,
    case: &Case,
    fresh: Fresh,
) -> Result<Converged, JobError> {
    converge_paced(homeserver, case, fresh, &Pacing::new(WAIT)).await
}

/// [`converge`] meeting rate limits as `pacing` says.
async fn converge_paced(
    homeserver: &Homeserver,
    case: &Case,
    fresh: Fresh,
    pacing: &Pacing,
) -> Result<Converged, JobError> {
    let (bot, room_id) = (bot(), RoomId::parse(CREATED).unwrap());
    let state = homeserver.room_state(&bot, &room_id).await?;
    let at = InRoom {
        room_key: 1,
        tenant_id: "tenantA",
        bot: &bot,
        room_id: &room_id,
        version: case.version,
        state: &state,
        fresh,
    };
    let aliases = [(
        "party".to_owned(),
        OwnedRoomAliasId::try_from(ALIAS).unwrap(),
    )];
    let wanted = Wanted {
        settings: &case.settings,
        aliases: &aliases,
        listings: directory::listings(case.settings.visibility, case.server_directory),
        members: &case.members,
        desired: &case.desired,
        staff: &case.staff,
        staff_owned: &case.staff_owned,
    };
    converge_in_room(homeserver, &NoOtherRooms, &at, &wanted, pacing).await
}

/// The room as `case` creates and converges it.
async fn created(case: &Case) -> World {
    let homeserver = Homeserver::new(World::default(), None);
    create(&homeserver, case).await.unwrap();
    converge(&homeserver, case, Fresh::JustCreated)
        .await
        .unwrap();
    homeserver.world()
}

fn users_levels(world: &World) -> serde_json::Value {
    world.state["m.room.power_levels"]["users"].clone()
}

#[tokio::test]
async fn a_new_room_is_created_from_its_declaration_and_converging_it_writes_nothing_again() {
    let case = party();
    let homeserver = Homeserver::new(World::default(), None);
    assert_eq!(create(&homeserver, &case).await.unwrap().as_str(), CREATED);
    let converged = converge(&homeserver, &case, Fresh::JustCreated)
        .await
        .unwrap();
    assert_eq!(converged.refused, Vec::<String>::new());
    assert_eq!(converged.directory_note, None);
    let world = homeserver.world();
    assert_eq!(world.creations, 1);
    assert_eq!(
        world.writes,
        Vec::<String>::new(),
        "createRoom set every setting, the alias and the levels"
    );
    assert_eq!(
        homeserver.calls(),
        5,
        "createRoom, the state, the tenant's listing and two invites"
    );
    assert_eq!(world.membership(HOST), Some("invite"));
    assert_eq!(world.membership(GUEST), Some("invite"));
    assert_eq!(world.listed, ["tenantA".to_owned()].into());
    assert!(!world.published, "the tenant did not opt in");
    assert_eq!(world.aliases[ALIAS].as_str(), CREATED);
    assert_eq!(users_levels(&world), json!({HOST: 100}));
    assert_eq!(
        converged.applied,
        vec![(HOST.to_owned(), Some(100)), (GUEST.to_owned(), Some(0))]
    );
}

#[tokio::test]
async fn a_room_whose_creation_answer_was_lost_is_adopted_not_created_twice() {
    let case = party();
    let homeserver = Homeserver::new(World::default(), Some(Fault::After(0)));
    assert!(create(&homeserver, &case).await.is_err());
    let retried = Homeserver::new(homeserver.world(), None);
    assert_eq!(create(&retried, &case).await.unwrap().as_str(), CREATED);
    converge(&retried, &case, Fresh::JustCreated).await.unwrap();
    let world = retried.world();
    assert_eq!(world.creations, 1);
    assert_eq!(world, created(&case).await);
}

#[tokio::test]
async fn a_room_that_drifted_gets_back_only_what_differs_and_keeps_what_was_never_declared() {
    let case = party();
    let mut world = created(&case).await;
    world.writes.clear();
    world.aliases.clear();
    world.listed.clear();
    world
        .state
        .insert("m.room.name".into(), json!({"name": "Renamed by a host"}));
    world
        .state
        .insert("m.room.join_rules".into(), json!({"join_rule": "invite"}));
    world
        .state
        .insert("m.room.avatar".into(), json!({"url": "mxc://hs.test/a"}));
    let homeserver = Homeserver::new(world, None);
    converge(&homeserver, &case, Fresh::Existing).await.unwrap();
    let after = homeserver.world();
    let mut writes = after.writes.clone();
    writes.sort();
    assert_eq!(writes, ["m.room.join_rules", "m.room.name"]);
    assert_eq!(after.state["m.room.name"], json!({"name": "Party Chat"}));
    assert_eq!(
        after.state["m.room.avatar"],
        json!({"url": "mxc://hs.test/a"})
    );
    assert_eq!(after.aliases[ALIAS].as_str(), CREATED);
    assert_eq!(after.listed, ["tenantA".to_owned()].into());
}

#[tokio::test]
async fn a_demoted_member_gets_the_lower_level_and_a_removed_one_is_kicked_and_loses_theirs() {
    let mut case = party();
    let moderator = "@moderator:hs.test";
    case.members
        .push(member(moderator, Some("moderator"), None));
    case.desired.insert(user(moderator), 50);
    let mut world = created(&case).await;
    for user in [HOST, moderator] {
        world.members.insert(user.into(), "join".into());
    }
    assert_eq!(users_levels(&world), json!({HOST: 100, moderator: 50}));
    // The moderator is a guest now, and the host left the event.
    let mut case = party();
    case.members = vec![
        member(HOST, None, Some(100)),
        member(GUEST, Some("guest"), None),
        member(moderator, Some("guest"), Some(50)),
    ];
    case.desired = [(user(GUEST), 0), (user(moderator), 0)].into();
    let homeserver = Homeserver::new(world, None);
    let converged = converge(&homeserver, &case, Fresh::Existing).await.unwrap();
    let after = homeserver.world();
    assert_eq!(users_levels(&after), json!({}));
    assert_eq!(after.kicks, [(HOST.to_owned(), 1)].into());
    assert_eq!(after.membership(moderator), Some("join"));
    assert_eq!(
        converged.applied,
        vec![
            (HOST.to_owned(), None),
            (GUEST.to_owned(), Some(0)),
            (moderator.to_owned(), Some(0))
        ]
    );
}

#[tokio::test]
async fn a_muted_member_goes_below_the_message_level_and_comes_back_when_the_mute_is_lifted() {
    let mut case = party();
    case.members[1].mute = hold();
    let world = created(&case).await;
    let muted = users_levels(&world)[GUEST].as_i64().unwrap();
    let events_default = world.state["m.room.power_levels"]["events_default"]
        .as_i64()
        .unwrap();
    assert!(muted < events_default, "{muted} < {events_default}");
    case.members[1].mute = Restriction::Lifted;
    case.members[1].applied_level = Some(muted as i32);
    let homeserver = Homeserver::new(world, None);
    converge(&homeserver, &case, Fresh::Existing).await.unwrap();
    assert_eq!(users_levels(&homeserver.world()), json!({HOST: 100}));
}

#[tokio::test]
async fn a_refusal_in_the_middle_is_noted_and_the_rest_of_the_declaration_still_applies() {
    // Room version 11: a member at the bot's own level can be neither kicked nor banned.
    let (equal, spammer, former) = ("@equal:hs.test", "@spammer:hs.test", "@former:hs.test");
    let mut case = party();
    case.version = "11";
    case.server_directory = true;
    let mut world = World {
        refuse_publication: true,
        ..World::default()
    };
    world
        .unkickable
        .extend([equal.to_owned(), former.to_owned()]);
    let homeserver = Homeserver::new(world, None);
    create(&homeserver, &case).await.unwrap();
    let mut world = homeserver.world();
    for user in [equal, spammer, former] {
        world.members.insert(user.into(), "join".into());
    }
    let mut banned = member(equal, None, None);
    banned.ban = hold();
    let mut spamming = member(spammer, None, None);
    spamming.ban = hold();
    let mut host = member(HOST, Some("host"), None);
    host.mute = hold();
    let mut guest = member(GUEST, Some("guest"), None);
    guest.mute = hold();
    case.members = vec![banned, spamming, host, guest];
    case.members.push(member(former, None, Some(100)));
    let homeserver = Homeserver::new(world, None);
    let converged = converge(&homeserver, &case, Fresh::Existing).await.unwrap();
    let note = converged.directory_note.expect("the refusal's note");
    assert!(note.contains("Not allowed to publish room"), "{note}");
    assert_eq!(converged.refused.len(), 2, "{:?}", converged.refused);
    assert!(converged.refused[0].starts_with("cannot ban @equal:hs.test"));
    assert!(converged.refused[1].starts_with("cannot mute @host:hs.test"));
    let after = homeserver.world();
    assert_eq!(after.listed, ["tenantA".to_owned()].into());
    assert_eq!(after.membership(spammer), Some("ban"));
    assert_eq!(after.membership(GUEST), Some("invite"));
    assert_eq!(after.membership(former), Some("join"), "not kickable");
    let levels = users_levels(&after);
    assert_eq!(levels[HOST], 100, "at the bot's own level, out of reach");
    assert!(levels[GUEST].as_i64().unwrap() < 0, "muted: {levels}");
}

/// An existing room with work in every step: renamed, its alias gone, a member to ban, one to
/// invite, one to kick, a level to change.
async fn drifted() -> (Case, World) {
    let mut case = party();
    let (spammer, former) = ("@spammer:hs.test", "@former:hs.test");
    let mut world = created(&case).await;
    world.writes.clear();
    world.aliases.clear();
    world
        .state
        .insert("m.room.name".into(), json!({"name": "Renamed"}));
    world.members.remove(GUEST);
    for user in [HOST, spammer, former] {
        world.members.insert(user.into(), "join".into());
    }
    let mut banned = member(spammer, None, None);
    banned.ban = hold();
    case.members = vec![
        banned,
        member(former, None, Some(0)),
        member(HOST, Some("moderator"), Some(100)),
        member(GUEST, Some("guest"), None),
    ];
    case.desired = [(user(HOST), 50), (user(GUEST), 0)].into();
    (case, world)
}

#[tokio::test]
async fn a_convergence_cut_short_at_any_call_ends_where_an_uncut_one_does_and_repeats_nothing() {
    let (case, world) = drifted().await;
    let uncut = Homeserver::new(world.clone(), None);
    converge(&uncut, &case, Fresh::Existing).await.unwrap();
    let (expected, calls) = (uncut.world(), uncut.calls());
    assert_eq!(expected.membership("@spammer:hs.test"), Some("ban"));
    assert_eq!(expected.kicks, [("@former:hs.test".to_owned(), 1)].into());
    assert_eq!(users_levels(&expected), json!({HOST: 50}));
    for n in 0..calls {
        for fault in [Fault::Before(n), Fault::After(n)] {
            let homeserver = Homeserver::new(world.clone(), Some(fault));
            assert!(
                converge(&homeserver, &case, Fresh::Existing).await.is_err(),
                "{fault:?}"
            );
            let retried = Homeserver::new(homeserver.world(), None);
            converge(&retried, &case, Fresh::Existing).await.unwrap();
            assert_eq!(retried.world(), expected, "{fault:?}");
        }
    }
}

/// `party` with `guests` more guests, created and none of them invited yet.
async fn crowd(guests: usize) -> (Case, World) {
    let mut case = party();
    for i in 0..guests {
        let guest = format!("@guest-{i:02}:hs.test");
        case.members.push(member(&guest, Some("guest"), None));
        case.desired.insert(user(&guest), 0);
    }
    let homeserver = Homeserver::new(World::default(), None);
    create(&homeserver, &case).await.unwrap();
    (case, homeserver.world())
}

fn invited(world: &World) -> usize {
    world.members.values().filter(|m| *m == "invite").count()
}

#[tokio::test]
async fn a_rate_limited_invite_is_waited_out_and_the_attempt_invites_the_rest() {
    let (case, world) = crowd(20).await;
    let uncut = Homeserver::new(world.clone(), None);
    converge(&uncut, &case, Fresh::JustCreated).await.unwrap();
    let (expected, calls) = (uncut.world(), uncut.calls());
    assert_eq!(invited(&expected), 22);
    // An invite in the middle answers 429 M_LIMIT_EXCEEDED, retry_after_ms 5.
    let limited = Fault::Limited(calls / 2, Duration::from_millis(5));
    let homeserver = Homeserver::new(world, Some(limited));
    let pacing = Pacing::new(WAIT);
    converge_paced(&homeserver, &case, Fresh::JustCreated, &pacing)
        .await
        .unwrap();
    assert_eq!(homeserver.world(), expected);
    assert_eq!(
        homeserver.calls(),
        calls + 1,
        "the refused invite, once more"
    );
    assert_eq!(pacing.waits.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_long_rate_limit_ends_the_attempt_as_a_pause_and_the_next_one_invites_only_who_is_missing()
 {
    let (case, world) = crowd(20).await;
    let uncut = Homeserver::new(world.clone(), None);
    converge(&uncut, &case, Fresh::JustCreated).await.unwrap();
    let (expected, calls) = (uncut.world(), uncut.calls());
    // The next attempt finds the room stored: an existing room.
    let uncut_again = Homeserver::new(world.clone(), None);
    converge(&uncut_again, &case, Fresh::Existing)
        .await
        .unwrap();
    let calls_again = uncut_again.calls();
    let retry_after = Duration::from_secs(60);
    let homeserver = Homeserver::new(world, Some(Fault::Limited(calls / 2, retry_after)));
    let pacing = Pacing::new(WAIT);
    let error = converge_paced(&homeserver, &case, Fresh::JustCreated, &pacing)
        .await
        .unwrap_err();
    assert_eq!(
        error.retry_kind(),
        matrix::RetryKind::RateLimited(retry_after),
        "the worker pauses the job until then: {error}"
    );
    assert_eq!(
        pacing.waits.load(Ordering::Relaxed),
        0,
        "no wait of a minute inside the job"
    );
    let kept = invited(&homeserver.world());
    assert!(kept > 0 && kept < 22, "{kept} invited before the limit");
    let next = Homeserver::new(homeserver.world(), None);
    converge(&next, &case, Fresh::Existing).await.unwrap();
    assert_eq!(next.world(), expected);
    assert_eq!(next.calls(), calls_again - kept, "no member invited twice");
}

#[tokio::test]
async fn tenant_staff_get_their_level_without_an_invite_and_lose_it_when_removed() {
    let staff = "@staff:hs.test";
    let mut case = party();
    case.staff = [(user(staff), 50), (user(GUEST), 75)].into();
    case.staff_owned = [user(staff), user(GUEST)].into();
    let world = created(&case).await;
    assert_eq!(world.membership(staff), None, "staff are not invited");
    assert_eq!(
        users_levels(&world),
        json!({HOST: 100, GUEST: 75, staff: 50}),
        "a guest who is staff holds the staff level, the host keeps the higher role"
    );
    // A host raised the staff member by hand; then the platform removed them from the staff.
    let mut world = world;
    let levels = world.state.get_mut("m.room.power_levels").unwrap();
    levels["users"][staff] = json!(90);
    case.staff.clear();
    let homeserver = Homeserver::new(world, None);
    converge(&homeserver, &case, Fresh::Existing).await.unwrap();
    assert_eq!(users_levels(&homeserver.world()), json!({HOST: 100}));
}
