//! An in-process fake Matrix homeserver for the error paths a real Synapse will not produce on
//! demand: 429s, 5xx, slow answers, token rejection. It is not a Synapse replacement (happy paths
//! belong to `tests/e2e/`, against the real thing); it keeps just enough state — users, rooms and
//! their state events, aliases, transaction ids — that a daemon can run its jobs against it, checks
//! the as_token and the `?user_id=` identity assertion as Synapse does, and records every request.
//!
//! Timelines are kept for `/messages` (backwards, with a `senders` filter) and `/redact`: state
//! events, messages the bots send and those a test posts ([`FakeHomeserver::post_message`]).
//!
//! Not modelled: power levels (any joined user may do anything), room-version rules (v12 creators
//! in `power_level_content_override` succeed here), namespaces (any local registered user may be
//! asserted), history visibility, `/sync`, federation. Only `Authorization: Bearer` is read, not
//! `?access_token=`. It serves on the test's own tokio runtime: use a multi-thread runtime if the
//! test ever blocks (e.g. `Daemon::stop`), or the fake cannot answer meanwhile.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The fake homeserver. Dropping it stops accepting connections and closes idle ones (the daemon's
/// pooled keep-alive connections too, so it sees the homeserver gone); a request in flight still
/// gets its answer.
pub struct FakeHomeserver {
    /// Base URL, `http://127.0.0.1:<port>`, for `homeserver.url`.
    pub url: String,
    state: Arc<Mutex<State>>,
    /// Dropping it triggers the server's graceful shutdown.
    _stop: oneshot::Sender<()>,
}

/// A fault queued with [`FakeHomeserver::fail_next`]. Each one stands in for the whole answer to
/// one request (checked before the token, as a proxy or rate limiter in front would be) and changes no
/// state — except `Timeout`, which lets the request through and only delays its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `M_LIMIT_EXCEEDED` with `retry_after_ms`, and `Retry-After` in whole seconds, as Synapse.
    RateLimited { retry_after_ms: u64 },
    /// This HTTP status with a JSON body `{"errcode": "M_UNKNOWN", "error": …}`.
    Status(u16),
    /// The request is processed (state changes, txn recorded), then the answer waits this long: a
    /// client that gives up earlier sees a timeout for work that was nevertheless done.
    Timeout(Duration),
    /// 403 `M_FORBIDDEN` with this message.
    Forbidden(&'static str),
    /// 401 `M_UNKNOWN_TOKEN` for this one request (`set_token_accepted` for a lasting rejection).
    UnknownToken,
    /// No fault: the request is answered as usual (queue some before a fault meant for a later
    /// request). Recorded as no fault.
    Pass,
}

/// What a request was for, from its path (and method, for state). Faults are queued per endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Versions,
    WhoAmI,
    Register,
    CreateRoom,
    Invite,
    /// `POST /v3/join/{roomIdOrAlias}` and `POST /v3/rooms/{roomId}/join`.
    Join,
    Kick,
    Leave,
    Forget,
    /// `PUT /v3/rooms/{roomId}/state/{type}[/{stateKey}]`.
    SetState,
    /// `GET` of one state event, or of `/v3/rooms/{roomId}/state` (all of them).
    GetState,
    /// `PUT /v3/rooms/{roomId}/send/{type}/{txnId}`, whatever the event type.
    SendMessage,
    /// `GET /v3/rooms/{roomId}/messages`.
    Messages,
    /// `PUT /v3/rooms/{roomId}/redact/{eventId}/{txnId}`.
    Redact,
    /// `GET`, `PUT` and `DELETE /v3/directory/room/{alias}`.
    DirectoryAlias,
    /// `GET` and `PUT /v3/directory/list/room/{roomId}`: the room directory entry.
    DirectoryList,
    /// `PUT /v3/directory/list/appservice/{networkId}/{roomId}`: the appservice's list of a
    /// network (a tenant's own directory).
    NetworkList,
    Ping,
    /// `GET /v3/profile/{userId}[/displayname]`, `PUT /v3/profile/{userId}/displayname`.
    Profile,
    /// `GET /v3/rooms/{roomId}/event/{eventId}`.
    GetEvent,
    /// `POST /v3/rooms/{roomId}/report[/{eventId}]` and `/v3/users/{userId}/report`: answered
    /// `{}` and recorded.
    Report,
    /// Anything else: answered 404 `M_UNRECOGNIZED`.
    Other,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub endpoint: Endpoint,
    /// The path, percent-decoded (`/_matrix/client/v3/rooms/!fake1:hs/invite`), without the query.
    pub path: String,
    /// The asserted identity, `?user_id=` (decoded), if any.
    pub user_id: Option<String>,
    /// The JSON body; `Null` when empty or not JSON.
    pub body: Value,
    /// The status it was answered (also under a `Timeout` fault, whose answer may never arrive).
    pub status: u16,
    /// The fault that answered it, if one did.
    pub fault: Option<Fault>,
    /// When it arrived.
    pub at: Instant,
}

