//! Unit tests of `power_levels`: the createRoom override and reconcile's rules.

use super::*;

const BOT: &str = "@openmeet-bot-lsdf:server.test";

fn user(id: &str) -> OwnedUserId {
    UserId::parse(id).unwrap()
}

fn bot() -> OwnedUserId {
    user(BOT)
}

fn levels(pairs: &[(&str, i64)]) -> BTreeMap<OwnedUserId, i64> {
    pairs.iter().map(|(id, level)| (user(id), *level)).collect()
}

fn users(ids: &[&str]) -> BTreeSet<OwnedUserId> {
    ids.iter().map(|id| user(id)).collect()
}

/// What Synapse writes for a v11 room created by the bot, plus a few users.
fn v11_room(extra_users: Value) -> Value {
    let mut users = json!({ BOT: 100 });
    users
        .as_object_mut()
        .unwrap()
        .extend(extra_users.as_object().unwrap().clone());
    json!({
        "users": users,
        "users_default": 0,
        "events": {"m.room.name": 50, "m.room.power_levels": 100, "m.room.tombstone": 100},
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50,
        "historical": 100,
        "notifications": {"room": 50}
    })
}

fn no_creators() -> BTreeSet<OwnedUserId> {
    BTreeSet::new()
}

/// `power_levels::reconcile` with nobody muted.
fn reconcile(
    current: &Value,
    desired: &BTreeMap<OwnedUserId, i64>,
    owned: &BTreeSet<OwnedUserId>,
    bot: &UserId,
    creators: &BTreeSet<OwnedUserId>,
) -> Reconciled {
    muting(current, desired, &BTreeSet::new(), owned, bot, creators)
}

/// `power_levels::reconcile` with `muted` muted.
fn muting(
    current: &Value,
    desired: &BTreeMap<OwnedUserId, i64>,
    muted: &BTreeSet<OwnedUserId>,
    owned: &BTreeSet<OwnedUserId>,
    bot: &UserId,
    creators: &BTreeSet<OwnedUserId>,
) -> Reconciled {
    let wanted = Wanted {
        desired,
        muted,
        owned,
    };
    super::reconcile(current, wanted, bot, creators)
}

#[test]
fn initial_override_lists_the_bot_at_100_before_v12() {
    let desired = levels(&[("@host:server.test", 100), ("@mod:server.test", 50)]);
    assert_eq!(
        initial_override(&desired, &bot(), false),
        json!({
            "users": {BOT: 100, "@host:server.test": 100, "@mod:server.test": 50},
            "redact": 50, "kick": 50, "ban": 50, "state_default": 50, "invite": 50
        })
    );
}

#[test]
fn initial_override_leaves_out_a_creating_bot_in_v12() {
    let desired = levels(&[("@host:server.test", 100), (BOT, 100)]);
    let content = initial_override(&desired, &bot(), true);
    assert_eq!(content["users"], json!({"@host:server.test": 100}));
}

#[test]
fn initial_override_leaves_out_users_at_the_default_level() {
    let desired = levels(&[("@guest:server.test", 0), ("@speaker:server.test", 25)]);
    let content = initial_override(&desired, &bot(), true);
    assert_eq!(content["users"], json!({"@speaker:server.test": 25}));
}

#[test]
fn reconcile_promotes_and_demotes_desired_users() {
    let current = v11_room(json!({"@a:server.test": 0, "@b:server.test": 50}));
    let desired = levels(&[("@a:server.test", 50), ("@b:server.test", 25)]);
    let owned = users(&["@a:server.test", "@b:server.test"]);
    let result = reconcile(&current, &desired, &owned, &bot(), &no_creators());
    let content = result.content.unwrap();
    assert_eq!(
        content["users"],
        json!({BOT: 100, "@a:server.test": 50, "@b:server.test": 25})
    );
    assert!(result.out_of_reach.is_empty());
}

