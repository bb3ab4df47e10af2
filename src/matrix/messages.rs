//! `PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}` as a tenant's bot.
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid>

use ruma::api::client::message::send_message_event;
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{OwnedEventId, RoomId, TransactionId, UserId};

use super::{Client, Error};

impl Client {
    /// Sends `content` into `room_id` as `bot` under `txn_id`; returns the event's id. The same
    /// `txn_id` sent again (a retry) returns the first event's id and sends nothing new: Synapse
    /// deduplicates per appservice and path, so the id must be unique across the bots too.
    pub async fn send_message(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        txn_id: &TransactionId,
        content: &RoomMessageEventContent,
    ) -> Result<OwnedEventId, Error> {
        let request =
            send_message_event::v3::Request::new(room_id.to_owned(), txn_id.to_owned(), content)
                .map_err(|error| Error::Request(format!("message content: {error}")))?;
        Ok(self.send(request, Some(bot)).await?.event_id)
    }
}
