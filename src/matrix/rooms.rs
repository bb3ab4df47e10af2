//! Room operations as a tenant's bot, each through ruma's typed request with identity assertion.
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#rooms>

use std::collections::BTreeMap;

use ruma::api::client::alias::{create_alias, delete_alias, get_alias};
use ruma::api::client::appservice::set_room_visibility as appservice_room_list;
use ruma::api::client::directory::{get_room_visibility, set_room_visibility};
use ruma::api::client::discovery::get_capabilities;
use ruma::api::client::membership::{
    ban_user, forget_room, invite_user, join_room_by_id, kick_user, leave_room, unban_user,
};
use ruma::api::client::room::Visibility;
use ruma::api::client::room::create_room::{self, RoomPowerLevelsContentOverride};
use ruma::api::client::state::{get_state_event_for_key, get_state_events, send_state_event};
use ruma::events::{AnyInitialStateEvent, AnyStateEventContent, StateEventType};
use ruma::serde::Raw;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId};
use serde::Deserialize;
use serde_json::Value;

use super::{Client, Error};

/// The createRoom body as `rooms::create_room_body` writes it.
#[derive(Deserialize)]
struct CreateBody {
    name: Option<String>,
    topic: Option<String>,
    room_alias_name: Option<String>,
    preset: Option<create_room::v3::RoomPreset>,
    #[serde(default)]
    visibility: Visibility,
    room_version: Option<RoomVersionId>,
    #[serde(default)]
    initial_state: Vec<Raw<AnyInitialStateEvent>>,
    power_level_content_override: Option<Raw<RoomPowerLevelsContentOverride>>,
}

#[derive(Deserialize)]
struct MemberEvent {
    state_key: OwnedUserId,
    content: MemberContent,
}

#[derive(Deserialize)]
struct MemberContent {
    membership: String,
}

/// A room's state events, with the reads the daemon needs.
pub struct RoomState {
    pub events: Vec<Value>,
}

impl RoomState {
    fn event(&self, event_type: &str, state_key: &str) -> Option<&Value> {
        self.events
            .iter()
            .find(|e| e["type"] == event_type && e["state_key"] == state_key)
    }

    /// A state event's content.
    pub fn content(&self, event_type: &str, state_key: &str) -> Option<&Value> {
        self.event(event_type, state_key)
            .map(|event| &event["content"])
    }

    /// Who created the room, and the create event's content.
    pub fn create(&self) -> Option<(OwnedUserId, &Value)> {
        let event = self.event("m.room.create", "")?;
        let sender = OwnedUserId::try_from(event["sender"].as_str()?).ok()?;
        Some((sender, &event["content"]))
    }

    /// Who holds what power, when the room's create event is among the state.
    pub fn authority(&self) -> Option<crate::rooms::Authority<'_>> {
        let (create_sender, create_content) = self.create()?;
        Some(crate::rooms::Authority {
            create_sender,
            create_content,
            power_levels: self.content("m.room.power_levels", ""),
        })
    }

    /// Every user's membership (`join`, `invite`, `leave`, `ban`, …).
    pub fn memberships(&self) -> BTreeMap<OwnedUserId, String> {
        self.events
            .iter()
            .filter(|e| e["type"] == "m.room.member")
            .filter_map(|e| serde_json::from_value::<MemberEvent>(e.clone()).ok())
            .map(|event| (event.state_key, event.content.membership))
            .collect()
    }

    /// Who banned `user`, when the room's membership for them is `ban`.
    pub fn banned_by(&self, user: &UserId) -> Option<OwnedUserId> {
        let event = self.event("m.room.member", user.as_str())?;
        if event["content"]["membership"] != "ban" {
            return None;
        }
        OwnedUserId::try_from(event["sender"].as_str()?).ok()
    }
}

