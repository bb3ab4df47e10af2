//! Rooms declared through the platform API, made real by the tenants' bots in the real Synapse.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::environment::{
    SERVER_NAME, bot_id, environment, fresh_config, port_turn, ready_daemon_with,
};
use crate::support::daemon::Daemon;
use crate::support::matrix_client::{TestUser, encode, register_user};

fn user(localpart: &str) -> String {
    format!("@{localpart}:{SERVER_NAME}")
}

/// `PUT` a room as `tenant` and wait for its job; returns the job.
pub(crate) async fn declare(
    daemon: &Daemon,
    tenant: &str,
    kind: &str,
    slug: &str,
    body: Value,
) -> Value {
    daemon.declare(tenant, kind, slug, body).await
}

/// A state event's content as `viewer` sees it.
async fn state(viewer: &TestUser, room_id: &str, event_type: &str) -> Value {
    let hs = environment().synapse.url.as_str();
    viewer
        .state_event(hs, room_id, event_type, "")
        .await
        .unwrap_or_else(|| panic!("no {event_type} in {room_id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_event_room_exists_with_the_declared_settings_and_members() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let alice = register_user(hs, "rooms-host").await;
    register_user(hs, "rooms-moderator").await;
    register_user(hs, "rooms-participant").await;
    let body = json!({
        "name": "Summer Party Chat",
        "topic": "Chat room for Summer Party",
        "visibility": "private",
        "members": [
            {"user_id": user("rooms-host"), "role": "host"},
            {"user_id": user("rooms-moderator"), "role": "moderator"},
            {"user_id": user("rooms-participant"), "role": "participant"},
        ],
    });
    let job = declare(&daemon, "tenantA", "event", "summer-party", body.clone()).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    let alias = format!("#event-summer-party-tenantA:{SERVER_NAME}");
    assert_eq!(job["result"]["alias"], alias);

    // The alias resolves to the room, and the host, invited, can join it.
    let (status, resolved) = alice.resolve_alias(hs, &alias).await;
    assert_eq!(
        (status, resolved["room_id"].as_str()),
        (StatusCode::OK, Some(room_id.as_str()))
    );
    alice.join(hs, &room_id).await;

    let bot = bot_id("tenantA");
    assert_eq!(
        state(&alice, &room_id, "m.room.name").await["name"],
        "Summer Party Chat"
    );
    assert_eq!(
        state(&alice, &room_id, "m.room.topic").await["topic"],
        "Chat room for Summer Party"
    );
    assert_eq!(
        state(&alice, &room_id, "m.room.join_rules").await["join_rule"],
        "invite"
    );
    assert_eq!(
        state(&alice, &room_id, "m.room.history_visibility").await["history_visibility"],
        "shared"
    );
    assert_eq!(
        state(&alice, &room_id, "m.room.guest_access").await["guest_access"],
        "forbidden"
    );
    let create = alice
        .room_state(hs, &room_id)
        .await
        .into_iter()
        .find(|e| e["type"] == "m.room.create")
        .unwrap();
    assert_eq!(
        create["sender"],
        bot.as_str(),
        "the room was not created by the tenant's bot"
    );
    assert_eq!(
        create["content"]["room_version"], "12",
        "Synapse 1.163 creates v12 rooms by default"
    );

    let levels = state(&alice, &room_id, "m.room.power_levels").await;
    assert_eq!(levels["users"][user("rooms-host")], 100);
    assert_eq!(levels["users"][user("rooms-moderator")], 50);
    assert!(
        levels["users"].get(user("rooms-participant")).is_none(),
        "participants keep the default level: {levels}"
    );
    assert!(
        levels["users"].get(&bot).is_none(),
        "a v12 creator must not be listed: {levels}"
    );
    for action in ["redact", "kick", "ban", "state_default"] {
        assert_eq!(levels[action], 50, "{action}: {levels}");
    }
    let members: Vec<(String, String)> = alice.members(hs, &room_id).await;
    let membership = |who: &str| {
        members
            .iter()
            .find(|(u, _)| u == who)
            .map(|(_, m)| m.clone())
    };
    assert_eq!(
        membership(&user("rooms-moderator")).as_deref(),
        Some("invite")
    );
    assert_eq!(
        membership(&user("rooms-participant")).as_deref(),
        Some("invite")
    );
    assert_eq!(membership(&bot).as_deref(), Some("join"));

    // The platform's view: ready, with the applied levels.
    let token = daemon.config.tenant_token("tenantA");
    let (status, room) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/rooms/event/summer-party",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (room["status"].as_str(), room["room_id"].as_str()),
        (Some("ready"), Some(room_id.as_str()))
    );
    let host = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user("rooms-host").as_str())
        .unwrap();
    assert_eq!(
        (host["role"].as_str(), host["power_level"].as_i64()),
        (Some("host"), Some(100))
    );

    // The same declaration again changes nothing: same job, same room.
    let (status, again) = daemon
        .platform(
            Method::PUT,
            "/v1/tenants/tenantA/rooms/event/summer-party",
            Some(&token),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        again["job"]["id"], job["id"],
        "a repeated PUT queued a second job"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_10_rooms_list_the_bot_at_100_and_map_group_roles() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config.room_version = Some("10".into());
    let daemon = ready_daemon_with(config).await;
    let owner = register_user(hs, "v10-owner").await;
    register_user(hs, "v10-admin").await;
    let body = json!({
        "name": "Hikers Chat",
        "visibility": "public",
        "members": [
            {"user_id": user("v10-owner"), "role": "owner"},
            {"user_id": user("v10-admin"), "role": "admin"},
        ],
    });
    let job = declare(&daemon, "ciTenantB", "group", "hikers", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    assert_eq!(
        job["result"]["alias"],
        format!("#group-hikers-ciTenantB:{SERVER_NAME}")
    );
    owner.join(hs, &room_id).await;
    let create = owner
        .room_state(hs, &room_id)
        .await
        .into_iter()
        .find(|e| e["type"] == "m.room.create")
        .unwrap();
    assert_eq!(create["content"]["room_version"], "10");
    assert_eq!(
        create["sender"],
        bot_id("ciTenantB").as_str(),
        "tenant B's room was not created by its own bot"
    );
    let levels = state(&owner, &room_id, "m.room.power_levels").await;
    assert_eq!(levels["users"][bot_id("ciTenantB")], 100, "{levels}");
    assert_eq!(levels["users"][user("v10-owner")], 100);
    assert_eq!(levels["users"][user("v10-admin")], 75);
    assert_eq!(
        state(&owner, &room_id, "m.room.join_rules").await["join_rule"],
        "public"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_reaches_only_its_own_tenant_and_bad_input_names_the_field() {
    let _turn = port_turn().await;
    let daemon = ready_daemon_with(fresh_config()).await;
    let (a, b) = (
        daemon.config.tenant_token("tenantA"),
        daemon.config.tenant_token("ciTenantB"),
    );
    let room = json!({"name": "Secret Chat", "visibility": "private"});
    let path = "/v1/tenants/tenantA/rooms/event/secret";
    let (status, answer) = daemon
        .platform(Method::PUT, path, Some(&a), Some(room.clone()))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job_id = answer["job"]["id"].as_i64().unwrap();

    /// A request that must be refused, and how.
    struct Refused<'a> {
        method: Method,
        path: String,
        token: Option<&'a str>,
        body: Option<Value>,
        status: StatusCode,
        code: &'a str,
    }
    let refused = |method, path: &str, token: Option<&'static str>, body, status, code| Refused {
        method,
        path: path.to_owned(),
        token,
        body,
        status,
        code,
    };
    let job_path = format!("/v1/jobs/{job_id}");
    let (a_token, b_token): (&'static str, &'static str) = (a.clone().leak(), b.clone().leak());
    let cases = [
        refused(
            Method::GET,
            path,
            Some(b_token),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        refused(
            Method::PUT,
            path,
            Some(b_token),
            Some(room.clone()),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        refused(
            Method::GET,
            &job_path,
            Some(b_token),
            None,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        refused(
            Method::GET,
            path,
            None,
            None,
            StatusCode::UNAUTHORIZED,
            "missing_token",
        ),
        refused(
            Method::GET,
            path,
            Some("not-a-token-of-anyone"),
            None,
            StatusCode::UNAUTHORIZED,
            "unknown_token",
        ),
        refused(
            Method::GET,
            "/v1/tenants/nosuch/rooms/event/secret",
            Some(a_token),
            None,
            StatusCode::NOT_FOUND,
            "unknown_tenant",
        ),
        refused(
            Method::GET,
            "/v1/tenants/tenantA/rooms/event/never-declared",
            Some(a_token),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for Refused {
        method,
        path,
        token,
        body,
        status,
        code,
    } in cases
    {
        let (got, answer) = daemon.platform(method.clone(), &path, token, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {answer}"
        );
        assert!(
            !answer["error"].as_str().unwrap().contains(&a),
            "a token was echoed"
        );
    }

    let invalid: Vec<(&str, Value, &str)> = vec![
        ("/v1/tenants/tenantA/rooms/meeting/x", room.clone(), "kind"),
        (
            "/v1/tenants/tenantA/rooms/event/bad%20slug",
            room.clone(),
            "slug",
        ),
        (path, json!({"visibility": "private"}), "name"),
        (
            path,
            json!({"name": "x", "visibility": "secret"}),
            "visibility",
        ),
        (
            path,
            json!({"name": "x", "visibility": "private", "members": [{"user_id": "@bob:elsewhere.org", "role": "host"}]}),
            "user_id",
        ),
        (
            "/v1/tenants/tenantA/rooms/group/g",
            json!({"name": "x", "visibility": "private", "members": [{"user_id": user("bob"), "role": "guest"}]}),
            "role",
        ),
        (
            path,
            json!({"name": "x", "visibility": "private", "members": [{"user_id": user("bob"), "role": "emperor"}]}),
            "role",
        ),
    ];
    for (path, body, field) in invalid {
        let (status, answer) = daemon
            .platform(Method::PUT, path, Some(&a), Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{path} {body}: the error does not name {field}: {answer}"
        );
    }
    let _ = daemon.wait_for_job(job_id, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_invited_promoted_demoted_and_removed() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let viewer = register_user(hs, "members-host").await;
    register_user(hs, "members-dave").await;
    let room_path = "/v1/tenants/tenantA/rooms/event/members-flow";
    let body = json!({"name": "Members Chat", "visibility": "private", "members": [{"user_id": user("members-host"), "role": "host"}]});
    let (status, _) = daemon
        .platform(Method::PUT, room_path, Some(&token), Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Added before the room exists in Synapse: invited when it is created.
    let dave = user("members-dave");
    let member_path = format!("{room_path}/members/{}", encode(&dave));
    let set_role = |role: &'static str| {
        let (daemon, token, member_path) = (&daemon, token.clone(), member_path.clone());
        async move {
            let (status, answer) = daemon
                .platform(
                    Method::PUT,
                    &member_path,
                    Some(&token),
                    Some(json!({"role": role})),
                )
                .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
            let job = daemon
                .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
                .await;
            assert_eq!(job["status"], "succeeded", "{job}");
            job
        }
    };
    let job = set_role("moderator").await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    viewer.join(hs, &room_id).await;
    let level = |levels: &Value| levels["users"].get(&dave).and_then(Value::as_i64);
    let membership = |members: Vec<(String, String)>| {
        members
            .into_iter()
            .find(|(u, _)| *u == dave)
            .map(|(_, m)| m)
    };
    assert_eq!(
        level(&state(&viewer, &room_id, "m.room.power_levels").await),
        Some(50)
    );
    assert_eq!(
        membership(viewer.members(hs, &room_id).await).as_deref(),
        Some("invite")
    );

    set_role("host").await;
    assert_eq!(
        level(&state(&viewer, &room_id, "m.room.power_levels").await),
        Some(100),
        "promotion"
    );
    set_role("participant").await;
    assert_eq!(
        level(&state(&viewer, &room_id, "m.room.power_levels").await),
        None,
        "demotion to the default level drops the entry"
    );

    let (status, answer) = daemon
        .platform(
            Method::DELETE,
            &member_path,
            Some(&token),
            Some(json!({"reason": "Left the event"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        membership(viewer.members(hs, &room_id).await).as_deref(),
        Some("leave"),
        "the invite was not revoked"
    );
    let kicked = viewer
        .room_state(hs, &room_id)
        .await
        .into_iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == dave.as_str())
        .unwrap();
    assert_eq!(kicked["content"]["reason"], "Left the event");
    assert_eq!(
        level(&state(&viewer, &room_id, "m.room.power_levels").await),
        None
    );

    // Removing someone who is not a member succeeds.
    let stranger = format!("{room_path}/members/{}", encode(&user("members-nobody")));
    let (status, answer) = daemon
        .platform(Method::DELETE, &stranger, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, room) = daemon
        .platform(Method::GET, room_path, Some(&token), None)
        .await;
    let listed: Vec<&str> = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [user("members-host")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_the_alias_of_a_declared_room_creates_it_once() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    // No job worker in this daemon: only the alias query can create the room.
    let mut config = fresh_config();
    config.extra_yaml = "jobs:\n  enabled: false\n".into();
    let daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    let body = json!({"name": "JIT Chat", "visibility": "public"});
    let (status, _) = daemon
        .platform(
            Method::PUT,
            "/v1/tenants/tenantA/rooms/event/jit-party",
            Some(&token),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let alias = format!("#event-jit-party-tenantA:{SERVER_NAME}");
    let visitor = register_user(hs, "jit-visitor").await;

    // Five lookups at once: one room.
    let lookups: Vec<_> = (0..5)
        .map(|_| {
            let (visitor, hs, path) = (
                visitor.clone(),
                hs.to_owned(),
                format!("/_matrix/client/v3/directory/room/{}", encode(&alias)),
            );
            tokio::spawn(async move { visitor.request(&hs, Method::GET, &path, None).await })
        })
        .collect();
    let mut rooms = Vec::new();
    for lookup in lookups {
        let (status, answer) = lookup.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
        rooms.push(answer["room_id"].as_str().unwrap().to_owned());
    }
    rooms.dedup();
    assert_eq!(
        rooms.len(),
        1,
        "concurrent lookups made several rooms: {rooms:?}"
    );

    let joined = visitor.join(hs, &alias).await;
    assert_eq!(joined, rooms[0]);
    let (_, room) = daemon
        .platform(
            Method::GET,
            "/v1/tenants/tenantA/rooms/event/jit-party",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(room["room_id"], rooms[0].as_str());

    // An alias nobody declared is not found.
    let undeclared = format!(
        "/_matrix/client/v3/directory/room/{}",
        encode(&format!("#event-never-declared-tenantA:{SERVER_NAME}"))
    );
    let (status, answer) = visitor.request(hs, Method::GET, &undeclared, None).await;
    assert_eq!(
        (status, answer["errcode"].as_str()),
        (StatusCode::NOT_FOUND, Some("M_NOT_FOUND"))
    );
}

/// Members still in (joined or invited), per Synapse's own database.
fn still_in(room_id: &str) -> Vec<String> {
    environment()
        .synapse
        .current_memberships(room_id)
        .into_iter()
        .filter(|(_, membership)| membership == "join" || membership == "invite")
        .map(|(user, _)| user)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_kicks_everyone_removes_the_alias_and_survives_a_crash() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let mut members = Vec::new();
    let mut people = Vec::new();
    for i in 0..20 {
        let localpart = format!("teardown-{i:02}");
        people.push(register_user(hs, &localpart).await);
        members.push(json!({"user_id": user(&localpart), "role": if i == 0 { "host" } else { "participant" }}));
    }
    let body = json!({"name": "Farewell Chat", "visibility": "private", "members": members});
    let job = declare(&daemon, "tenantA", "event", "farewell", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    for person in &people[..8] {
        person.join(hs, &room_id).await;
    }
    assert_eq!(still_in(&room_id).len(), 21, "20 members and the bot");

    // Delete, and crash the daemon while it is kicking.
    let path = "/v1/tenants/tenantA/rooms/event/farewell";
    let (status, answer) = daemon
        .platform(Method::DELETE, path, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let teardown = answer["job"]["id"].as_i64().unwrap();
    crate::support::eventually(
        "the teardown to start kicking",
        std::time::Duration::from_secs(30),
        || async { (still_in(&room_id).len() < 18).then_some(()) },
    )
    .await;
    daemon.kill();
    assert!(
        !still_in(&room_id).is_empty(),
        "the teardown finished before the crash; the test proves nothing"
    );
    daemon.restart().await;

    let done = daemon.wait_for_job(teardown, &token).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", daemon.logs());
    assert_eq!(
        still_in(&room_id),
        Vec::<String>::new(),
        "someone is still in the room"
    );
    let alias = format!("#event-farewell-tenantA:{SERVER_NAME}");
    let (status, _) = people[0].resolve_alias(hs, &alias).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the alias still resolves");
    let kicked = environment().synapse.current_memberships(&room_id);
    assert!(
        kicked
            .iter()
            .any(|(u, m)| *u == user("teardown-00") && m == "leave")
    );

    // One teardown job, not two; GET says deleted; a repeated DELETE answers with it.
    let (_, room) = daemon.platform(Method::GET, path, Some(&token), None).await;
    assert_eq!(room["status"], "deleted");
    let (status, again) = daemon
        .platform(Method::DELETE, path, Some(&token), None)
        .await;
    assert_eq!(
        (status, again["job"]["id"].as_i64()),
        (StatusCode::ACCEPTED, Some(teardown))
    );
    let (code, jobs, stderr) = daemon
        .config
        .cli(&["jobs", "list", "--kind", "teardown_room"]);
    assert_eq!(code, 0, "{stderr}");
    let jobs: Vec<Value> = jobs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(jobs.len(), 1, "a second teardown job was queued: {jobs:?}");
    assert_eq!(
        jobs[0]["attempts"], 2,
        "the crash must cost exactly one more attempt: {jobs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_room_answers_to_both_aliases_and_stays_one_room() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let job = declare(
        &daemon,
        "tenantA",
        "event",
        "old-name",
        json!({"name": "Renamed Chat", "visibility": "public"}),
    )
    .await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    declare(
        &daemon,
        "tenantA",
        "event",
        "neighbour",
        json!({"name": "Other Chat", "visibility": "public"}),
    )
    .await;

    let rename = "/v1/tenants/tenantA/rooms/event/old-name/rename";
    let (status, answer) = daemon
        .platform(
            Method::POST,
            rename,
            Some(&token),
            Some(json!({"new_slug": "new-name"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let renamed = daemon
        .wait_for_job(answer["job"]["id"].as_i64().unwrap(), &token)
        .await;
    assert_eq!(renamed["status"], "succeeded", "{renamed}");

    let visitor = register_user(hs, "rename-visitor").await;
    let (old, new) = (
        format!("#event-old-name-tenantA:{SERVER_NAME}"),
        format!("#event-new-name-tenantA:{SERVER_NAME}"),
    );
    for alias in [&old, &new] {
        let (status, resolved) = visitor.resolve_alias(hs, alias).await;
        assert_eq!(
            (status, resolved["room_id"].as_str()),
            (StatusCode::OK, Some(room_id.as_str())),
            "{alias}"
        );
    }
    visitor.join(hs, &new).await;
    let canonical = state(&visitor, &room_id, "m.room.canonical_alias").await;
    assert_eq!(canonical, json!({"alias": new, "alt_aliases": [old]}));

    // The same rename again queues nothing; either slug finds the room; a neighbour's slug is taken.
    let (_, again) = daemon
        .platform(
            Method::POST,
            "/v1/tenants/tenantA/rooms/event/new-name/rename",
            Some(&token),
            Some(json!({"new_slug": "new-name"})),
        )
        .await;
    assert_eq!(again["job"]["id"], renamed["id"]);
    for slug in ["old-name", "new-name"] {
        let (_, room) = daemon
            .platform(
                Method::GET,
                &format!("/v1/tenants/tenantA/rooms/event/{slug}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            (room["room_id"].as_str(), room["slug"].as_str()),
            (Some(room_id.as_str()), Some("new-name"))
        );
    }
    let (status, answer) = daemon
        .platform(
            Method::POST,
            "/v1/tenants/tenantA/rooms/event/new-name/rename",
            Some(&token),
            Some(json!({"new_slug": "neighbour"})),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_one_postgres_queue_and_run_every_job_once() {
    let _turn = port_turn().await;
    let database = crate::support::postgres::fresh_database("e2e_shared_queue");
    let mut first = fresh_config();
    first.database_url = database.clone();
    // The second daemon is not the one Synapse pushes to: another appservice port, same queue.
    let mut second = fresh_config();
    second.database_url = database.clone();
    second.appservice_port = crate::support::python::free_port();
    second.platform_port = crate::support::python::free_port();
    second.metrics_port = crate::support::python::free_port();
    let first = ready_daemon_with(first).await;
    let second = crate::support::daemon::Daemon::start(second).await;
    let token = first.config.tenant_token("tenantA");
    let mut queued = Vec::new();
    for i in 0..6 {
        let daemon = if i % 2 == 0 { &first } else { &second };
        let body = json!({"name": format!("Shared {i}"), "visibility": "private"});
        let (status, answer) = daemon
            .platform(
                Method::PUT,
                &format!("/v1/tenants/tenantA/rooms/group/shared-{i}"),
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        queued.push(answer["job"]["id"].as_i64().unwrap());
        let member = format!(
            "/v1/tenants/tenantA/rooms/group/shared-{i}/members/{}",
            encode(&user(&format!("shared-{i}")))
        );
        let (status, answer) = daemon
            .platform(
                Method::PUT,
                &member,
                Some(&token),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        queued.push(answer["job"]["id"].as_i64().unwrap());
    }
    for id in &queued {
        let job = first.wait_for_job(*id, &token).await;
        assert_eq!(
            (job["status"].as_str(), job["attempts"].as_i64()),
            (Some("succeeded"), Some(1)),
            "{job}"
        );
    }
    let ran_first = first
        .metric(
            "openmeet_as_jobs_total",
            r#"kind="ensure_room",outcome="succeeded""#,
        )
        .await;
    let ran_second = second
        .metric(
            "openmeet_as_jobs_total",
            r#"kind="ensure_room",outcome="succeeded""#,
        )
        .await;
    assert_eq!(
        ran_first + ran_second,
        queued.len() as f64,
        "a job ran twice or not at all"
    );
    // Each room's second job found the room its first job created: one room per declaration.
    for i in 0..6 {
        let (_, room) = first
            .platform(
                Method::GET,
                &format!("/v1/tenants/tenantA/rooms/group/shared-{i}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(room["status"], "ready", "{room}");
        let admin = &room["members"][0];
        assert_eq!(
            (admin["role"].as_str(), admin["power_level"].as_i64()),
            (Some("admin"), Some(75)),
            "{room}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_level_changed_by_someone_else_is_put_back() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let host = register_user(hs, "repair-host").await;
    register_user(hs, "repair-moderator").await;
    let body = json!({"name": "Repair Chat", "visibility": "public", "members": [
        {"user_id": user("repair-host"), "role": "host"},
        {"user_id": user("repair-moderator"), "role": "moderator"},
    ]});
    let job = declare(&daemon, "tenantA", "event", "repair", body).await;
    let room_id = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &room_id).await;

    // The host, who may, lowers the moderator to 0 by hand.
    let mut levels = state(&host, &room_id, "m.room.power_levels").await;
    levels["users"][user("repair-moderator")] = json!(0);
    let path = format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.power_levels/",
        encode(&room_id)
    );
    let (status, answer) = host.request(hs, Method::PUT, &path, Some(levels)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    crate::support::eventually(
        "the declared level to be put back",
        std::time::Duration::from_secs(30),
        || async {
            let levels = state(&host, &room_id, "m.room.power_levels").await;
            (levels["users"][user("repair-moderator")] == 50).then_some(())
        },
    )
    .await;
    let levels = state(&host, &room_id, "m.room.power_levels").await;
    assert_eq!(
        levels["users"][user("repair-host")],
        100,
        "the reconcile touched another entry: {levels}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_invited_to_a_strangers_room_declines() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let stranger = register_user(hs, "stranger").await;
    let room_id = stranger
        .create_room(hs, json!({"name": "Not OpenMeet's"}))
        .await;
    let bot = bot_id("tenantA");
    stranger.invite(hs, &room_id, &bot).await;
    crate::support::eventually(
        "the bot to decline",
        std::time::Duration::from_secs(30),
        || async {
            let members = stranger.members(hs, &room_id).await;
            members
                .iter()
                .any(|(u, m)| *u == bot && m == "leave")
                .then_some(())
        },
    )
    .await;
    let (code, jobs, stderr) = daemon
        .config
        .cli(&["jobs", "list", "--kind", "decline_invite"]);
    assert_eq!(code, 0, "{stderr}");
    // Only this room's: Synapse may also hand this daemon events an earlier test left undelivered.
    let declines = jobs
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|job| job["payload"].as_str().unwrap().contains(room_id.as_str()))
        .count();
    assert_eq!(declines, 1, "{jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_the_bot_lost_is_replaced_under_the_same_alias() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let daemon = ready_daemon_with(fresh_config()).await;
    let token = daemon.config.tenant_token("tenantA");
    let host = register_user(hs, "lost-host").await;
    let body = json!({"name": "Lost Chat", "visibility": "private", "members": [{"user_id": user("lost-host"), "role": "host"}]});
    let job = declare(&daemon, "tenantA", "event", "lost", body).await;
    let old_room = job["result"]["room_id"].as_str().unwrap().to_owned();

    // The bot is taken out of the private room (here: it is made to leave, through the as_token).
    let bot = bot_id("tenantA");
    let leave = format!(
        "/_matrix/client/v3/rooms/{}/leave?user_id={}",
        encode(&old_room),
        encode(&bot)
    );
    let (status, answer) = crate::support::matrix_client::request(
        hs,
        Some(&daemon.config.tokens.as_token),
        Method::POST,
        &leave,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let path = "/v1/tenants/tenantA/rooms/event/lost";
    let room = crate::support::eventually(
        "the room to be replaced",
        std::time::Duration::from_secs(30),
        || async {
            let (_, room) = daemon.platform(Method::GET, path, Some(&token), None).await;
            (room["status"] == "ready" && room["room_id"] != old_room.as_str()).then_some(room)
        },
    )
    .await;
    let new_room = room["room_id"].as_str().unwrap();
    let alias = format!("#event-lost-tenantA:{SERVER_NAME}");
    let (status, resolved) = host.resolve_alias(hs, &alias).await;
    assert_eq!(
        (status, resolved["room_id"].as_str()),
        (StatusCode::OK, Some(new_room))
    );
    let in_new = environment().synapse.current_memberships(new_room);
    assert!(
        in_new.contains(&(user("lost-host"), "invite".to_owned())),
        "the host was not invited to the replacement: {in_new:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_follows_a_room_upgrade() {
    let _turn = port_turn().await;
    let hs = environment().synapse.url.as_str();
    let mut config = fresh_config();
    config.room_version = Some("10".into());
    let daemon = ready_daemon_with(config).await;
    let token = daemon.config.tenant_token("tenantA");
    let host = register_user(hs, "upgrade-host").await;
    register_user(hs, "upgrade-moderator").await;
    let body = json!({"name": "Upgraded Chat", "visibility": "public", "members": [
        {"user_id": user("upgrade-host"), "role": "host"},
        {"user_id": user("upgrade-moderator"), "role": "moderator"},
    ]});
    let job = declare(&daemon, "tenantA", "event", "upgraded", body).await;
    let old_room = job["result"]["room_id"].as_str().unwrap().to_owned();
    host.join(hs, &old_room).await;

    let new_room = host.upgrade_room(hs, &old_room, "10").await;

    let path = "/v1/tenants/tenantA/rooms/event/upgraded";
    crate::support::eventually(
        "the declaration to follow the upgrade",
        std::time::Duration::from_secs(30),
        || async {
            let (_, room) = daemon.platform(Method::GET, path, Some(&token), None).await;
            (room["room_id"] == new_room.as_str() && room["status"] == "ready").then_some(())
        },
    )
    .await;
    let members = environment().synapse.current_memberships(&new_room);
    assert!(
        members.contains(&(bot_id("tenantA"), "join".to_owned())),
        "{members:?}"
    );
    assert!(
        members.contains(&(user("upgrade-moderator"), "invite".to_owned())),
        "{members:?}"
    );
    host.join(hs, &new_room).await;
    let levels = state(&host, &new_room, "m.room.power_levels").await;
    assert_eq!(levels["users"][user("upgrade-moderator")], 50, "{levels}");
}
