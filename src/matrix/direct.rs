//! A tenant bot's direct-message rooms: `POST /createRoom` with `is_direct` and the user invited,
//! and the bot's `m.direct` account data (`GET`/`PUT /user/{userId}/account_data/m.direct`).
//!
//! Spec: <https://spec.matrix.org/v1.19/client-server-api/#direct-messaging>

use ruma::api::client::config::{get_global_account_data, set_global_account_data};
use ruma::api::client::room::create_room;
use ruma::events::GlobalAccountDataEventType;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::{Map, Value};

use super::{Client, Error};

impl Client {
    /// Creates a direct-message room of `bot` with `user` and invites them: preset
    /// `private_chat` (invite only, history shared), so the user holds no power over the bot's
    /// room (`trusted_private_chat` would give them the bot's own level in rooms before v12).
    pub async fn create_direct_room(
        &self,
        bot: &UserId,
        user: &UserId,
    ) -> Result<OwnedRoomId, Error> {
        let mut request = create_room::v3::Request::new();
        request.is_direct = true;
        request.invite = vec![user.to_owned()];
        request.preset = Some(create_room::v3::RoomPreset::PrivateChat);
        Ok(self.send(request, Some(bot)).await?.room_id)
    }

    /// Makes sure `bot`'s `m.direct` lists `room_id` under `user`, leaving every other entry as
    /// it is; writes only when it does not.
    pub async fn ensure_direct_listed(
        &self,
        bot: &UserId,
        user: &UserId,
        room_id: &RoomId,
    ) -> Result<(), Error> {
        let request = get_global_account_data::v3::Request::new(
            bot.to_owned(),
            GlobalAccountDataEventType::Direct,
        );
        let current = match self.send(request, Some(bot)).await {
            Ok(response) => serde_json::from_str(response.account_data.json().get())
                .map_err(|error| Error::Request(format!("m.direct: {error}")))?,
            Err(error) if error.is_not_found() => Value::Object(Map::new()),
            Err(error) => return Err(error),
        };
        let Some(content) = crate::rooms::direct::with_room(&current, user, room_id) else {
            return Ok(());
        };
        let raw = serde_json::value::to_raw_value(&content)
            .map_err(|error| Error::Request(error.to_string()))?;
        let request = set_global_account_data::v3::Request::new_raw(
            bot.to_owned(),
            GlobalAccountDataEventType::Direct,
            Raw::from_json(raw),
        );
        self.send(request, Some(bot)).await?;
        Ok(())
    }
}
