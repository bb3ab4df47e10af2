//! `POST /_matrix/client/v3/register` as the appservice.
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#server-admin-style-permissions>

use ruma::UserId;
use ruma::api::client::account::register::{self, LoginType};
use ruma::api::client::profile::{get_profile, set_display_name};

use super::{Client, Error};

impl Client {
    /// Makes sure the user `@{localpart}:{server}` exists: registers it without logging in;
    /// `M_USER_IN_USE` means it already does.
    pub async fn ensure_registered(&self, localpart: &str) -> Result<(), Error> {
        let mut request = register::v3::Request::new();
        request.username = Some(localpart.to_owned());
        request.inhibit_login = true;
        request.login_type = Some(LoginType::ApplicationService);
        match self.send(request, None).await {
            Ok(_) => {
                tracing::info!(localpart, "registered user");
                Ok(())
            }
            Err(Error::Matrix { errcode, .. }) if errcode == "M_USER_IN_USE" => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Sets `user_id`'s display name (as that user). The classic `/profile/{userId}/displayname`
    /// works on every homeserver; the newer profile-field endpoint needs spec v1.16 paths.
    #[allow(deprecated)]
    pub async fn set_display_name(&self, user_id: &UserId, name: &str) -> Result<(), Error> {
        let request = set_display_name::v3::Request::new(user_id.to_owned(), Some(name.to_owned()));
        self.send(request, Some(user_id)).await?;
        Ok(())
    }

    /// Whether the homeserver knows `user_id` (`GET /profile/{userId}` answers 404 for a user it
    /// does not have). Spec: <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3profileuserid>
    pub async fn user_exists(&self, user_id: &UserId) -> Result<bool, Error> {
        match self
            .send(get_profile::v3::Request::new(user_id.to_owned()), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if error.is_not_found() => Ok(false),
            Err(error) => Err(error),
        }
    }
}
