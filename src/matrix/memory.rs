//! An in-memory homeserver for the jobs' unit tests: one room's aliases, directory listings, state,
//! members and timeline, a [`RoomConnection`] that changes them as Synapse would (creation from a
//! `createRoom` body, an alias taken, a ban's sender, a redaction's txnId), and a fault that fails
//! one call before or after it takes effect (a request lost, or its answer lost).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use ruma::{OwnedEventId, OwnedRoomAliasId, OwnedRoomId, OwnedTransactionId, RoomId, UserId};
use serde_json::{Value, json};

use super::{Error, RoomConnection, RoomState, SenderPage};

/// The id `createRoom` gives the room.
pub const CREATED: &str = "!created:hs.test";

/// Where a call fails: before it takes effect (the request never arrived), or after (the
/// answer was lost); or where the homeserver's rate limit refuses it (429 `M_LIMIT_EXCEEDED` with
/// `retry_after_ms`, taking no effect).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    Before(usize),
    After(usize),
    Limited(usize, Duration),
}

/// One event of the room's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub sender: String,
    pub event_type: String,
    pub origin_server_ts: i64,
    pub state: bool,
    /// The redactions that took effect on it.
    pub redactions: usize,
}

/// One homeserver with the room a job works on, in memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct World {
    pub aliases: BTreeMap<String, OwnedRoomId>,
    /// The networks (tenants) whose appservice room list holds the room.
    pub listed: BTreeSet<String>,
    /// In the server-wide directory.
    pub published: bool,
    /// Publishing server-wide is refused, as Synapse's default `room_list_publication_rules` do.
    pub refuse_publication: bool,
    /// State events with an empty state key, by type (`m.room.create`'s sender is `creator`).
    pub state: BTreeMap<String, Value>,
    pub creator: Option<String>,
    pub members: BTreeMap<String, String>,
    /// Who banned each banned member.
    pub banned_by: BTreeMap<String, String>,
    /// Each member's kicks that took effect.
    pub kicks: BTreeMap<String, usize>,
    /// Members the bot may not kick or ban (their level is the bot's own, before room version 12).
    pub unkickable: BTreeSet<String>,
    /// The rooms `createRoom` made.
    pub creations: usize,
    /// Each `PUT` of a state event that took effect, by type.
    pub writes: Vec<String>,
    /// Newest first.
    pub timeline: Vec<Event>,
    /// The redaction each txnId made.
    pub txns: BTreeMap<String, String>,
}

impl World {
    /// A room `bot` created in room version `version`, with `bot` joined.
    pub fn created_by(bot: &str, version: &str) -> Self {
        let mut world = World {
            creator: Some(bot.to_owned()),
            ..World::default()
        };
        (world.state).insert("m.room.create".into(), json!({"room_version": version}));
        world.members.insert(bot.to_owned(), "join".into());
        world
    }

    pub fn membership(&self, user: &str) -> Option<&str> {
        self.members.get(user).map(String::as_str)
    }
}

pub struct Homeserver {
    world: Mutex<World>,
    calls: Mutex<usize>,
    fault: Option<Fault>,
}

impl Homeserver {
    pub fn new(world: World, fault: Option<Fault>) -> Self {
        Self {
            world: Mutex::new(world),
            calls: Mutex::new(0),
            fault,
        }
    }

    /// Runs `effect` on the world as call number n would, failing where the fault says.
    fn call<T>(&self, effect: impl FnOnce(&mut World) -> Result<T, Error>) -> Result<T, Error> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls - 1
        };
        let lost = Error::Timeout(Duration::from_secs(30));
        match self.fault {
            Some(Fault::Before(at)) if at == n => return Err(lost),
            Some(Fault::Limited(at, retry_after)) if at == n => return Err(limited(retry_after)),
            _ => {}
        }
        let result = effect(&mut self.world.lock().unwrap());
        if self.fault == Some(Fault::After(n)) {
            return Err(lost);
        }
        result
    }

    pub fn world(&self) -> World {
        self.world.lock().unwrap().clone()
    }

    pub fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

pub fn forbidden() -> Error {
    Error::from_response(
        403,
        None,
        br#"{"errcode":"M_FORBIDDEN","error":"not in the room"}"#,
    )
}

/// Synapse's answer when a rate limit refuses a call.
pub fn limited(retry_after: Duration) -> Error {
    let body = json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": retry_after.as_millis() as u64});
    Error::from_response(429, None, body.to_string().as_bytes())
}

