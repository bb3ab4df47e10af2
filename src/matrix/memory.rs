//! An in-memory homeserver for the jobs' unit tests: one room's aliases, directory listings, state
//! and members, a [`RoomConnection`] that changes them as Synapse would, and a fault that fails one
//! call before or after it takes effect (a request lost, or its answer lost).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use ruma::{OwnedRoomAliasId, OwnedRoomId, RoomId, UserId};
use serde_json::{Value, json};

use super::{Error, RoomConnection, RoomState};

/// Where a call fails: before it takes effect (the request never arrived), or after (the
/// answer was lost).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    Before(usize),
    After(usize),
}

/// One homeserver with the room under teardown, in memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct World {
    pub aliases: BTreeMap<String, OwnedRoomId>,
    /// The networks (tenants) whose appservice room list holds the room.
    pub listed: BTreeSet<String>,
    /// In the server-wide directory.
    pub published: bool,
    /// Publishing server-wide is refused, as Synapse's default `room_list_publication_rules` do.
    pub refuse_publication: bool,
    pub state: BTreeMap<String, Value>,
    pub members: BTreeMap<String, String>,
    /// Each member's kicks that took effect.
    pub kicks: BTreeMap<String, usize>,
    /// Members the bot may not kick (their level is the bot's own, before room version 12).
    pub unkickable: BTreeSet<String>,
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
        if self.fault == Some(Fault::Before(n)) {
            return Err(lost);
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

impl RoomConnection for Homeserver {
    async fn resolve_alias(
        &self,
        _: &UserId,
        alias: OwnedRoomAliasId,
    ) -> Result<Option<OwnedRoomId>, Error> {
        self.call(|w| Ok(w.aliases.get(alias.as_str()).cloned()))
    }

    async fn ensure_alias_removed(&self, _: &UserId, alias: OwnedRoomAliasId) -> Result<(), Error> {
        self.call(|w| {
            w.aliases.remove(alias.as_str());
            Ok(())
        })
    }

    async fn room_state(&self, bot: &UserId, _: &RoomId) -> Result<RoomState, Error> {
        self.call(|w| {
            if w.members.get(bot.as_str()).map(String::as_str) != Some("join") {
                return Err(forbidden());
            }
            let mut events: Vec<Value> = (w.state.iter())
                .map(|(t, content)| json!({"type": t, "state_key": "", "content": content}))
                .collect();
            events.extend(w.members.iter().map(|(user, membership)| {
                json!({"type": "m.room.member", "state_key": user,
                       "content": {"membership": membership}})
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
            Ok(())
        })
    }

    async fn is_published(&self, _: &RoomId) -> Result<bool, Error> {
        self.call(|w| Ok(w.published))
    }

    async fn set_published(&self, _: &UserId, _: &RoomId, published: bool) -> Result<(), Error> {
        self.call(|w| {
            if published && w.refuse_publication {
                return Err(Error::from_response(
                    403,
                    None,
                    br#"{"errcode":"M_UNKNOWN","error":"Not allowed to publish room"}"#,
                ));
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

    async fn ensure_left_and_forgotten(&self, bot: &UserId, _: &RoomId) -> Result<(), Error> {
        self.call(|w| {
            w.members.insert(bot.to_string(), "leave".into());
            Ok(())
        })
    }
}
