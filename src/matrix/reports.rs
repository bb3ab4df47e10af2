//! What a report routed to the daemon asks of the homeserver (DESIGN §7.3 "Across the tenant"):
//! whose token it is, whether they are in the room, the reported event, and a report of our own
//! when the reporter's could not be passed on.
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#reporting-content>

use ruma::api::client::account::whoami;
use ruma::api::client::room::{get_room_event, report_content, report_room};
use ruma::api::client::state::get_state_event_for_key;
use ruma::events::StateEventType;
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::Value;

use super::{Client, Error};

impl Client {
    /// The owner of `access_token` (a user's own token), by `GET /account/whoami`.
    pub async fn whoami_with_token(&self, access_token: &str) -> Result<OwnedUserId, Error> {
        let response = self
            .send_with_token(whoami::v3::Request::new(), access_token)
            .await?;
        Ok(response.user_id)
    }

    /// `user`'s membership in the room (`join`, `invite`, `leave`, `ban`, `knock`) as `bot` sees
    /// it; `None` when they never had one.
    pub async fn membership(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<Option<String>, Error> {
        let request = get_state_event_for_key::v3::Request::new(
            room_id.to_owned(),
            StateEventType::RoomMember,
            user.to_string(),
        );
        match self.send(request, Some(bot)).await {
            Ok(response) => {
                let content: Value = serde_json::from_str(response.into_content().json().get())
                    .map_err(|error| Error::InvalidResponse(error.to_string()))?;
                Ok(content["membership"].as_str().map(str::to_owned))
            }
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The event as `bot` reads it (a whole event: `sender`, `type`, `content`, …); `None` when
    /// the homeserver has no such event in the room, or `bot` may not see it.
    pub async fn room_event(
        &self,
        bot: &UserId,
        room_id: OwnedRoomId,
        event_id: OwnedEventId,
    ) -> Result<Option<Value>, Error> {
        let request = get_room_event::v3::Request::new(room_id, event_id);
        match self.send(request, Some(bot)).await {
            Ok(response) => serde_json::from_str(response.event.json().get())
                .map(Some)
                .map_err(|error| Error::InvalidResponse(error.to_string())),
            Err(error) if error.is_not_found() || error.is_forbidden() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Reports the event (or, without one, the room) to the homeserver's admins as `bot`.
    pub async fn report_as(
        &self,
        bot: &UserId,
        room_id: OwnedRoomId,
        event_id: Option<OwnedEventId>,
        reason: String,
    ) -> Result<(), Error> {
        match event_id {
            Some(event_id) => {
                let mut request = report_content::v3::Request::new(room_id, event_id);
                request.reason = Some(reason);
                self.send(request, Some(bot)).await?;
            }
            None => {
                self.send(report_room::v3::Request::new(room_id, reason), Some(bot))
                    .await?;
            }
        }
        Ok(())
    }
}