impl Client {
    /// `POST /createRoom` as `bot`; returns the new room's id.
    pub async fn create_room(&self, bot: &UserId, body: Value) -> Result<OwnedRoomId, Error> {
        let body: CreateBody = serde_json::from_value(body)
            .map_err(|error| Error::Request(format!("createRoom body: {error}")))?;
        let mut request = create_room::v3::Request::new();
        request.name = body.name;
        request.topic = body.topic;
        request.room_alias_name = body.room_alias_name;
        request.preset = body.preset;
        request.visibility = body.visibility;
        request.room_version = body.room_version;
        request.initial_state = body.initial_state;
        request.power_level_content_override = body.power_level_content_override;
        Ok(self.send(request, Some(bot)).await?.room_id)
    }

    /// The room an alias points to, if any.
    pub async fn resolve_alias(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
    ) -> Result<Option<OwnedRoomId>, Error> {
        match self
            .send(get_alias::v3::Request::new(alias), Some(bot))
            .await
        {
            Ok(response) => Ok(Some(response.room_id)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Points `alias` at `room_id`; an alias that already exists counts as done.
    pub async fn ensure_alias(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
        room_id: &RoomId,
    ) -> Result<(), Error> {
        match self
            .send(
                create_alias::v3::Request::new(alias, room_id.to_owned()),
                Some(bot),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.is_in_use() => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Removes `alias`; an alias that is already gone counts as done.
    pub async fn ensure_alias_removed(
        &self,
        bot: &UserId,
        alias: OwnedRoomAliasId,
    ) -> Result<(), Error> {
        match self
            .send(delete_alias::v3::Request::new(alias), Some(bot))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `bot` leaves the room and forgets it; a bot already out counts as done.
    pub async fn ensure_left_and_forgotten(
        &self,
        bot: &UserId,
        room_id: &RoomId,
    ) -> Result<(), Error> {
        match self
            .send(leave_room::v3::Request::new(room_id.to_owned()), Some(bot))
            .await
        {
            Ok(_) => {}
            Err(error) if error.is_forbidden() || error.is_not_found() => {}
            Err(error) => return Err(error),
        }
        match self
            .send(forget_room::v3::Request::new(room_id.to_owned()), Some(bot))
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Matrix { errcode, .. })
                if errcode == "M_NOT_FOUND" || errcode == "M_UNKNOWN" =>
            {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The homeserver's default room version for new rooms.
    pub async fn default_room_version(&self, bot: &UserId) -> Result<String, Error> {
        let response = self
            .send(get_capabilities::v3::Request::new(), Some(bot))
            .await?;
        Ok(response.capabilities.room_versions.default.to_string())
    }

    /// The room's current state, as whole events.
    pub async fn room_state(&self, bot: &UserId, room_id: &RoomId) -> Result<RoomState, Error> {
        let response = self
            .send(
                get_state_events::v3::Request::new(room_id.to_owned()),
                Some(bot),
            )
            .await?;
        let events = response
            .room_state
            .iter()
            .filter_map(|raw| serde_json::from_str::<Value>(raw.json().get()).ok())
            .collect();
        Ok(RoomState { events })
    }

    /// Whether the room has end-to-end encryption on (an `m.room.encryption` state event), asked
    /// of that one event: a room of thousands is not read whole for it.
    pub async fn is_encrypted(&self, bot: &UserId, room_id: &RoomId) -> Result<bool, Error> {
        let request = get_state_event_for_key::v3::Request::new(
            room_id.to_owned(),
            StateEventType::RoomEncryption,
            String::new(),
        );
        match self.send(request, Some(bot)).await {
            Ok(_) => Ok(true),
            Err(error) if error.errcode() == "M_NOT_FOUND" => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Whether the homeserver knows `room_id` at all (asked of the room directory, which answers
    /// anyone, member or not). A homeserver whose database was reset, or a room id imported from
    /// another environment, answers 404.
    pub async fn room_known(&self, room_id: &RoomId) -> Result<bool, Error> {
        match self
            .send(
                get_room_visibility::v3::Request::new(room_id.to_owned()),
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Matrix { status: 404, .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Sets a state event's content.
    pub async fn set_state(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        event_type: &str,
        state_key: &str,
        content: &Value,
    ) -> Result<(), Error> {
        let content: Raw<AnyStateEventContent> = Raw::from_json(
            serde_json::value::to_raw_value(content)
                .map_err(|error| Error::Request(error.to_string()))?,
        );
        let request = send_state_event::v3::Request::new_raw(
            room_id.to_owned(),
            StateEventType::from(event_type),
            state_key.to_owned(),
            content,
        );
        self.send(request, Some(bot)).await?;
        Ok(())
    }

    pub async fn join(&self, bot: &UserId, room_id: &RoomId) -> Result<(), Error> {
        self.send(
            join_room_by_id::v3::Request::new(room_id.to_owned()),
            Some(bot),
        )
        .await?;
        Ok(())
    }

    pub async fn invite(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<(), Error> {
        let recipient = invite_user::v3::InvitationRecipient::UserId(
            invite_user::v3::InviteUserId::new(user_id.to_owned()),
        );
        self.send(
            invite_user::v3::Request::new(room_id.to_owned(), recipient),
            Some(bot),
        )
        .await?;
        Ok(())
    }

    /// Kicks a member or revokes an invite.
    pub async fn kick(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error> {
        let mut request = kick_user::v3::Request::new(room_id.to_owned(), user_id.to_owned());
        request.reason = Some(reason.to_owned());
        self.send(request, Some(bot)).await?;
        Ok(())
    }

    /// Whether the room is listed in the public room directory
    /// (`GET /directory/list/room/{roomId}`, which answers anyone).
    pub async fn is_published(&self, room_id: &RoomId) -> Result<bool, Error> {
        let response = self
            .send(
                get_room_visibility::v3::Request::new(room_id.to_owned()),
                None,
            )
            .await?;
        Ok(response.visibility == Visibility::Public)
    }

    /// Lists the room in the public room directory, or takes it out
    /// (`PUT /directory/list/room/{roomId}`). Synapse refuses a listing its
    /// `room_list_publication_rules` do not allow with 403.
    pub async fn set_published(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        published: bool,
    ) -> Result<(), Error> {
        let visibility = if published {
            Visibility::Public
        } else {
            Visibility::Private
        };
        let request = set_room_visibility::v3::Request::new(room_id.to_owned(), visibility);
        self.send(request, Some(bot)).await?;
        Ok(())
    }

    /// Lists the room in the appservice's room list of `network_id`, or takes it out
    /// (`PUT /directory/list/appservice/{networkId}/{roomId}`, the as_token's alone: no
    /// publication rules, no power in the room needed). Synapse has no way to read one entry back;
    /// the call is idempotent.
    /// Spec: <https://spec.matrix.org/v1.19/client-server-api/#put_matrixclientv3directorylistappservicenetworkidroomid>
    pub async fn set_listed_in_network(
        &self,
        bot: &UserId,
        network_id: &str,
        room_id: &RoomId,
        listed: bool,
    ) -> Result<(), Error> {
        let visibility = if listed {
            Visibility::Public
        } else {
            Visibility::Private
        };
        let request = appservice_room_list::v3::Request::new(
            network_id.to_owned(),
            room_id.to_owned(),
            visibility,
        );
        self.send(request, Some(bot)).await?;
        Ok(())
    }

    /// Bans `user_id` (kicking them if joined, revoking an invite), with the reason.
    /// Spec: <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3roomsroomidban>
    pub async fn ban(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error> {
        let mut request = ban_user::v3::Request::new(room_id.to_owned(), user_id.to_owned());
        request.reason = Some(reason.to_owned());
        self.send(request, Some(bot)).await?;
        Ok(())
    }

    /// Lifts the ban of `user_id` (their membership becomes `leave`).
    /// Spec: <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3roomsroomidunban>
    pub async fn unban(
        &self,
        bot: &UserId,
        room_id: &RoomId,
        user_id: &UserId,
        reason: &str,
    ) -> Result<(), Error> {
        let mut request = unban_user::v3::Request::new(room_id.to_owned(), user_id.to_owned());
        request.reason = Some(reason.to_owned());
        self.send(request, Some(bot)).await?;
        Ok(())
    }
}