impl FakeHomeserver {
    /// Listens on `127.0.0.1:<free port>` as `server_name`, accepting `as_token` for an appservice
    /// whose sender `@{sender_localpart}:{server_name}` is already registered (as Synapse does).
    pub async fn start(server_name: &str, as_token: &str, sender_localpart: &str) -> Self {
        let sender = format!("@{sender_localpart}:{server_name}");
        let state = Arc::new(Mutex::new(State {
            server_name: server_name.to_owned(),
            as_token: as_token.to_owned(),
            users: HashMap::from([(sender.clone(), None)]),
            user_tokens: HashMap::new(),
            sender,
            token_accepted: true,
            faults: HashMap::new(),
            log: Vec::new(),
            rooms: HashMap::new(),
            aliases: HashMap::new(),
            published: HashSet::new(),
            network_listed: HashSet::new(),
            txns: HashMap::new(),
            timelines: HashMap::new(),
            next_id: 0,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake homeserver");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Self {
            url,
            state,
            _stop: stop,
        }
    }

    /// Registers a human `@{localpart}:{server}` who calls with their own `access_token` (no
    /// identity assertion); returns the user id.
    pub fn add_user(&self, localpart: &str, access_token: &str) -> String {
        let mut state = lock(&self.state);
        let user_id = format!("@{localpart}:{}", state.server_name);
        state.users.insert(user_id.clone(), None);
        state
            .user_tokens
            .insert(access_token.to_owned(), user_id.clone());
        user_id
    }

    /// The next `times` requests to `endpoint` get `fault` (after any faults queued before).
    pub fn fail_next(&self, endpoint: Endpoint, times: usize, fault: Fault) {
        let mut state = lock(&self.state);
        let queue = state.faults.entry(endpoint).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// `false`: every request carrying a token (the as_token included) gets 401 `M_UNKNOWN_TOKEN`,
    /// as when Synapse runs with another registration; `true` restores it. Queued faults still win.
    pub fn set_token_accepted(&self, accepted: bool) {
        lock(&self.state).token_accepted = accepted;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).log.clone()
    }

    /// How many requests to `endpoint` arrived so far, faulted ones included.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        let state = lock(&self.state);
        state.log.iter().filter(|r| r.endpoint == endpoint).count()
    }

    /// Adds an `m.room.message` by `sender` to the room's timeline, stamped `origin_server_ts`
    /// (unix ms; `None`: now), as if the user had sent it; returns its event id.
    pub fn post_message(
        &self,
        room_id: &str,
        sender: &str,
        origin_server_ts: Option<u64>,
    ) -> String {
        let mut state = lock(&self.state);
        let content = json!({"msgtype": "m.text", "body": "hello"});
        state.append(room_id, sender, "m.room.message", content, origin_server_ts)
    }

    /// The room's timeline, oldest first.
    pub fn timeline(&self, room_id: &str) -> Vec<Value> {
        lock(&self.state)
            .timelines
            .get(room_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Target event id → how many redaction events were made for it (a txnId sent again makes
    /// none: it answers with the first).
    pub fn redactions(&self) -> HashMap<String, usize> {
        let state = lock(&self.state);
        let mut counts = HashMap::new();
        for event in state.timelines.values().flatten() {
            if let Some(target) = event["redacts"].as_str() {
                *counts.entry(target.to_owned()).or_default() += 1;
            }
        }
        counts
    }
}

type Answer = (u16, Value);

struct State {
    server_name: String,
    as_token: String,
    sender: String,
    token_accepted: bool,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    log: Vec<Recorded>,
    /// Registered user id → display name.
    users: HashMap<String, Option<String>>,
    /// A human's own access token → their user id ([`FakeHomeserver::add_user`]).
    user_tokens: HashMap<String, String>,
    /// Room id → current state events, keyed by (type, state_key).
    rooms: HashMap<String, BTreeMap<(String, String), Value>>,
    aliases: HashMap<String, String>,
    /// Rooms listed in the room directory.
    published: HashSet<String>,
    /// (network id, room id) of the rooms listed in the appservice's network lists.
    network_listed: HashSet<(String, String)>,
    /// `{room}/{type}/{txnId}` → event id. Synapse keys appservice txn ids by path and appservice,
    /// not by the asserted user: two bots reusing a txn id in one room get the first one's event.
    /// Redactions are keyed `{room}/redact/{eventId}/{txnId}`.
    txns: HashMap<String, String>,
    /// Room id → its events, oldest first (state events too).
    timelines: HashMap<String, Vec<Value>>,
    next_id: u64,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn handle(
    Shared(state): Shared<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let segments: Vec<String> = uri.path().split('/').skip(1).map(decode).collect();
    let all: Vec<&str> = segments.iter().map(String::as_str).collect();
    let rest: &[&str] = match all.as_slice() {
        ["_matrix", "client", rest @ ..] => rest,
        _ => &[],
    };
    let endpoint = classify(method.as_str(), rest);
    let parsed = if body.is_empty() {
        Some(json!({}))
    } else {
        serde_json::from_slice(&body).ok()
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let user_id = uri.query().unwrap_or("").split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "user_id").then(|| decode(&value.replace('+', " ")))
    });
    let (status, answer, delay) = {
        let mut state = lock(&state);
        let fault = state
            .faults
            .get_mut(&endpoint)
            .and_then(VecDeque::pop_front)
            .filter(|fault| *fault != Fault::Pass);
        let (status, answer) = match fault.as_ref().and_then(fault_answer) {
            Some(answer) => answer,
            None => state
                .dispatch(
                    endpoint,
                    method.as_str(),
                    rest,
                    uri.query().unwrap_or(""),
                    token,
                    user_id.as_deref(),
                    parsed,
                )
                .map_or_else(|error| error, |value| (200, value)),
        };
        let delay = match fault {
            Some(Fault::Timeout(delay)) => delay,
            _ => Duration::ZERO,
        };
        state.log.push(Recorded {
            method: method.to_string(),
            endpoint,
            path: format!("/{}", segments.join("/")),
            user_id,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            status,
            fault,
            at,
        });
        (status, answer, delay)
    };
    tokio::time::sleep(delay).await;
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = answer.get("retry_after_ms").and_then(Value::as_u64);
    let mut response = (code, axum::Json(answer)).into_response();
    if let Some(ms) = retry_after {
        let seconds = HeaderValue::from(ms.div_ceil(1000));
        response.headers_mut().insert(header::RETRY_AFTER, seconds);
    }
    response
}

fn classify(method: &str, rest: &[&str]) -> Endpoint {
    use Endpoint as E;
    match rest {
        ["versions"] => E::Versions,
        ["v3", "account", "whoami"] => E::WhoAmI,
        ["v3", "register"] => E::Register,
        ["v1", "appservice", _, "ping"] => E::Ping,
        ["v3", "createRoom"] => E::CreateRoom,
        ["v3", "join", _] | ["v3", "rooms", _, "join"] => E::Join,
        ["v3", "rooms", _, "invite"] => E::Invite,
        ["v3", "rooms", _, "kick"] => E::Kick,
        ["v3", "rooms", _, "leave"] => E::Leave,
        ["v3", "rooms", _, "forget"] => E::Forget,
        ["v3", "rooms", _, "state"] => E::GetState,
        ["v3", "rooms", _, "state", _] | ["v3", "rooms", _, "state", _, _] if method == "PUT" => {
            E::SetState
        }
        ["v3", "rooms", _, "state", _] | ["v3", "rooms", _, "state", _, _] => E::GetState,
        ["v3", "rooms", _, "send", _, _] => E::SendMessage,
        ["v3", "rooms", _, "messages"] => E::Messages,
        ["v3", "rooms", _, "redact", _, _] => E::Redact,
        ["v3", "directory", "room", _] => E::DirectoryAlias,
        ["v3", "directory", "list", "room", _] => E::DirectoryList,
        ["v3", "directory", "list", "appservice", _, _] => E::NetworkList,
        ["v3", "profile", _] | ["v3", "profile", _, "displayname"] => E::Profile,
        ["v3", "rooms", _, "event", _] => E::GetEvent,
        ["v3", "rooms", _, "report"]
        | ["v3", "rooms", _, "report", _]
        | ["v3", "users", _, "report"] => E::Report,
        _ => E::Other,
    }
}

fn error(status: u16, errcode: &str, message: impl std::fmt::Display) -> Answer {
    let message = message.to_string();
    (status, json!({"errcode": errcode, "error": message}))
}

fn forbidden(message: impl std::fmt::Display) -> Answer {
    error(403, "M_FORBIDDEN", message)
}

fn not_found(message: impl std::fmt::Display) -> Answer {
    error(404, "M_NOT_FOUND", message)
}

fn unknown_token() -> Answer {
    let message = "Unrecognised access token.";
    let body = json!({"errcode": "M_UNKNOWN_TOKEN", "error": message, "soft_logout": false});
    (401, body)
}

/// The answer a fault gives instead of the real one; `None` for `Timeout` (real answer, later).
fn fault_answer(fault: &Fault) -> Option<Answer> {
    Some(match fault {
        Fault::RateLimited { retry_after_ms } => (
            429,
            json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests",
                "retry_after_ms": retry_after_ms}),
        ),
        Fault::Status(status) => error(*status, "M_UNKNOWN", format!("fake fault: HTTP {status}")),
        Fault::Forbidden(message) => error(403, "M_FORBIDDEN", message),
        Fault::UnknownToken => unknown_token(),
        Fault::Timeout(_) | Fault::Pass => return None,
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Percent-decodes `text`; a `%` not followed by two hex digits stays as it is.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| bytes[i] == b'%' && h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        out.push(hex.unwrap_or(bytes[i]));
        i += if hex.is_some() { 3 } else { 1 };
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl State {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn membership(&self, room: &str, user: &str) -> Option<&str> {
        let key = ("m.room.member".to_owned(), user.to_owned());
        self.rooms.get(room)?.get(&key)?["content"]["membership"].as_str()
    }

    fn require_joined(&self, room: &str, actor: &str) -> Result<(), Answer> {
        match self.membership(room, actor) {
            Some("join") => Ok(()),
            _ => Err(forbidden(format!("User {actor} not in room {room}"))),
        }
    }

    fn put_state(
        &mut self,
        room: &str,
        sender: &str,
        kind: &str,
        key: &str,
        content: Value,
    ) -> String {
        let event_id = format!("$fake{}", self.next());
        let event = json!({"type": kind, "state_key": key, "content": content, "sender": sender,
            "room_id": room, "event_id": event_id, "origin_server_ts": now_ms()});
        let state = self.rooms.entry(room.to_owned()).or_default();
        state.insert((kind.to_owned(), key.to_owned()), event.clone());
        self.timelines
            .entry(room.to_owned())
            .or_default()
            .push(event);
        event_id
    }

    /// Appends a message-like event to the room's timeline; returns its id.
    fn append(
        &mut self,
        room: &str,
        sender: &str,
        kind: &str,
        content: Value,
        origin_server_ts: Option<u64>,
    ) -> String {
        let event_id = format!("$fake{}", self.next());
        let event = json!({"type": kind, "content": content, "sender": sender, "room_id": room,
            "event_id": event_id, "origin_server_ts": origin_server_ts.unwrap_or_else(now_ms)});
        self.timelines
            .entry(room.to_owned())
            .or_default()
            .push(event);
        event_id
    }

    /// `/messages` backwards from `from` (`t{n}`: before the n-th event; none: the newest), with
    /// the filter's `senders`; `end` is where the next page starts, absent at the start.
    fn messages(&self, room: &str, query: &str) -> Result<Value, Answer> {
        let params: HashMap<String, String> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), decode(&v.replace('+', " "))))
            .collect();
        if params.get("dir").map(String::as_str) != Some("b") {
            return Err(error(
                400,
                "M_INVALID_PARAM",
                "the fake pages backwards only",
            ));
        }
        let timeline = self
            .timelines
            .get(room)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let from = match params.get("from") {
            None => timeline.len(),
            Some(token) => token
                .strip_prefix('t')
                .and_then(|n| n.parse().ok())
                .filter(|n| *n <= timeline.len())
                .ok_or_else(|| error(400, "M_INVALID_PARAM", "Unknown token"))?,
        };
        let limit: usize = params
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(10);
        let filter: Value = params
            .get("filter")
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default();
        let senders: Option<Vec<&str>> = filter["senders"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect());
        let mut chunk = Vec::new();
        let mut next = 0;
        for index in (0..from).rev() {
            let event = &timeline[index];
            let sender = event["sender"].as_str().unwrap_or("");
            if senders.as_ref().is_some_and(|s| !s.contains(&sender)) {
                continue;
            }
            if chunk.len() == limit {
                next = index + 1;
                break;
            }
            chunk.push(event.clone());
        }
        let mut answer = json!({"start": format!("t{from}"), "chunk": chunk});
        if next > 0 {
            answer["end"] = format!("t{next}").into();
        }
        Ok(answer)
    }

    /// Redacts `target`: its content emptied and `unsigned.redacted_because` set; a txnId seen
    /// before answers with its redaction.
    fn redact(
        &mut self,
        actor: &str,
        room: &str,
        target: &str,
        txn: &str,
        reason: Option<String>,
    ) -> Result<Value, Answer> {
        let key = format!("{room}/redact/{target}/{txn}");
        if let Some(event_id) = self.txns.get(&key) {
            return Ok(json!({"event_id": event_id}));
        }
        self.require_joined(room, actor)?;
        let timeline = self
            .timelines
            .get(room)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !timeline.iter().any(|event| event["event_id"] == target) {
            return Err(not_found("Event not found."));
        }
        let mut content = json!({});
        if let Some(reason) = reason {
            content["reason"] = reason.into();
        }
        let redaction_id = self.append(room, actor, "m.room.redaction", content.clone(), None);
        let timeline = self.timelines.entry(room.to_owned()).or_default();
        if let Some(redaction) = timeline.last_mut() {
            redaction["redacts"] = target.into();
        }
        let because = timeline.last().cloned().unwrap_or_default();
        if let Some(event) = timeline
            .iter_mut()
            .find(|event| event["event_id"] == target)
        {
            event["content"] = json!({});
            event["unsigned"] = json!({"redacted_because": because});
        }
        self.txns.insert(key, redaction_id.clone());
        Ok(json!({"event_id": redaction_id}))
    }

    /// The un-faulted answer: token, identity assertion, then the endpoint itself.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        endpoint: Endpoint,
        method: &str,
        rest: &[&str],
        query: &str,
        token: Option<&str>,
        asserted: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, Answer> {
        use Endpoint as E;
        if endpoint == E::Other {
            return Err(error(404, "M_UNRECOGNIZED", "Unrecognized request"));
        }
        let human = token.and_then(|token| self.user_tokens.get(token)).cloned();
        match token {
            None if endpoint == E::Versions => {}
            None => return Err(error(401, "M_MISSING_TOKEN", "Missing access token.")),
            Some(_) if human.is_some() => {}
            Some(token) if token != self.as_token || !self.token_accepted => {
                return Err(unknown_token());
            }
            Some(_) => {}
        }
        let body = body.ok_or_else(|| error(400, "M_NOT_JSON", "Content not JSON."))?;
        let actor = human.unwrap_or_else(|| asserted.unwrap_or(&self.sender).to_owned());
        if !matches!(endpoint, E::Versions | E::Register) && !self.users.contains_key(&actor) {
            let message = format!("Application service has not registered this user ({actor})");
            return Err(forbidden(message));
        }
        let text = |key: &str| body[key].as_str().map(str::to_owned);
        let missing = |key: &str| error(400, "M_MISSING_PARAM", format!("Missing {key}"));
        match (endpoint, method, rest) {
            (E::Versions, "GET", _) => {
                let versions: Vec<String> = (1..=12).map(|minor| format!("v1.{minor}")).collect();
                Ok(json!({"versions": versions, "unstable_features": {}}))
            }
            (E::WhoAmI, "GET", _) => Ok(json!({"user_id": actor, "is_guest": false})),
            (E::Register, "POST", _) => self.register(&body),
            (E::Ping, "POST", _) => Ok(json!({"duration_ms": 1})),
            (E::CreateRoom, "POST", _) => self.create_room(&actor, &body),
            (E::Join, "POST", ["v3", "join", target] | ["v3", "rooms", target, "join"]) => {
                self.join(&actor, target)
            }
            (E::Invite | E::Kick, "POST", ["v3", "rooms", room, verb]) => {
                self.require_joined(room, &actor)?;
                let target = text("user_id").ok_or_else(|| missing("user_id"))?;
                let current = self.membership(room, &target);
                if *verb == "invite" && current == Some("join") {
                    return Err(forbidden(format!("{target} is already in the room.")));
                }
                if *verb == "kick" && !matches!(current, Some("join" | "invite")) {
                    return Err(forbidden("The target user is not in the room"));
                }
                let membership = if *verb == "invite" { "invite" } else { "leave" };
                let mut content = json!({"membership": membership});
                if let Some(reason) = text("reason") {
                    content["reason"] = reason.into();
                }
                self.put_state(room, &actor, "m.room.member", &target, content);
                Ok(json!({}))
            }
            (E::Leave, "POST", ["v3", "rooms", room, _]) => {
                if !self.rooms.contains_key(*room) {
                    return Err(not_found(format!("Unknown room {room}")));
                }
                let content = json!({"membership": "leave"});
                self.put_state(room, &actor, "m.room.member", &actor, content);
                Ok(json!({}))
            }
            (E::Forget, "POST", ["v3", "rooms", room, _]) => match self.membership(room, &actor) {
                Some("leave" | "ban") => Ok(json!({})),
                Some(_) => Err(error(
                    400,
                    "M_UNKNOWN",
                    format!("User {actor} in room {room}"),
                )),
                None => Err(forbidden(format!(
                    "User {actor} has no membership in {room}"
                ))),
            },
            (E::SetState, "PUT", ["v3", "rooms", room, "state", kind, key @ ..]) => {
                self.require_joined(room, &actor)?;
                let event_id = self.put_state(room, &actor, kind, &key.concat(), body.clone());
                Ok(json!({"event_id": event_id}))
            }
            (E::GetState, "GET", ["v3", "rooms", room, "state"]) => {
                self.require_joined(room, &actor)?;
                Ok(self.rooms[*room].values().cloned().collect())
            }
            (E::GetState, "GET", ["v3", "rooms", room, "state", kind, key @ ..]) => {
                self.require_joined(room, &actor)?;
                let key = (kind.to_string(), key.concat());
                let event = self.rooms[*room]
                    .get(&key)
                    .ok_or(not_found("Event not found."))?;
                Ok(event["content"].clone())
            }
            (E::SendMessage, "PUT", ["v3", "rooms", room, "send", kind, txn]) => {
                let key = format!("{room}/{kind}/{txn}");
                if let Some(event_id) = self.txns.get(&key) {
                    return Ok(json!({"event_id": event_id}));
                }
                self.require_joined(room, &actor)?;
                let event_id = self.append(room, &actor, kind, body.clone(), None);
                self.txns.insert(key, event_id.clone());
                Ok(json!({"event_id": event_id}))
            }
            (E::GetEvent, "GET", ["v3", "rooms", room, "event", event_id]) => {
                self.require_joined(room, &actor)?;
                self.timelines
                    .get(*room)
                    .and_then(|timeline| timeline.iter().find(|e| e["event_id"] == *event_id))
                    .cloned()
                    .ok_or_else(|| not_found("Event not found."))
            }
            (E::Report, "POST", _) => Ok(json!({})),
            (E::Messages, "GET", ["v3", "rooms", room, "messages"]) => {
                self.require_joined(room, &actor)?;
                self.messages(room, query)
            }
            (E::Redact, "PUT", ["v3", "rooms", room, "redact", target, txn]) => {
                self.redact(&actor, room, target, txn, text("reason"))
            }
            (E::DirectoryAlias, _, [.., alias]) => {
                let alias = alias.to_string();
                match (method, self.aliases.get(&alias)) {
                    ("GET", Some(room)) => {
                        Ok(json!({"room_id": room, "servers": [self.server_name]}))
                    }
                    ("PUT", Some(_)) => Err(error(
                        409,
                        "M_UNKNOWN",
                        format!("Room alias {alias} already exists"),
                    )),
                    ("PUT", None) => {
                        let room = text("room_id").ok_or_else(|| missing("room_id"))?;
                        self.aliases.insert(alias, room);
                        Ok(json!({}))
                    }
                    ("DELETE", Some(_)) => {
                        self.aliases.remove(&alias);
                        Ok(json!({}))
                    }
                    ("GET" | "DELETE", None) => {
                        Err(not_found(format!("Room alias {alias} not found")))
                    }
                    _ => Err(error(405, "M_UNRECOGNIZED", "Unrecognized request")),
                }
            }
            (E::DirectoryList, _, [.., room]) if !self.rooms.contains_key(*room) => {
                Err(not_found("Unknown room"))
            }
            (E::DirectoryList, "GET", [.., room]) => {
                let listed = self.published.contains(*room);
                Ok(json!({"visibility": if listed { "public" } else { "private" }}))
            }
            (E::DirectoryList, "PUT", [.., room]) => {
                if body["visibility"] == "public" {
                    self.published.insert(room.to_string());
                } else {
                    self.published.remove(*room);
                }
                Ok(json!({}))
            }
            (E::NetworkList, "PUT", [.., network, room]) => {
                let entry = (network.to_string(), room.to_string());
                if body["visibility"] == "public" {
                    self.network_listed.insert(entry);
                } else {
                    self.network_listed.remove(&entry);
                }
                Ok(json!({}))
            }
            (E::Profile, "PUT", ["v3", "profile", user, "displayname"]) => {
                if *user != actor {
                    return Err(forbidden("Cannot set another user's displayname"));
                }
                self.users.insert(actor, text("displayname"));
                Ok(json!({}))
            }
            (E::Profile, "GET", ["v3", "profile", user, ..]) => match self.users.get(*user) {
                Some(name) => Ok(json!({"displayname": name})),
                None => Err(not_found("Profile was not found")),
            },
            _ => Err(error(405, "M_UNRECOGNIZED", "Unrecognized request")),
        }
    }

    /// `m.login.application_service` registration: the user the first time, `M_USER_IN_USE` after.
    fn register(&mut self, body: &Value) -> Result<Value, Answer> {
        if body["type"] != "m.login.application_service" {
            let message = "An access token should not be provided on requests to /register (except if type is m.login.application_service)";
            return Err(error(400, "M_UNKNOWN", message));
        }
        let localpart = body["username"].as_str().unwrap_or("");
        let valid = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-/+".contains(&b);
        if localpart.is_empty() || !localpart.bytes().all(valid) {
            let message = "User ID can only contain characters a-z, 0-9, or '=_-./+'";
            return Err(error(400, "M_INVALID_USERNAME", message));
        }
        let user_id = format!("@{localpart}:{}", self.server_name);
        if self.users.contains_key(&user_id) {
            return Err(error(400, "M_USER_IN_USE", "User ID already taken."));
        }
        self.users.insert(user_id.clone(), None);
        Ok(json!({"user_id": user_id, "home_server": self.server_name}))
    }

    /// Creates the room's state roughly in Synapse's order; the creator (`actor`) is joined.
    fn create_room(&mut self, actor: &str, body: &Value) -> Result<Value, Answer> {
        let server = self.server_name.clone();
        let alias = body["room_alias_name"]
            .as_str()
            .map(|name| format!("#{name}:{server}"));
        if alias
            .as_ref()
            .is_some_and(|alias| self.aliases.contains_key(alias))
        {
            return Err(error(400, "M_ROOM_IN_USE", "Room alias already taken"));
        }
        let room = format!("!fake{}:{server}", self.next());
        let version = body["room_version"].as_str().unwrap_or("12");
        let mut put = |kind: &str, key: &str, content: Value| {
            self.put_state(&room, actor, kind, key, content);
        };
        put("m.room.create", "", json!({"room_version": version}));
        put("m.room.member", actor, json!({"membership": "join"}));
        let mut levels = json!({"users": {}, "users_default": 0, "events_default": 0,
            "state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0});
        if version != "12" {
            levels["users"][actor] = 100.into(); // v12 creators are not listed: unlimited power
        }
        if let (Some(levels), Some(chosen)) = (
            levels.as_object_mut(),
            body["power_level_content_override"].as_object(),
        ) {
            levels.extend(chosen.clone());
        }
        put("m.room.power_levels", "", levels);
        if let Some(alias) = &alias {
            put("m.room.canonical_alias", "", json!({"alias": alias}));
        }
        // The `public_chat` preset (the default for public visibility), else `private_chat`.
        let preset = body["preset"].as_str();
        let public = preset.map_or(body["visibility"] == "public", |p| p == "public_chat");
        let rule = if public { "public" } else { "invite" };
        put("m.room.join_rules", "", json!({"join_rule": rule}));
        let shared = json!({"history_visibility": "shared"});
        put("m.room.history_visibility", "", shared);
        if !public {
            put(
                "m.room.guest_access",
                "",
                json!({"guest_access": "can_join"}),
            );
        }
        for event in body["initial_state"].as_array().into_iter().flatten() {
            let (kind, key) = (&event["type"], &event["state_key"]);
            let content = event["content"].clone();
            put(
                kind.as_str().unwrap_or(""),
                key.as_str().unwrap_or(""),
                content,
            );
        }
        if let Some(name) = body["name"].as_str() {
            put("m.room.name", "", json!({"name": name}));
        }
        if let Some(topic) = body["topic"].as_str() {
            put("m.room.topic", "", json!({"topic": topic}));
        }
        let invites = body["invite"].as_array().into_iter().flatten();
        for user in invites.filter_map(Value::as_str) {
            put("m.room.member", user, json!({"membership": "invite"}));
        }
        if let Some(alias) = alias {
            self.aliases.insert(alias, room.clone());
        }
        if body["visibility"] == "public" {
            self.published.insert(room.clone());
        }
        Ok(json!({"room_id": room}))
    }

    /// Joins by id or alias: public rooms, or rooms the actor is invited to (or already in).
    fn join(&mut self, actor: &str, target: &str) -> Result<Value, Answer> {
        let room = match self.aliases.get(target) {
            Some(room) => room.clone(),
            None if target.starts_with('#') => return Err(not_found("Room alias not found")),
            None => target.to_owned(),
        };
        let state = self.rooms.get(&room).ok_or(not_found("No known servers"))?;
        let rule = state.get(&("m.room.join_rules".into(), String::new()));
        let public = rule.is_some_and(|e| e["content"]["join_rule"] == "public");
        let membership = self.membership(&room, actor);
        if !public && !matches!(membership, Some("join" | "invite")) {
            return Err(forbidden("You are not invited to this room."));
        }
        if membership != Some("join") {
            let joined = json!({"membership": "join"});
            self.put_state(&room, actor, "m.room.member", actor, joined);
        }
        Ok(json!({"room_id": room}))
    }
}
