#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Proves the fake homeserver (`support/fake_homeserver.rs`) does what its documentation says:
//! each fault answers as documented and then goes away, and the little state it keeps is consistent
//! enough for a daemon's jobs. Plain HTTP calls only, no daemon.
//!
//! One binary, a module per part of the fake; the helpers that call it are below.

mod support;

#[path = "fake_homeserver_selftest/basics.rs"]
mod basics;
#[path = "fake_homeserver_selftest/faults.rs"]
mod faults;
#[path = "fake_homeserver_selftest/rooms.rs"]
mod rooms;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::fake_homeserver::{Endpoint, FakeHomeserver};
use crate::support::matrix_client::{encode, http_client};

const SERVER: &str = "fake.test";
const AS_TOKEN: &str = "as-token-for-the-fake";
const SENDER: &str = "@openmeet-bot:fake.test";
const BOT: &str = "@openmeet-bot-tenanta:fake.test";
const VERSIONS: &str = "/_matrix/client/versions";
const WHOAMI: &str = "/_matrix/client/v3/account/whoami";
const CREATE_ROOM: &str = "/_matrix/client/v3/createRoom";

async fn fake() -> FakeHomeserver {
    FakeHomeserver::start(SERVER, AS_TOKEN, "openmeet-bot").await
}

/// One answer: status, `Retry-After` header if any, JSON body (`Null` when not JSON).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Answer {
    fn errcode(&self) -> &str {
        self.body["errcode"].as_str().unwrap_or("")
    }

    fn room_id(&self) -> String {
        let room = self.body["room_id"].as_str();
        room.unwrap_or_else(|| panic!("no room_id in {self:?}"))
            .to_owned()
    }
}

/// Sends one request with `client`: `token` as bearer, `?user_id=` when `acting_as` is given.
async fn send(
    client: reqwest::Client,
    url: &str,
    token: Option<&str>,
    acting_as: Option<&str>,
    method: Method,
    body: Option<Value>,
) -> Result<Answer, reqwest::Error> {
    let query = acting_as.map_or(String::new(), |user| format!("?user_id={}", encode(user)));
    let mut request = client.request(method, format!("{url}{query}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        let request_body = request.header("content-type", "application/json");
        request = request_body.body(body.to_string());
    }
    let response = request.send().await?;
    let status = response.status();
    let retry_after = response.headers().get("retry-after");
    let retry_after = retry_after.map(|v| v.to_str().unwrap().to_owned());
    let body = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// Calls the fake as the appservice (as_token), as `user` or else as the sender.
struct As<'a> {
    hs: &'a FakeHomeserver,
    user: Option<&'a str>,
}

impl As<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}{path}", self.hs.url);
        let answer = send(http_client(), &url, Some(AS_TOKEN), self.user, method, body);
        answer.await.expect("the fake homeserver answers")
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    async fn state(&self, room: &str, kind: &str, key: &str) -> Answer {
        self.get(&state_path(room, kind, key)).await
    }
}

fn sender(hs: &FakeHomeserver) -> As<'_> {
    As { hs, user: None }
}

fn acting<'a>(hs: &'a FakeHomeserver, user: &'a str) -> As<'a> {
    As {
        hs,
        user: Some(user),
    }
}

/// Without any token.
async fn anonymous(hs: &FakeHomeserver, path: &str) -> Answer {
    let url = format!("{}{path}", hs.url);
    let answer = send(http_client(), &url, None, None, Method::GET, None);
    answer.await.unwrap()
}

async fn register(hs: &FakeHomeserver, localpart: &str) -> Answer {
    let body = json!({"type": "m.login.application_service", "username": localpart});
    sender(hs).post("/_matrix/client/v3/register", body).await
}

fn state_path(room: &str, kind: &str, key: &str) -> String {
    let (room, kind, key) = (encode(room), encode(kind), encode(key));
    format!("/_matrix/client/v3/rooms/{room}/state/{kind}/{key}")
}

fn room_path(room: &str, verb: &str) -> String {
    format!("/_matrix/client/v3/rooms/{}/{verb}", encode(room))
}

fn alias_path(alias: &str) -> String {
    format!("/_matrix/client/v3/directory/room/{}", encode(alias))
}

/// The statuses the requests to `endpoint` got, in order.
fn statuses(hs: &FakeHomeserver, endpoint: Endpoint) -> Vec<u16> {
    let requests = hs.requests().into_iter().filter(|r| r.endpoint == endpoint);
    requests.map(|r| r.status).collect()
}