#[test]
fn reconcile_drops_the_entry_of_an_owned_user_no_longer_desired() {
    let current = v11_room(json!({"@gone:server.test": 50}));
    let owned = users(&["@gone:server.test"]);
    let result = reconcile(&current, &BTreeMap::new(), &owned, &bot(), &no_creators());
    assert_eq!(result.content.unwrap()["users"], json!({ BOT: 100 }));
}

#[test]
fn reconcile_never_touches_users_it_never_managed() {
    let current = v11_room(json!({"@admin:server.test": 75, "@muted:server.test": -1}));
    let desired = levels(&[("@a:server.test", 50)]);
    let owned = users(&["@a:server.test"]);
    let content = reconcile(&current, &desired, &owned, &bot(), &no_creators())
        .content
        .unwrap();
    assert_eq!(content["users"]["@admin:server.test"], json!(75));
    assert_eq!(content["users"]["@muted:server.test"], json!(-1));
}

#[test]
fn reconcile_keeps_every_other_field_as_it_was() {
    let mut current = v11_room(json!({}));
    current["kick"] = json!(75);
    current["com.example.custom"] = json!({"x": 1});
    let desired = levels(&[("@a:server.test", 50)]);
    let owned = users(&["@a:server.test"]);
    let content = reconcile(&current, &desired, &owned, &bot(), &no_creators())
        .content
        .unwrap();
    let mut expected = current.clone();
    expected["users"]["@a:server.test"] = json!(50);
    assert_eq!(content, expected);
}

#[test]
fn reconcile_changes_nothing_when_the_room_already_matches() {
    let current = v11_room(json!({"@a:server.test": 50}));
    let desired = levels(&[("@a:server.test", 50), ("@p:server.test", 0)]);
    let owned = users(&["@a:server.test", "@p:server.test", "@old:server.test"]);
    let result = reconcile(&current, &desired, &owned, &bot(), &no_creators());
    assert_eq!(result.content, None);
    assert!(result.out_of_reach.is_empty());
}

#[test]
fn reconcile_drops_an_entry_lowered_to_users_default() {
    let current = v11_room(json!({"@a:server.test": 50}));
    let desired = levels(&[("@a:server.test", 0)]);
    let owned = users(&["@a:server.test"]);
    let content = reconcile(&current, &desired, &owned, &bot(), &no_creators())
        .content
        .unwrap();
    assert_eq!(content["users"], json!({ BOT: 100 }));
}

#[test]
fn reconcile_pins_missing_moderation_levels_at_50_and_keeps_present_ones() {
    let current = json!({"users": {BOT: 100}, "kick": 75});
    let content = reconcile(
        &current,
        &BTreeMap::new(),
        &BTreeSet::new(),
        &bot(),
        &no_creators(),
    )
    .content
    .unwrap();
    assert_eq!(
        content,
        json!({
            "users": {BOT: 100},
            "kick": 75, "redact": 50, "ban": 50, "state_default": 50, "invite": 50
        })
    );
}

#[test]
fn reconcile_never_lists_a_creating_bot_in_v12() {
    let current = json!({"users": {"@a:server.test": 50}, "redact": 50, "kick": 50,
        "ban": 50, "state_default": 50, "invite": 50});
    let desired = levels(&[("@a:server.test", 50), (BOT, 100)]);
    let owned = users(&["@a:server.test"]);
    let creators = users(&[BOT]);
    let result = reconcile(&current, &desired, &owned, &bot(), &creators);
    assert_eq!(result.content, None);

    let listed = json!({"users": {BOT: 100}});
    let content = reconcile(&listed, &BTreeMap::new(), &owned, &bot(), &creators)
        .content
        .unwrap();
    assert_eq!(content["users"], json!({}));
}

