#![allow(dead_code)]
//! A tiny Matrix client-server API helper for tests (reqwest + serde_json).
//! Every helper except `request` panics with the homeserver's answer when the
//! call does not succeed, so a test reads as a list of steps.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A fresh HTTP client. Not shared between calls: each `#[tokio::test]` has
/// its own runtime, and pooled connections must not outlive theirs.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("building a reqwest client for the tests")
}

/// Sends `body` (if any) as JSON to `hs_url` + `path` and returns the status and
/// the JSON answer (`Value::Null` when the body is empty or not JSON).
pub async fn request(
    hs_url: &str,
    access_token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}{path}", hs_url.trim_end_matches('/'));
    let mut req = http_client().request(method.clone(), &url);
    if let Some(token) = access_token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        let bytes = serde_json::to_vec(&body).expect("serializing a JSON body");
        req = req.header("content-type", "application/json").body(bytes);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url} failed: {e}; is the homeserver running?"));
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: reading the answer failed: {e}"));
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Percent-encodes one path segment (room ids, aliases, user ids, event types).
pub fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A transaction id unique within this process.
fn txn_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn expect_ok(what: &str, (status, body): (StatusCode, Value)) -> Value {
    assert!(status.is_success(), "{what} answered {status}: {body}");
    body
}

/// A user and its access token (also usable with an appservice's as_token).
/// Methods take the homeserver's base URL `hs` first, e.g. `synapse.url`.
#[derive(Clone)]
pub struct TestUser {
    pub user_id: String,
    pub access_token: String,
}

/// Registers the appservice's user `user_id` (a tenant bot) through the as_token, as the daemon
/// does; a user registered already is fine.
pub async fn register_as_appservice(hs_url: &str, as_token: &str, user_id: &str) {
    let localpart = user_id
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap_or_default();
    let register = json!({"type": "m.login.application_service", "username": localpart});
    let path = "/_matrix/client/v3/register";
    let (status, answer) =
        request(hs_url, Some(as_token), Method::POST, path, Some(register)).await;
    assert!(
        status == StatusCode::OK || answer["errcode"] == "M_USER_IN_USE",
        "registering {user_id}: {status} {answer}"
    );
}

/// Registers `@localpart:<server>` with the two-step "m.login.dummy" UIA flow
/// (needs `enable_registration_without_verification`, as synapse.py sets).
pub async fn register_user(hs_url: &str, localpart: &str) -> TestUser {
    let mut body = json!({
        "username": localpart,
        "password": format!("{localpart}-test-password"),
        "inhibit_login": false,
    });
    let path = "/_matrix/client/v3/register";
    let (status, first) = request(hs_url, None, Method::POST, path, Some(body.clone())).await;
    let session = match (status, first.get("session").and_then(Value::as_str)) {
        (StatusCode::UNAUTHORIZED, Some(session)) => session.to_owned(),
        _ => panic!(
            "registering {localpart}: expected 401 with a UIA session, got {status}: {first}"
        ),
    };
    body["auth"] = json!({ "type": "m.login.dummy", "session": session });
    let done = expect_ok(
        &format!("registering {localpart}"),
        request(hs_url, None, Method::POST, path, Some(body)).await,
    );
    TestUser {
        user_id: done["user_id"]
            .as_str()
            .expect("user_id in the register answer")
            .to_owned(),
        access_token: done["access_token"]
            .as_str()
            .expect("access_token in the register answer")
            .to_owned(),
    }
}

/// A human on a MAS-delegated Synapse (`Placement { mas: true, .. }`): the stand-in MAS at
/// `mas_url` provisions `@localpart` and a device on Synapse as MAS does, and hands out an access
/// token that it vouches for when Synapse introspects it. The stand-in of an OAuth login.
pub async fn login_via_mas(mas_url: &str, localpart: &str) -> TestUser {
    let answer = expect_ok(
        &format!("a stand-in MAS session for {localpart}"),
        request(
            mas_url,
            None,
            Method::POST,
            "/_test/sessions",
            Some(json!({ "localpart": localpart })),
        )
        .await,
    );
    TestUser {
        user_id: answer["user_id"]
            .as_str()
            .expect("user_id in the stand-in's answer")
            .to_owned(),
        access_token: answer["access_token"]
            .as_str()
            .expect("access_token in the stand-in's answer")
            .to_owned(),
    }
}

