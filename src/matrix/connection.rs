//! What a job asks of a homeserver about one room, as a trait: [`Client`] speaks it over HTTP, and
//! a job's unit tests give it an in-memory homeserver, so its decisions (which calls, in which
//! order, what when one fails) are tested without a daemon or a Synapse (`memory.rs`). It holds the
//! operations of the jobs that act in one room: `ensure_room`'s steps (creation, settings,
//! directory, bans, members, power levels), `teardown_room` and `redact_user`.

use ruma::{OwnedEventId, OwnedRoomAliasId, OwnedRoomId, OwnedTransactionId, RoomId, UserId};
use serde_json::Value;

use super::{Client, Error, RoomState, SenderPage};

/// A homeserver as a job acting in a room sees it; every call acts as `bot`.
#[allow(
    async_fn_in_trait,
    reason = "used by the crate's own jobs, never as a trait object"
)]
pub trait RoomConnection {
    async fn create_room(&self, bot: &UserId, body: Value) -> Result<OwnedRoomId, Error>;
    async fn resolve_alias(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
    ) -> Result<Option<OwnedRoomId>, Error>;
    async fn ensure_alias(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
        room_id: &RoomId,
    ) -> Result<(), Error>;
    async fn ensure_alias_removed(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
    ) -> Result<(), Error>;
    async fn room_state(&self, bot: &UserId, room_id: &RoomId) -> Result<RoomState, Error>;
    async fn set_state(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        event_type: &str,
        state_key: &str,
        content: &Value,
    ) -> Result<(), Error>;
    async fn is_published(&self, room_id: &RoomId) -> Result<bool, Error>;
    async fn set_published(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        published: bool,
    ) -> Result<(), Error>;
    async fn set_listed_in_network(
        &self,
        bot: &UserId,
        network_id: &str,
        room_id: &RoomId,
        listed: bool,
    ) -> Result<(), Error>;
    async fn kick(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error>;
    async fn invite(&self, bot: &UserId, room_id: &RoomId, user_id: &UserId) -> Result<(), Error>;
    async fn ban(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error>;
    async fn unban(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error>;
    async fn ensure_left_and_forgotten(&self, bot: &UserId, room_id: &RoomId) -> Result<(), Error>;
    async fn events_by_sender(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        sender: &UserId,
        from: Option<String>,
        limit: u32,
    ) -> Result<SenderPage, Error>;
    async fn redact(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        event_id: &OwnedEventId,
        txn_id: OwnedTransactionId,
        reason: &str,
    ) -> Result<OwnedEventId, Error>;
}

impl RoomConnection for Client {
    async fn create_room(&self, bot: &UserId, body: Value) -> Result<OwnedRoomId, Error> {
        Client::create_room(self, bot, body).await
    }

    async fn resolve_alias(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
    ) -> Result<Option<OwnedRoomId>, Error> {
        Client::resolve_alias(self, bot, alias).await
    }

    async fn ensure_alias(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
        room_id: &RoomId,
    ) -> Result<(), Error> {
        Client::ensure_alias(self, bot, alias, room_id).await
    }

    async fn ensure_alias_removed(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
    ) -> Result<(), Error> {
        Client::ensure_alias_removed(self, bot, alias).await
    }

    async fn room_state(&self, bot: &UserId, room_id: &RoomId) -> Result<RoomState, Error> {
        Client::room_state(self, bot, room_id).await
    }

    async fn set_state(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        event_type: &str,
        state_key: &str,
        content: &Value,
    ) -> Result<(), Error> {
        Client::set_state(self, bot, room_id, event_type, state_key, content).await
    }

    async fn is_published(&self, room_id: &RoomId) -> Result<bool, Error> {
        Client::is_published(self, room_id).await
    }

    async fn set_published(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        published: bool,
    ) -> Result<(), Error> {
        Client::set_published(self, bot, room_id, published).await
    }

    async fn set_listed_in_network(
        &self,
        bot: &UserId,
        network_id: &str,
        room_id: &RoomId,
        listed: bool,
    ) -> Result<(), Error> {
        Client::set_listed_in_network(self, bot, network_id, room_id, listed).await
    }

    async fn kick(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error> {
        Client::kick(self, bot, room_id, user_id, reason).await
    }

    async fn ensure_left_and_forgotten(&self, bot: &UserId, room_id: &RoomId) -> Result<(), Error> {
        Client::ensure_left_and_forgotten(self, bot, room_id).await
    }

    async fn invite(&self, bot: &UserId, room_id: &RoomId, user_id: &UserId) -> Result<(), Error> {
        Client::invite(self, bot, room_id, user_id).await
    }

    async fn ban(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error> {
        Client::ban(self, bot, room_id, user_id, reason).await
    }

    async fn unban(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error> {
        Client::unban(self, bot, room_id, user_id, reason).await
    }

    async fn events_by_sender(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        sender: &UserId,
        from: Option<String>,
        limit: u32,
    ) -> Result<SenderPage, Error> {
        Client::events_by_sender(self, bot, room_id, sender, from, limit).await
    }

    async fn redact(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        event_id: &OwnedEventId,
        txn_id: OwnedTransactionId,
        reason: &str,
    ) -> Result<OwnedEventId, Error> {
        Client::redact(self, bot, room_id, event_id, txn_id, reason).await
    }
}
