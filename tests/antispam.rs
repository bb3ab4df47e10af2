#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The `synapse-http-antispam` callbacks over HTTP on both databases (DESIGN §7.3, rules before
//! send), the daemon on the fake homeserver: who is refused and who is not, that a non-decision
//! is plain text (so the module's `fail_open` applies), and that each refusal is audited and in
//! the feed. Against a real Synapse loading the module: `tests/e2e/rules.rs`.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::Backend;
use support::daemon::{Daemon, DaemonConfig};
use support::fake_homeserver::FakeHomeserver;
use support::matrix_client::http_client;

const SERVER: &str = "fake.openmeet.test";
const TOKEN: &str = "antispam-token-0123456789abcdef";
const MEMBER: &str = "@member:fake.openmeet.test";
const MODERATOR: &str = "@moderator:fake.openmeet.test";
/// Tenant staff (a moderator of every room of the tenant), not a declared member of the room.
const STAFF: &str = "@staff:fake.openmeet.test";
const SPAMMER: &str = "@spammer:fake.openmeet.test";
const BANNED_EVERYWHERE: &str = "@troll:fake.openmeet.test";
const STRANGER: &str = "@stranger:fake.openmeet.test";

async fn setup(backend: Backend) -> (FakeHomeserver, Daemon) {
    let mut config = DaemonConfig::new("antispam", backend.database_url("antispam"));
    config.server_name = SERVER.into();
    config.room_version = Some("10".into());
    config.tenants.push(("tenantB".into(), "Tenant B".into()));
    config.antispam_token = Some(TOKEN.into());
    config.rules = vec![(
        "tenantA".into(),
        "{blocked_words: [casino], blocked_link_domains: [spam.example], rate_limit: {messages: 3, per_seconds: 600}}".into(),
    )];
    let fake = FakeHomeserver::start(SERVER, &config.tokens.as_token, "openmeet-bot").await;
    config.homeserver_url = fake.url.clone();
    let daemon = Daemon::start(config).await;
    daemon.wait_ready(true, Duration::from_secs(30)).await;
    (fake, daemon)
}

/// A callback as the module sends it: status, body text, whether the body is JSON.
async fn callback(
    daemon: &Daemon,
    name: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let (status, text) = raw(daemon, name, token, &body.to_string()).await;
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("a decision is JSON ({status}): {text:?}"));
    (status, json)
}