#[test]
fn reconcile_never_lists_other_creators_even_when_desired() {
    let current = json!({"users": {}, "redact": 50, "kick": 50,
        "ban": 50, "state_default": 50, "invite": 50});
    let desired = levels(&[("@upgrader:server.test", 100)]);
    let owned = users(&["@upgrader:server.test"]);
    let creators = users(&[BOT, "@upgrader:server.test"]);
    let result = reconcile(&current, &desired, &owned, &bot(), &creators);
    assert_eq!(result.content, None);
}

#[test]
fn reconcile_lists_a_bot_that_is_not_a_creator_of_a_v12_room() {
    let current = v11_room(json!({}));
    let creators = users(&["@upgrader:server.test"]);
    let result = reconcile(
        &current,
        &BTreeMap::new(),
        &BTreeSet::new(),
        &bot(),
        &creators,
    );
    assert_eq!(result.content, None);
}

#[test]
fn reconcile_reports_a_v11_host_demotion_it_cannot_make_and_applies_the_rest() {
    let current = v11_room(json!({"@host:server.test": 100, "@a:server.test": 0}));
    let desired = levels(&[("@host:server.test", 50), ("@a:server.test", 25)]);
    let owned = users(&["@host:server.test", "@a:server.test"]);
    let result = reconcile(&current, &desired, &owned, &bot(), &no_creators());
    assert_eq!(result.out_of_reach, vec![user("@host:server.test")]);
    let content = result.content.unwrap();
    assert_eq!(content["users"]["@host:server.test"], json!(100));
    assert_eq!(content["users"]["@a:server.test"], json!(25));
}

#[test]
fn reconcile_reports_a_level_above_the_bots_own() {
    let current = v11_room(json!({}));
    let desired = levels(&[("@a:server.test", 150)]);
    let owned = users(&["@a:server.test"]);
    let result = reconcile(&current, &desired, &owned, &bot(), &no_creators());
    assert_eq!(result.out_of_reach, vec![user("@a:server.test")]);
    assert_eq!(result.content, None);
}

#[test]
fn reconcile_reports_a_demoted_bot_that_cannot_raise_itself() {
    let current = v11_room(json!({ BOT: 50 }));
    let result = reconcile(
        &current,
        &BTreeMap::new(),
        &BTreeSet::new(),
        &bot(),
        &no_creators(),
    );
    assert_eq!(result.out_of_reach, vec![bot()]);
}

#[test]
fn a_v12_creator_bot_may_demote_anyone() {
    let current = json!({"users": {"@host:server.test": 100}, "redact": 50, "kick": 50,
        "ban": 50, "state_default": 50, "invite": 50});
    let desired = levels(&[("@host:server.test", 50)]);
    let owned = users(&["@host:server.test"]);
    let result = reconcile(&current, &desired, &owned, &bot(), &users(&[BOT]));
    assert!(result.out_of_reach.is_empty());
    assert_eq!(
        result.content.unwrap()["users"],
        json!({"@host:server.test": 50})
    );
}

#[test]
fn string_levels_of_old_rooms_count_as_their_number() {
    let current = v11_room(json!({"@a:server.test": "50"}));
    let desired = levels(&[("@a:server.test", 50)]);
    let owned = users(&["@a:server.test"]);
    let result = reconcile(&current, &desired, &owned, &bot(), &no_creators());
    assert_eq!(result.content, None);
}

#[test]
fn a_muted_member_goes_one_below_the_message_level_and_back_to_the_role_when_unmuted() {
    let current = v11_room(json!({"@speaker:server.test": 25}));
    let desired = levels(&[("@speaker:server.test", 25)]);
    let owned = users(&["@speaker:server.test"]);
    let muted = users(&["@speaker:server.test"]);
    let result = muting(&current, &desired, &muted, &owned, &bot(), &no_creators());
    let content = result.content.unwrap();
    assert_eq!(content["users"]["@speaker:server.test"], -1);
    assert_eq!(result.levels[&user("@speaker:server.test")], -1);
    assert!(result.unmutable.is_empty());

    let unmuted = reconcile(&content, &desired, &owned, &bot(), &no_creators());
    assert_eq!(
        unmuted.content.unwrap()["users"]["@speaker:server.test"],
        25
    );
}