/// How many token introspections the stand-in MAS at `mas_url` answered, and how many of them
/// it refused (`active: false`).
pub async fn mas_introspections(mas_url: &str) -> (u64, u64) {
    let stats = expect_ok(
        "the stand-in MAS's stats",
        request(mas_url, None, Method::GET, "/_test/stats", None).await,
    );
    (
        stats["introspections"].as_u64().expect("introspections"),
        stats["refused"].as_u64().expect("refused"),
    )
}

impl TestUser {
    /// `GET /account/whoami` as this user: the status and the answer, unchecked.
    pub async fn whoami(&self, hs: &str) -> (StatusCode, Value) {
        self.request(hs, Method::GET, "/_matrix/client/v3/account/whoami", None)
            .await
    }

    /// Any client-server call as this user; `path` starts with `/_matrix/`.
    pub async fn request(
        &self,
        hs: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        request(hs, Some(&self.access_token), method, path, body).await
    }

    async fn ok(&self, hs: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path} as {}", self.user_id);
        expect_ok(&what, self.request(hs, method, path, body).await)
    }

    /// `GET /directory/room/{alias}`: the status and the answer (`room_id` on 200).
    pub async fn resolve_alias(&self, hs: &str, alias: &str) -> (StatusCode, Value) {
        let path = format!("/_matrix/client/v3/directory/room/{}", encode(alias));
        self.request(hs, Method::GET, &path, None).await
    }

    /// `POST /createRoom` with `body` (e.g. `json!({"preset": "private_chat"})`); returns the room id.
    pub async fn create_room(&self, hs: &str, body: Value) -> String {
        let answer = self
            .ok(
                hs,
                Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(body),
            )
            .await;
        answer["room_id"]
            .as_str()
            .expect("room_id in the createRoom answer")
            .to_owned()
    }

    pub async fn invite(&self, hs: &str, room_id: &str, user_id: &str) {
        let path = format!("/_matrix/client/v3/rooms/{}/invite", encode(room_id));
        self.ok(hs, Method::POST, &path, Some(json!({ "user_id": user_id })))
            .await;
    }

    /// Upgrades the room to `version`; returns the replacement room's id.
    pub async fn upgrade_room(&self, hs: &str, room_id: &str, version: &str) -> String {
        let path = format!("/_matrix/client/v3/rooms/{}/upgrade", encode(room_id));
        let answer = self
            .ok(
                hs,
                Method::POST,
                &path,
                Some(json!({ "new_version": version })),
            )
            .await;
        answer["replacement_room"]
            .as_str()
            .expect("replacement_room in the upgrade answer")
            .to_owned()
    }

    /// Joins by room id or alias; returns the room id.
    pub async fn join(&self, hs: &str, room_id_or_alias: &str) -> String {
        let path = format!("/_matrix/client/v3/join/{}", encode(room_id_or_alias));
        let answer = self.ok(hs, Method::POST, &path, Some(json!({}))).await;
        answer["room_id"]
            .as_str()
            .expect("room_id in the join answer")
            .to_owned()
    }

    /// Sends an `m.text` message; returns its event id.
    pub async fn send_message(&self, hs: &str, room_id: &str, text: &str) -> String {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            encode(room_id),
            txn_id()
        );
        let body = json!({ "msgtype": "m.text", "body": text });
        let answer = self.ok(hs, Method::PUT, &path, Some(body)).await;
        answer["event_id"]
            .as_str()
            .expect("event_id in the send answer")
            .to_owned()
    }

    /// The latest `limit` events of the room, newest first (`/messages?dir=b`).
    pub async fn messages(&self, hs: &str, room_id: &str, limit: u32) -> Vec<Value> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit={limit}",
            encode(room_id)
        );
        let answer = self.ok(hs, Method::GET, &path, None).await;
        answer["chunk"].as_array().cloned().unwrap_or_default()
    }

    /// All current state events of the room.
    pub async fn room_state(&self, hs: &str, room_id: &str) -> Vec<Value> {
        let path = format!("/_matrix/client/v3/rooms/{}/state", encode(room_id));
        self.ok(hs, Method::GET, &path, None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The content of one state event, or None when it is not set (404).
    pub async fn state_event(
        &self,
        hs: &str,
        room_id: &str,
        event_type: &str,
        state_key: &str,
    ) -> Option<Value> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/{}/{}",
            encode(room_id),
            encode(event_type),
            encode(state_key)
        );
        match self.request(hs, Method::GET, &path, None).await {
            (StatusCode::NOT_FOUND, _) => None,
            answer => Some(expect_ok(
                &format!("GET {path} as {}", self.user_id),
                answer,
            )),
        }
    }

    /// `(user_id, membership)` for every member event of the room.
    pub async fn members(&self, hs: &str, room_id: &str) -> Vec<(String, String)> {
        let path = format!("/_matrix/client/v3/rooms/{}/members", encode(room_id));
        let answer = self.ok(hs, Method::GET, &path, None).await;
        answer["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ev| {
                let user = ev["state_key"].as_str()?;
                let membership = ev["content"]["membership"].as_str()?;
                Some((user.to_owned(), membership.to_owned()))
            })
            .collect()
    }

    /// `GET /profile/{user_id}`: the status and answer, unchecked (404 is a normal answer).
    pub async fn get_profile(&self, hs: &str, user_id: &str) -> (StatusCode, Value) {
        let path = format!("/_matrix/client/v3/profile/{}", encode(user_id));
        self.request(hs, Method::GET, &path, None).await
    }

    /// `GET /thirdparty/protocols`: every protocol the homeserver's appservices offer, with the
    /// instances (networks) Synapse added `instance_id`s to.
    pub async fn protocols(&self, hs: &str) -> Value {
        self.ok(
            hs,
            Method::GET,
            "/_matrix/client/v3/thirdparty/protocols",
            None,
        )
        .await
    }

    /// The room ids `POST /publicRooms` lists: the server-wide directory, or with `instance` (a
    /// `third_party_instance_id`) that network's room list.
    pub async fn public_rooms(&self, hs: &str, instance: Option<&str>) -> Vec<String> {
        let mut filter = json!({"limit": 1000});
        if let Some(instance) = instance {
            filter["third_party_instance_id"] = json!(instance);
        }
        let answer = self
            .ok(
                hs,
                Method::POST,
                "/_matrix/client/v3/publicRooms",
                Some(filter),
            )
            .await;
        answer["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|room| room["room_id"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Registers ordinary users `{prefix}-{i:04}` for `i` in `0..count` (no login, the dummy stage,
/// eight at a time) and returns their ids on `server_name`, in order. A user registered already
/// is fine, so a test process may ask again.
pub async fn register_many(
    hs_url: &str,
    server_name: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    use std::sync::Arc;
    let client = http_client();
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (client, limit) = (client.clone(), limit.clone());
        let url = format!(
            "{}/_matrix/client/v3/register",
            hs_url.trim_end_matches('/')
        );
        let localpart = format!("{prefix}-{i:04}");
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("the semaphore is open");
            register_without_login(&client, &url, &localpart).await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a registration panicked");
    }
    (0..count)
        .map(|i| format!("@{prefix}-{i:04}:{server_name}"))
        .collect()
}

/// `POST /register` with the dummy stage: first a session, then the stage within it.
async fn register_without_login(client: &reqwest::Client, url: &str, localpart: &str) {
    let mut body = json!({
        "username": localpart,
        "password": format!("{localpart}-test-password"),
        "inhibit_login": true,
        "auth": {"type": "m.login.dummy"},
    });
    for _ in 0..2 {
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).expect("a JSON body"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("registering {localpart}: {e}"));
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() || answer["errcode"] == "M_USER_IN_USE" {
            return;
        }
        match answer["session"].as_str() {
            Some(session) if status == StatusCode::UNAUTHORIZED => {
                body["auth"]["session"] = json!(session);
            }
            _ => panic!("registering {localpart}: {status} {answer}"),
        }
    }
    panic!("registering {localpart}: the dummy stage did not complete");
}