async fn raw(daemon: &Daemon, name: &str, token: Option<&str>, body: &str) -> (StatusCode, String) {
    let port = daemon.config.listening_appservice_port();
    let mut request = http_client()
        .post(format!("http://127.0.0.1:{port}/_openmeet/antispam/{name}"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .expect("the appservice listener answers");
    (response.status(), response.text().await.unwrap())
}

/// The rule of a refusal (its audit entry's reason starts with it), after checking its shape.
fn refused(answer: (StatusCode, Value)) -> String {
    let (status, body) = answer;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errcode"], "M_FORBIDDEN", "{body}");
    body["error"].as_str().unwrap().to_owned()
}

fn allowed(answer: (StatusCode, Value)) {
    assert_eq!(answer, (StatusCode::OK, json!({})));
}

fn message(room_id: &str, sender: &str, body: &str) -> Value {
    json!({"event": {
        "type": "m.room.message", "sender": sender, "room_id": room_id, "event_id": "$e",
        "content": {"msgtype": "m.text", "body": body},
    }})
}

async fn platform(
    daemon: &Daemon,
    tenant: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let token = daemon.config.tenant_token(tenant);
    let path = format!("/v1/tenants/{tenant}/{path}");
    let (status, answer) = daemon.platform(method, &path, Some(&token), body).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

async fn callbacks_refuse_what_the_rules_say_in_managed_rooms_only(backend: Backend) {
    let (_fake, daemon) = setup(backend).await;
    let members = json!([
        {"user_id": MEMBER, "role": "participant"},
        {"user_id": MODERATOR, "role": "moderator"},
    ]);
    let body = json!({"name": "Chat", "visibility": "public", "members": members});
    let room_id = daemon.declare("tenantA", "event", "chat", body).await["result"]["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"name": "B", "visibility": "public", "members": [{"user_id": MEMBER, "role": "participant"}]});
    let room_b = daemon.declare("tenantB", "event", "b", body).await["result"]["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ban = json!({"reason": "Spam"});
    platform(
        &daemon,
        "tenantA",
        Method::PUT,
        &format!("rooms/event/chat/bans/{SPAMMER}"),
        Some(ban.clone()),
    )
    .await;
    platform(
        &daemon,
        "tenantA",
        Method::PUT,
        &format!("bans/{BANNED_EVERYWHERE}"),
        Some(ban),
    )
    .await;
    let bot = "@openmeet-bot-tenanta:fake.openmeet.test";

    // The token: none, a wrong one or the hs_token is plain text, so the module's fail_open applies.
    let join = |user: &str, room: &str| json!({"user": user, "room": room, "is_invited": true});
    let hs_token = daemon.config.tokens.hs_token.clone();
    for token in [
        None,
        Some("wrong-token-0123456789"),
        Some(hs_token.as_str()),
    ] {
        let (status, text) = raw(
            &daemon,
            "user_may_join_room",
            token,
            &join(SPAMMER, &room_id).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    }
    let (status, text) = raw(&daemon, "user_may_join_room", Some(TOKEN), "{\"user\": 5}").await;
    assert!(status.is_client_error(), "{status} {text}");
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "an unreadable body is no decision: {text}"
    );
    let (status, pong) = callback(&daemon, "ping", Some(TOKEN), json!({"id": "abc"})).await;
    assert_eq!(
        (status, pong),
        (StatusCode::OK, json!({"id": "abc", "status": "ok"}))
    );
    allowed(
        callback(
            &daemon,
            "user_may_create_room",
            Some(TOKEN),
            json!({"user_id": SPAMMER}),
        )
        .await,
    );

    // Joins: banned in the room or tenant-wide, invited or not; our bot and other rooms pass.
    let t = Some(TOKEN);
    assert!(
        refused(callback(&daemon, "user_may_join_room", t, join(SPAMMER, &room_id)).await)
            .contains("banned")
    );
    refused(
        callback(
            &daemon,
            "user_may_join_room",
            t,
            join(BANNED_EVERYWHERE, &room_id),
        )
        .await,
    );
    allowed(callback(&daemon, "user_may_join_room", t, join(MEMBER, &room_id)).await);
    allowed(callback(&daemon, "user_may_join_room", t, join(SPAMMER, &room_b)).await);
    allowed(
        callback(
            &daemon,
            "user_may_join_room",
            t,
            join(SPAMMER, "!unmanaged:fake.openmeet.test"),
        )
        .await,
    );
    allowed(callback(&daemon, "user_may_join_room", t, join(bot, &room_id)).await);

    // Invites: by the invite level as the daemon computes it, never of a banned user.
    let invite = |inviter: &str, invitee: &str| json!({"inviter": inviter, "invitee": invitee, "room_id": room_id});
    assert!(
        refused(callback(&daemon, "user_may_invite", t, invite(MEMBER, STRANGER)).await)
            .contains("Only moderators")
    );
    allowed(callback(&daemon, "user_may_invite", t, invite(MODERATOR, STRANGER)).await);
    assert!(
        refused(callback(&daemon, "user_may_invite", t, invite(MODERATOR, SPAMMER)).await)
            .contains("banned")
    );
    allowed(callback(&daemon, "user_may_invite", t, invite(bot, SPAMMER)).await);

    // Messages: the rules hold below the moderator's level, in tenant A's rooms only.
    let check = |sender: &str, body: &str| message(&room_id, sender, body);
    assert!(
        refused(
            callback(
                &daemon,
                "check_event_for_spam",
                t,
                check(MEMBER, "go to http://x.spam.example/")
            )
            .await
        )
        .contains("spam.example")
    );
    refused(
        callback(
            &daemon,
            "check_event_for_spam",
            t,
            check(MEMBER, "Casino night"),
        )
        .await,
    );
    allowed(
        callback(
            &daemon,
            "check_event_for_spam",
            t,
            check(MODERATOR, "http://spam.example"),
        )
        .await,
    );
    // Tenant staff hold their staff level in every room: the rules spare them too, and hold
    // again once they are removed.
    let staff_link = || check(STAFF, "http://spam.example");
    refused(callback(&daemon, "check_event_for_spam", t, staff_link()).await);
    platform(
        &daemon,
        "tenantA",
        Method::PUT,
        &format!("staff/{STAFF}"),
        Some(json!({"role": "moderator"})),
    )
    .await;
    allowed(callback(&daemon, "check_event_for_spam", t, staff_link()).await);
    platform(
        &daemon,
        "tenantA",
        Method::DELETE,
        &format!("staff/{STAFF}"),
        None,
    )
    .await;
    refused(callback(&daemon, "check_event_for_spam", t, staff_link()).await);
    allowed(
        callback(
            &daemon,
            "check_event_for_spam",
            t,
            check(bot, "http://spam.example"),
        )
        .await,
    );
    allowed(
        callback(
            &daemon,
            "check_event_for_spam",
            t,
            message(&room_b, MEMBER, "http://spam.example"),
        )
        .await,
    );
    let mut state = check(MEMBER, "http://spam.example");
    state["event"]["state_key"] = json!("");
    allowed(callback(&daemon, "check_event_for_spam", t, state).await);
    // Three messages a window; the refused ones above did not count.
    for i in 0..3 {
        allowed(
            callback(
                &daemon,
                "check_event_for_spam",
                t,
                check(MEMBER, &format!("hi {i}")),
            )
            .await,
        );
    }
    assert!(
        refused(callback(&daemon, "check_event_for_spam", t, check(MEMBER, "hi 3")).await)
            .contains("too fast")
    );
    allowed(callback(&daemon, "check_event_for_spam", t, check(MODERATOR, "hi")).await);

    // Lifting the room ban lets the user in again.
    platform(
        &daemon,
        "tenantA",
        Method::DELETE,
        &format!("rooms/event/chat/bans/{SPAMMER}"),
        None,
    )
    .await;
    allowed(callback(&daemon, "user_may_join_room", t, join(SPAMMER, &room_id)).await);

    // Each refusal: one audit entry and one feed event (written after the answer, by a task each,
    // so not necessarily in the order of the answers).
    let mut expected = [
        "ban",
        "ban",
        "invite_level",
        "banned_invitee",
        "blocked_link_domain",
        // The staff member's link, before they were staff and after.
        "blocked_link_domain",
        "blocked_link_domain",
        "blocked_word",
        "rate_limit",
    ];
    expected.sort_unstable();
    let daemon_ref = &daemon;
    let entries = support::eventually(
        "the refusals' entries",
        Duration::from_secs(10),
        move || async move {
            let log = platform(daemon_ref, "tenantA", Method::GET, "moderation", None).await;
            let refusals: Vec<Value> = (log["entries"].as_array().unwrap().iter())
                .filter(|entry| entry["action"] == "refuse")
                .cloned()
                .collect();
            (refusals.len() >= expected.len()).then_some(refusals)
        },
    )
    .await;
    let mut rules: Vec<&str> = (entries.iter())
        .map(|entry| entry["reason"].as_str().unwrap().split(':').next().unwrap())
        .collect();
    rules.sort_unstable();
    assert_eq!(rules, expected, "{entries:?}");
    for entry in &entries {
        assert_eq!(
            entry["room"],
            json!({"kind": "event", "slug": "chat"}),
            "{entry}"
        );
        assert_eq!(entry["job"], Value::Null, "{entry}");
    }
    let feed = platform(
        &daemon,
        "tenantA",
        Method::GET,
        "events?after=0&limit=500",
        None,
    )
    .await;
    let events: Vec<&Value> = (feed["events"].as_array().unwrap().iter())
        .filter(|event| event["type"] == "rule.refused")
        .collect();
    let mut rules: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["rule"].as_str().unwrap())
        .collect();
    rules.sort_unstable();
    assert_eq!(rules, expected, "{events:?}");
    let of_rule =
        |rule: &str| events.iter().find(|e| e["data"]["rule"] == rule).unwrap()["data"].clone();
    assert_eq!(of_rule("banned_invitee")["invitee"], SPAMMER);
    assert_eq!(of_rule("banned_invitee")["user_id"], MODERATOR);
    assert_eq!(of_rule("blocked_link_domain")["event_id"], "$e");
    assert_eq!(
        of_rule("blocked_link_domain")["event_type"],
        "m.room.message"
    );
    assert_eq!(
        of_rule("blocked_link_domain")["callback"],
        "check_event_for_spam"
    );
    let feed_b = platform(
        &daemon,
        "tenantB",
        Method::GET,
        "events?after=0&limit=500",
        None,
    )
    .await;
    assert!(!feed_b.to_string().contains("rule.refused"), "{feed_b}");
    daemon
        .config
        .assert_no_secret_in("the daemon's log", &daemon.logs());
    assert!(!daemon.logs().contains(TOKEN));
}

on_both_backends!(callbacks_refuse_what_the_rules_say_in_managed_rooms_only);
