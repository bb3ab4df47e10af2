//! A user's events in a room, newest first, and their redaction, as a tenant's bot:
//! `GET /_matrix/client/v3/rooms/{roomId}/messages` (`dir=b`, a `RoomEventFilter` with `senders`)
//! and `PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}`.
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3roomsroomidmessages>,
//! <https://spec.matrix.org/v1.19/client-server-api/#put_matrixclientv3roomsroomidredacteventidtxnid>

use ruma::api::client::filter::RoomEventFilter;
use ruma::api::client::message::get_message_events;
use ruma::api::client::redact::redact_event;
use ruma::{OwnedEventId, OwnedTransactionId, OwnedUserId, RoomId, UInt, UserId};
use serde::Deserialize;

use super::{Client, Error};

/// One page of a sender's events, newest first.
pub struct SenderPage {
    pub events: Vec<TimelineEvent>,
    /// Where the next (older) page starts; `None` at the start of the room (or of what the bot
    /// may see).
    pub end: Option<String>,
}

/// What deciding on a redaction needs of an event: its envelope, never its content.
#[derive(Debug, Clone, Deserialize)]
pub struct TimelineEvent {
    pub event_id: OwnedEventId,
    pub sender: OwnedUserId,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix ms, as the sender's server stamped it.
    pub origin_server_ts: i64,
    state_key: Option<serde_json::Value>,
    #[serde(default)]
    unsigned: Unsigned,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Unsigned {
    redacted_because: Option<serde_json::Value>,
}

impl TimelineEvent {
    /// A state event (membership, power levels, name…): redacting it would change the room.
    pub fn is_state(&self) -> bool {
        self.state_key.is_some()
    }

    /// Already redacted (by anyone): the server answers it with `unsigned.redacted_because`.
    pub fn is_redacted(&self) -> bool {
        self.unsigned.redacted_because.is_some()
    }
}

impl Client {
    /// The page of `sender`'s events in `room_id` starting at `from` (`None`: the newest) and
    /// going back, at most `limit`, as `bot` sees them. Events that cannot be read as an envelope
    /// are left out.
    pub async fn events_by_sender(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        sender: &UserId,
        from: Option<String>,
        limit: u32,
    ) -> Result<SenderPage, Error> {
        let mut filter = RoomEventFilter::default();
        filter.senders = Some(vec![sender.to_owned()]);
        let mut request = get_message_events::v3::Request::backward(room_id.to_owned()).from(from);
        request.limit = UInt::from(limit);
        request.filter = filter;
        let response = self.send(request, Some(bot)).await?;
        let events = response
            .chunk
            .iter()
            .filter_map(|raw| raw.deserialize_as_unchecked::<TimelineEvent>().ok())
            .collect();
        Ok(SenderPage {
            events,
            end: response.end,
        })
    }

    /// Redacts `event_id` as `bot` with `reason`. A repeated `txn_id` is the same redaction: the
    /// server answers with the first one's event.
    pub async fn redact(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        event_id: &OwnedEventId,
        txn_id: OwnedTransactionId,
        reason: &str,
    ) -> Result<OwnedEventId, Error> {
        let mut request =
            redact_event::v3::Request::new(room_id.to_owned(), event_id.clone(), txn_id);
        request.reason = Some(reason.to_owned());
        Ok(self.send(request, Some(bot)).await?.event_id)
    }
}