fn error(status: u16, errcode: &str, message: &str) -> Error {
    let body = json!({"errcode": errcode, "error": message}).to_string();
    Error::from_response(status, None, body.as_bytes())
}

impl RoomConnection for Homeserver {
    async fn create_room(&self, bot: &UserId, body: Value) -> Result<OwnedRoomId, Error> {
        self.call(|w| {
            let server = bot.server_name();
            let alias =
                (body["room_alias_name"].as_str()).map(|local| format!("#{local}:{server}"));
            if let Some(alias) = alias.as_ref().filter(|a| w.aliases.contains_key(*a)) {
                return Err(error(400, "M_ROOM_IN_USE", &format!("{alias} is taken")));
            }
            let version = body["room_version"].as_str().unwrap_or("12");
            *w = World {
                aliases: std::mem::take(&mut w.aliases),
                refuse_publication: w.refuse_publication,
                unkickable: std::mem::take(&mut w.unkickable),
                creations: w.creations + 1,
                ..World::created_by(bot.as_str(), version)
            };
            let join_rule = match body["preset"].as_str() {
                Some("public_chat") => "public",
                _ => "invite",
            };
            w.state
                .insert("m.room.join_rules".into(), json!({"join_rule": join_rule}));
            for (key, event_type) in [("name", "m.room.name"), ("topic", "m.room.topic")] {
                if let Some(value) = body.get(key) {
                    w.state.insert(event_type.into(), json!({key: value}));
                }
            }
            for event in body["initial_state"].as_array().into_iter().flatten() {
                let event_type = event["type"].as_str().unwrap_or_default();
                w.state.insert(event_type.into(), event["content"].clone());
            }
            let mut levels = json!({"users": {}, "users_default": 0, "events_default": 0});
            if version != "12" {
                levels["users"][bot.as_str()] = json!(100);
            }
            if let Some(Value::Object(extra)) = body.get("power_level_content_override") {
                for (key, value) in extra {
                    levels[key] = value.clone();
                }
            }
            w.state.insert("m.room.power_levels".into(), levels);
            if let Some(alias) = alias {
                w.aliases.insert(alias.clone(), CREATED.try_into().unwrap());
                w.state
                    .insert("m.room.canonical_alias".into(), json!({"alias": alias}));
            }
            Ok(CREATED.try_into().unwrap())
        })
    }

    async fn resolve_alias(
        &self,
        _: &UserId,
        alias: OwnedRoomAliasId,
    ) -> Result<Option<OwnedRoomId>, Error> {
        self.call(|w| Ok(w.aliases.get(alias.as_str()).cloned()))
    }

    async fn ensure_alias(
        &self,
        _: &UserId,
        alias: OwnedRoomAliasId,
        room_id: &RoomId,
    ) -> Result<(), Error> {
        self.call(|w| {
            w.aliases
                .entry(alias.to_string())
                .or_insert(room_id.to_owned());
            Ok(())
        })
    }

    async fn ensure_alias_removed(&self, _: &UserId, alias: OwnedRoomAliasId) -> Result<(), Error> {
        self.call(|w| {
            w.aliases.remove(alias.as_str());
            Ok(())
        })
    }

    async fn room_state(&self, bot: &UserId, _: &RoomId) -> Result<RoomState, Error> {
        self.call(|w| {
            if w.membership(bot.as_str()) != Some("join") {
                return Err(forbidden());
            }
            let creator = w.creator.clone().unwrap_or_default();
            let mut events: Vec<Value> = (w.state.iter())
                .map(|(t, content)| {
                    json!({"type": t, "state_key": "", "content": content, "sender": creator})
                })
                .collect();
            events.extend(w.members.iter().map(|(user, membership)| {
                let sender = w.banned_by.get(user).unwrap_or(user);
                json!({"type": "m.room.member", "state_key": user,
                       "content": {"membership": membership}, "sender": sender})
            }));
            Ok(RoomState { events })
        })
    }

    async fn set_state(
        &self,
        _: &UserId,
        _: &RoomId,
        event_type: &str,
        _: &str,
        content: &Value,
    ) -> Result<(), Error> {
        self.call(|w| {
            w.state.insert(event_type.to_owned(), content.clone());
            w.writes.push(event_type.to_owned());
            Ok(())
        })
    }

    async fn is_published(&self, _: &RoomId) -> Result<bool, Error> {
        self.call(|w| Ok(w.published))
    }

