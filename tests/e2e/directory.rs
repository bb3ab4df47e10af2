//! Who sees and joins a room (DESIGN §7.5), on a Synapse left at its defaults (it lets no one
//! publish in its server-wide directory): each tenant's public rooms are in its own directory,
//! the `openmeet` protocol's network for that tenant; unlisted rooms are in none; a private event
//! open to its group admits the group's members.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{SERVER_NAME, environment, fresh_config, port_turn, ready_daemon_with};
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::matrix_client::{TestUser, encode, register_user, request};

fn hs() -> &'static str {
    environment().synapse.url.as_str()
}

fn user(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

/// The `third_party_instance_id` Synapse gives `tenant`'s directory, from `GET
/// /thirdparty/protocols` as a client reads it; asserts the protocol offers every tenant once.
async fn instance_of(viewer: &TestUser, tenant: &str) -> String {
    let protocols = viewer.protocols(hs()).await;
    let instances = protocols["openmeet"]["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("no openmeet protocol: {protocols}"));
    let networks: Vec<&str> = instances
        .iter()
        .filter_map(|instance| instance["network_id"].as_str())
        .collect();
    assert_eq!(networks, ["tenantA", "ciTenantB"], "{protocols}");
    let instance = instances
        .iter()
        .find(|instance| instance["network_id"] == tenant)
        .unwrap();
    instance["instance_id"]
        .as_str()
        .unwrap_or_else(|| panic!("Synapse added no instance_id: {instance}"))
        .to_owned()
}

/// Waits until `instance`'s directory does (or does not) list `room_id`.
async fn wait_listed(viewer: &TestUser, instance: Option<&str>, room_id: &str, listed: bool) {
    let what = format!("{room_id} listed={listed} in {instance:?}");
    eventually(&what, Duration::from_secs(15), || async {
        let rooms = viewer.public_rooms(hs(), instance).await;
        (rooms.iter().any(|r| r == room_id) == listed).then_some(())
    })
    .await;
}

/// `GET /directory/list/room/{roomId}`: the server-wide directory's `public` or `private`.
async fn server_wide(viewer: &TestUser, room_id: &str) -> String {
    let path = format!("/_matrix/client/v3/directory/list/room/{}", encode(room_id));
    let (status, answer) = viewer.request(hs(), Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["visibility"].as_str().unwrap().to_owned()
}

async fn join_status(viewer: &TestUser, room_id: &str) -> (StatusCode, Value) {
    let path = format!("/_matrix/client/v3/join/{}", encode(room_id));
    viewer
        .request(hs(), Method::POST, &path, Some(json!({})))
        .await
}

fn room_id(job: &Value) -> String {
    job["result"]["room_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_lists_its_public_rooms_in_its_own_directory_and_nowhere_else() {
    let _turn = port_turn().await;
    let daemon = ready_daemon_with(fresh_config()).await;
    let browser = register_user(hs(), "directory-browser").await;
    let body = |name: &str, visibility: &str| json!({"name": name, "visibility": visibility});
    let a = room_id(
        &daemon
            .declare("tenantA", "event", "dir-a", body("A Chat", "public"))
            .await,
    );
    let b = room_id(
        &daemon
            .declare("ciTenantB", "group", "dir-b", body("B Chat", "public"))
            .await,
    );
    let unlisted = room_id(
        &daemon
            .declare(
                "tenantA",
                "event",
                "dir-unlisted",
                body("Link Chat", "unlisted"),
            )
            .await,
    );

    // One network per tenant, each listing that tenant's public rooms only.
    let (instance_a, instance_b) = (
        instance_of(&browser, "tenantA").await,
        instance_of(&browser, "ciTenantB").await,
    );
    let listed_a = browser.public_rooms(hs(), Some(&instance_a)).await;
    assert!(listed_a.contains(&a), "{listed_a:?}");
    assert!(
        !listed_a.contains(&b) && !listed_a.contains(&unlisted),
        "{listed_a:?}"
    );
    let listed_b = browser.public_rooms(hs(), Some(&instance_b)).await;
    assert!(listed_b.contains(&b), "{listed_b:?}");
    assert!(!listed_b.contains(&a), "{listed_b:?}");
    // The server-wide directory, which every tenant's users browse, has none of them.
    let server = browser.public_rooms(hs(), None).await;
    for room in [&a, &b, &unlisted] {
        assert!(!server.contains(room), "{room} is server-wide: {server:?}");
        assert_eq!(server_wide(&browser, room).await, "private");
    }
    // A public room missing from its tenant's directory (an earlier release listed none) is put
    // there by `rooms reconcile`, as by any convergence.
    let path = format!(
        "/_matrix/client/v3/directory/list/appservice/ciTenantB/{}",
        encode(&b)
    );
    let as_token = daemon.config.tokens.as_token.clone();
    let unlist = json!({"visibility": "private"});
    let (status, answer) = request(hs(), Some(&as_token), Method::PUT, &path, Some(unlist)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    wait_listed(&browser, Some(&instance_b), &b, false).await;
    let (code, out, stderr) =
        daemon
            .config
            .cli(&["rooms", "reconcile", "--all", "--tenant", "ciTenantB"]);
    assert_eq!(code, 0, "{out}{stderr}");
    wait_listed(&browser, Some(&instance_b), &b, true).await;

    // An unlisted room is public to join by its id.
    let (status, answer) = join_status(&browser, &unlisted).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let room = daemon.get_room("tenantA", "event", "dir-unlisted").await;
    assert_eq!(room["visibility"], "unlisted", "{room}");
    assert_eq!(room["directory_note"], Value::Null, "{room}");

    // Public made unlisted leaves the list; public again comes back; deleted leaves for good.
    daemon
        .declare("tenantA", "event", "dir-a", body("A Chat", "unlisted"))
        .await;
    wait_listed(&browser, Some(&instance_a), &a, false).await;
    let join_rule = browser
        .state_event(hs(), &unlisted, "m.room.join_rules", "")
        .await;
    assert_eq!(join_rule.unwrap()["join_rule"], "public");
    daemon
        .declare("tenantA", "event", "dir-a", body("A Chat", "public"))
        .await;
    wait_listed(&browser, Some(&instance_a), &a, true).await;
    let teardown = daemon.delete_room("tenantA", "event", "dir-a").await;
    let token = daemon.config.tenant_token("tenantA");
    let job = daemon.wait_for_job(teardown, &token).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    wait_listed(&browser, Some(&instance_a), &a, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_server_wide_listing_is_a_warning_and_a_note_never_a_failed_job() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    config.server_directory = vec!["tenantA".into()];
    let daemon = ready_daemon_with(config).await;
    let viewer = register_user(hs(), "refusal-viewer").await;
    let body = |name: &str| json!({"name": name, "visibility": "public"});
    let job = daemon
        .declare("tenantA", "event", "refused", body("Refused Chat"))
        .await;
    let room_id = room_id(&job);
    let room = daemon.get_room("tenantA", "event", "refused").await;
    let note = room["directory_note"].as_str().unwrap_or_default();
    assert!(note.contains("Not allowed to publish room"), "{room}");
    assert!(note.contains("room_list_publication_rules"), "{room}");
    assert_eq!(room["status"], "ready", "{room}");
    assert_eq!(
        daemon
            .metric("openmeet_as_directory_refusals_total", "tenant=\"tenantA\"")
            .await,
        1.0
    );
    // Still in the tenant's own directory; and later convergences go on as well.
    let instance = instance_of(&viewer, "tenantA").await;
    wait_listed(&viewer, Some(&instance), &room_id, true).await;
    viewer.join(hs(), &room_id).await;
    daemon
        .declare("tenantA", "event", "refused", body("Renamed Chat"))
        .await;
    let name = viewer.state_event(hs(), &room_id, "m.room.name", "").await;
    assert_eq!(name.unwrap()["name"], "Renamed Chat");
    assert!(
        daemon.logs().contains("refused to list the room"),
        "the refusal is logged as a warning"
    );
}

/// Declares `slug` of `tenantA` and returns the job's room id.
async fn declared_room(daemon: &Daemon, kind: &str, slug: &str, body: Value) -> String {
    room_id(&daemon.declare("tenantA", kind, slug, body).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_event_open_to_its_group_admits_the_groups_members_and_follows_the_group() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    // Room version 10: the owner may upgrade the group room and the bot follows without being
    // named among the new room's creators.
    config.room_version = Some("10".into());
    let daemon = ready_daemon_with(config).await;
    let owner = register_user(hs(), "open-owner").await;
    let groupie = register_user(hs(), "open-groupie").await;
    let attendee = register_user(hs(), "open-attendee").await;
    let stranger = register_user(hs(), "open-stranger").await;
    let token = daemon.config.tenant_token("tenantA");
    let path = "/v1/tenants/tenantA/rooms/event/open-meetup";
    let put = |body: Value| {
        let daemon = &daemon;
        let token = token.clone();
        async move {
            daemon
                .platform(Method::PUT, path, Some(&token), Some(body))
                .await
        }
    };

    // The group must be declared first, and only a private room is open to it.
    let unknown = json!({"name": "Meetup", "visibility": "private",
        "open_to": {"kind": "group", "slug": "open-club"}});
    let (status, answer) = put(unknown.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("open_to.slug"),
        "{answer}"
    );
    let group = declared_room(
        &daemon,
        "group",
        "open-club",
        json!({"name": "Club", "visibility": "public", "members": [
            {"user_id": user("open-owner"), "role": "owner"},
            {"user_id": user("open-groupie"), "role": "member"}]}),
    )
    .await;
    owner.join(hs(), &group).await;
    groupie.join(hs(), &group).await;
    let public = json!({"name": "Meetup", "visibility": "public",
        "open_to": {"kind": "group", "slug": "open-club"}});
    let (status, answer) = put(public).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("private"),
        "{answer}"
    );

    let event = declared_room(
        &daemon,
        "event",
        "open-meetup",
        json!({"name": "Meetup", "visibility": "private",
               "open_to": {"kind": "group", "slug": "open-club"},
               "members": [{"user_id": user("open-attendee"), "role": "participant"}]}),
    )
    .await;
    let room = daemon.get_room("tenantA", "event", "open-meetup").await;
    assert_eq!(
        room["open_to"],
        json!({"kind": "group", "slug": "open-club"}),
        "{room}"
    );
    // The attendee is invited; a member of the group joins without an invite; a stranger cannot.
    let memberships = environment().synapse.current_memberships(&event);
    assert!(
        memberships.contains(&(user("open-attendee"), "invite".into())),
        "{memberships:?}"
    );
    let (status, answer) = join_status(&stranger, &event).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = join_status(&groupie, &event).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    attendee.join(hs(), &event).await;
    let allowed = |rules: Option<Value>| {
        let rules = rules.unwrap_or(Value::Null);
        (
            rules["join_rule"].clone(),
            rules["allow"][0]["room_id"].clone(),
        )
    };
    let rules = groupie
        .state_event(hs(), &event, "m.room.join_rules", "")
        .await;
    assert_eq!(allowed(rules), (json!("restricted"), json!(group)));

    // The group room upgraded: the event follows the group's new room.
    let new_group = owner.upgrade_room(hs(), &group, "10").await;
    eventually(
        "the event to allow the new group room",
        Duration::from_secs(30),
        || async {
            let rules = groupie
                .state_event(hs(), &event, "m.room.join_rules", "")
                .await;
            (allowed(rules) == (json!("restricted"), json!(new_group))).then_some(())
        },
    )
    .await;

    // The group room deleted: invite only.
    daemon.delete_room("tenantA", "group", "open-club").await;
    eventually(
        "the event to be invite only",
        Duration::from_secs(30),
        || async {
            let rules = attendee
                .state_event(hs(), &event, "m.room.join_rules", "")
                .await;
            (rules.unwrap_or(Value::Null)["join_rule"] == "invite").then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_open_to_a_group_not_made_yet_waits_for_the_group_room() {
    let _turn = port_turn().await;
    let mut config = fresh_config();
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    let mut daemon = ready_daemon_with(config).await;
    let attendee = register_user(hs(), "wait-attendee").await;
    let group_job = daemon
        .put_room(
            "tenantA",
            "group",
            "wait-club",
            json!({"name": "Club", "visibility": "public"}),
        )
        .await;
    let event_job = daemon
        .put_room(
            "tenantA",
            "event",
            "wait-meetup",
            json!({"name": "Meetup", "visibility": "private",
                   "open_to": {"kind": "group", "slug": "wait-club"},
                   "members": [{"user_id": user("wait-attendee"), "role": "participant"}]}),
        )
        .await;
    // The group's own job never runs: only the event's job can make the group room.
    let (code, _, stderr) = daemon
        .config
        .cli(&["jobs", "cancel", &group_job.to_string()]);
    assert_eq!(code, 0, "{stderr}");
    daemon.stop();
    daemon.config.extra_yaml = String::new();
    daemon.restart().await;
    let token = daemon.config.tenant_token("tenantA");
    let job = daemon.wait_for_job(event_job, &token).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", daemon.logs());
    let group = daemon.get_room("tenantA", "group", "wait-club").await;
    let group_room = group["room_id"].as_str().expect("the group room was made");
    let event = room_id(&job);
    attendee.join(hs(), &event).await;
    let rules = attendee
        .state_event(hs(), &event, "m.room.join_rules", "")
        .await;
    let rules = rules.unwrap_or(Value::Null);
    assert_eq!(rules["join_rule"], "restricted", "{rules}");
    assert_eq!(rules["allow"][0]["room_id"], group_room, "{rules}");
}
