//! `POST /_matrix/client/v3/register` as the appservice.
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#server-admin-style-permissions>

use ruma::UserId;
use ruma::api::client::account::register::{self, LoginType};
use ruma::api::client::profile::set_display_name;

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
}