    async fn set_published(&self, _: &UserId, _: &RoomId, published: bool) -> Result<(), Error> {
        self.call(|w| {
            if published && w.refuse_publication {
                return Err(error(403, "M_UNKNOWN", "Not allowed to publish room"));
            }
            w.published = published;
            Ok(())
        })
    }

    async fn set_listed_in_network(
        &self,
        _: &UserId,
        network_id: &str,
        _: &RoomId,
        listed: bool,
    ) -> Result<(), Error> {
        self.call(|w| {
            if listed {
                w.listed.insert(network_id.to_owned());
            } else {
                w.listed.remove(network_id);
            }
            Ok(())
        })
    }

    async fn kick(&self, _: &UserId, _: &RoomId, user: &UserId, _: &str) -> Result<(), Error> {
        self.call(|w| {
            if w.unkickable.contains(user.as_str()) {
                return Err(forbidden());
            }
            w.members.insert(user.to_string(), "leave".into());
            *w.kicks.entry(user.to_string()).or_default() += 1;
            Ok(())
        })
    }

    async fn invite(&self, _: &UserId, _: &RoomId, user: &UserId) -> Result<(), Error> {
        self.call(|w| match w.membership(user.as_str()) {
            Some("ban") => Err(error(403, "M_FORBIDDEN", "user is banned from the room")),
            Some("join" | "invite") => Ok(()),
            _ => {
                w.members.insert(user.to_string(), "invite".into());
                Ok(())
            }
        })
    }

    async fn ban(&self, bot: &UserId, _: &RoomId, user: &UserId, _: &str) -> Result<(), Error> {
        self.call(|w| {
            if w.unkickable.contains(user.as_str()) {
                return Err(forbidden());
            }
            w.members.insert(user.to_string(), "ban".into());
            w.banned_by.insert(user.to_string(), bot.to_string());
            Ok(())
        })
    }

    async fn unban(&self, _: &UserId, _: &RoomId, user: &UserId, _: &str) -> Result<(), Error> {
        self.call(|w| {
            if w.membership(user.as_str()) == Some("ban") {
                w.members.insert(user.to_string(), "leave".into());
                w.banned_by.remove(user.as_str());
            }
            Ok(())
        })
    }

    async fn ensure_left_and_forgotten(&self, bot: &UserId, _: &RoomId) -> Result<(), Error> {
        self.call(|w| {
            w.members.insert(bot.to_string(), "leave".into());
            Ok(())
        })
    }

    /// Pages of `limit` events; a page's token is the index of its first event among the sender's.
    async fn events_by_sender(
        &self,
        _: &UserId,
        _: &RoomId,
        sender: &UserId,
        from: Option<String>,
        limit: u32,
    ) -> Result<SenderPage, Error> {
        self.call(|w| {
            let theirs: Vec<&Event> = (w.timeline.iter())
                .filter(|e| e.sender == sender.as_str())
                .collect();
            let start: usize = from.map_or(0, |from| from.parse().unwrap());
            let end = (start + limit as usize).min(theirs.len());
            let events = theirs[start..end]
                .iter()
                .map(|e| {
                    let mut event = json!({"event_id": e.event_id, "sender": e.sender,
                        "type": e.event_type, "origin_server_ts": e.origin_server_ts});
                    if e.state {
                        event["state_key"] = json!("");
                    }
                    if e.redactions > 0 {
                        event["unsigned"] = json!({"redacted_because": {}});
                    }
                    serde_json::from_value(event).unwrap()
                })
                .collect();
            let end = (end < theirs.len()).then(|| end.to_string());
            Ok(SenderPage { events, end })
        })
    }

    async fn redact(
        &self,
        _: &UserId,
        _: &RoomId,
        event_id: &OwnedEventId,
        txn_id: OwnedTransactionId,
        _: &str,
    ) -> Result<OwnedEventId, Error> {
        self.call(|w| {
            if let Some(redaction) = w.txns.get(txn_id.as_str()) {
                return Ok(redaction.as_str().try_into().unwrap());
            }
            let event = (w.timeline.iter_mut())
                .find(|e| e.event_id == event_id.as_str())
                .ok_or_else(|| error(404, "M_NOT_FOUND", "no such event"))?;
            event.redactions += 1;
            let redaction = format!("$redaction{}", w.txns.len());
            w.txns.insert(txn_id.to_string(), redaction.clone());
            Ok(redaction.try_into().unwrap())
        })
    }
}