#[test]
fn a_mute_follows_the_message_level_when_the_room_sets_one() {
    let mut current = v11_room(json!({"@speaker:server.test": 25}));
    current["events"]["m.room.message"] = json!(10);
    let desired = levels(&[("@speaker:server.test", 25), ("@guest:server.test", 0)]);
    let muted = users(&["@speaker:server.test", "@guest:server.test"]);
    let result = muting(&current, &desired, &muted, &muted, &bot(), &no_creators());
    assert_eq!(result.content.unwrap()["users"]["@speaker:server.test"], 9);
    // Already below the message level: the mute changes nothing for them.
    assert_eq!(result.levels[&user("@guest:server.test")], 0);
}

#[test]
fn a_muted_non_member_loses_the_entry_once_unmuted() {
    let muted = users(&["@visitor:server.test"]);
    let content = muting(
        &v11_room(json!({})),
        &BTreeMap::new(),
        &muted,
        &muted,
        &bot(),
        &no_creators(),
    )
    .content
    .unwrap();
    assert_eq!(content["users"]["@visitor:server.test"], -1);
    let unmuted = reconcile(&content, &BTreeMap::new(), &muted, &bot(), &no_creators());
    assert_eq!(unmuted.content.unwrap()["users"], json!({ BOT: 100 }));
}

#[test]
fn muting_a_user_at_the_bots_level_or_a_creator_is_reported_unmutable() {
    let current = v11_room(json!({"@host:server.test": 100}));
    let desired = levels(&[("@host:server.test", 100)]);
    let muted = users(&["@host:server.test"]);
    let result = muting(&current, &desired, &muted, &muted, &bot(), &no_creators());
    assert_eq!(result.unmutable, vec![user("@host:server.test")]);
    assert_eq!(result.content, None);

    let creators = users(&[BOT, "@creator:server.test"]);
    let muted = users(&["@creator:server.test"]);
    let result = muting(
        &json!({}),
        &BTreeMap::new(),
        &muted,
        &muted,
        &bot(),
        &creators,
    );
    assert_eq!(result.unmutable, vec![user("@creator:server.test")]);
}

#[test]
fn staff_levels_join_the_members_and_the_higher_wins() {
    let members = levels(&[("@host:s.t", 100), ("@guest:s.t", 0), ("@speaker:s.t", 25)]);
    let staff = levels(&[("@host:s.t", 50), ("@guest:s.t", 50), ("@admin:s.t", 75)]);
    assert_eq!(
        with_staff(&members, &staff),
        levels(&[
            ("@host:s.t", 100),
            ("@guest:s.t", 50),
            ("@speaker:s.t", 25),
            ("@admin:s.t", 75)
        ])
    );
}

#[test]
fn a_muted_staff_member_is_below_sending_all_the_same() {
    let desired = with_staff(&levels(&[]), &levels(&[("@mod:s.t", 50)]));
    let owned = users(&["@mod:s.t"]);
    let result = muting(
        &v11_room(json!({})),
        &desired,
        &users(&["@mod:s.t"]),
        &owned,
        &bot(),
        &no_creators(),
    );
    assert_eq!(
        user_level(&result.content.unwrap(), &user("@mod:s.t")),
        Some(-1)
    );
}

#[test]
fn a_removed_staff_member_loses_the_entry_the_daemon_owned() {
    let result = reconcile(
        &v11_room(json!({"@mod:s.t": 50, "@other:s.t": 50})),
        &levels(&[]),
        &users(&["@mod:s.t"]),
        &bot(),
        &no_creators(),
    );
    let content = result.content.unwrap();
    assert_eq!(user_level(&content, &user("@mod:s.t")), None);
    assert_eq!(user_level(&content, &user("@other:s.t")), Some(50));
}
