//! The start-up checks shared by `check` and `serve`: the homeserver answers, accepts our
//! as_token as the sender, the sender exists, and a ping makes the round trip through Synapse back
//! to our appservice listener (which also makes Synapse resend any backlog at once).
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#post_matrixclientv1appserviceappserviceidping>

use std::time::Duration;

use ruma::api::client::account::whoami;
use ruma::api::client::appservice::request_ping;
use ruma::api::client::discovery::get_supported_versions;
use ruma::{OwnedTransactionId, OwnedUserId};

use super::{Client, Error, RetryKind};
use crate::config::HomeserverConfig;
use crate::config::secret::random_token;

/// Which step failed; `check` turns each into its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Versions,
    Token,
    Sender,
    PingUnreachable,
    PingHsToken,
    Ping,
}

/// A failed step with a sentence saying what is wrong and how to fix it.
#[derive(Debug)]
pub struct Failure {
    pub step: Step,
    pub message: String,
}

/// Runs the checks in order and stops at the first failure.
pub async fn run(client: &Client, homeserver: &HomeserverConfig<'_>) -> Result<(), Failure> {
    versions(client, homeserver).await?;
    sender(client, homeserver).await?;
    ping(client, homeserver).await?;
    Ok(())
}

pub async fn versions(
    client: &Client,
    homeserver: &HomeserverConfig<'_>,
) -> Result<Vec<String>, Failure> {
    let response = client.send(get_supported_versions::Request::new(), None).await.map_err(|error| {
        if error.retry_kind() == RetryKind::CredentialRejected {
            return token_rejected(&error, homeserver);
        }
        Failure {
            step: Step::Versions,
            message: format!(
                "the homeserver at {} did not answer /_matrix/client/versions ({error}): check homeserver.url and that Synapse is running.",
                homeserver.homeserver.url
            ),
        }
    })?;
    Ok(response.versions)
}

/// The as_token is not accepted: Synapse runs with another registration than this config's.
fn token_rejected(error: &Error, homeserver: &HomeserverConfig<'_>) -> Failure {
    Failure {
        step: Step::Token,
        message: format!(
            "the homeserver does not accept this config's as_token ({}): Synapse has not loaded this registration, or its tokens differ from this config's — regenerate it with `{}`, put the output in a file listed in Synapse's app_service_config_files, and restart Synapse (or put the as_token Synapse knows back into this config and reload it with SIGHUP).",
            error.errcode(),
            homeserver.registration_command()
        ),
    }
}

/// `whoami` as the sender (no identity assertion), then makes sure the sender is registered.
pub async fn sender(
    client: &Client,
    homeserver: &HomeserverConfig<'_>,
) -> Result<OwnedUserId, Failure> {
    let expected = homeserver.sender_user_id();
    let token_failure = |error: Error| match error.retry_kind() {
        RetryKind::CredentialRejected => token_rejected(&error, homeserver),
        _ => Failure {
            step: Step::Versions,
            message: format!(
                "whoami as the appservice failed ({error}): check that Synapse is healthy."
            ),
        },
    };
    let answered = client
        .send(whoami::v3::Request::new(), None)
        .await
        .map_err(token_failure)?;
    if answered.user_id != expected {
        return Err(Failure {
            step: Step::Sender,
            message: format!(
                "the homeserver says this as_token belongs to {}, not {expected}: appservice.sender_localpart or homeserver.server_name differ from the registration Synapse loaded — regenerate it with `{}` and restart Synapse.",
                answered.user_id,
                homeserver.registration_command()
            ),
        });
    }
    client.ensure_registered(&homeserver.appservice.sender_localpart).await.map_err(|error| Failure {
        step: Step::Sender,
        message: format!("the sender {expected} could not be registered ({error}): check that the registration's user namespace covers it."),
    })?;
    Ok(expected)
}

/// Asks Synapse to ping our appservice listener and returns the round trip Synapse measured.
pub async fn ping(client: &Client, homeserver: &HomeserverConfig<'_>) -> Result<Duration, Failure> {
    let mut request = request_ping::v1::Request::new(homeserver.appservice.id.clone());
    request.transaction_id = Some(OwnedTransactionId::from(format!(
        "preflight-{}",
        &random_token()[..16]
    )));
    let error = match client.send(request, None).await {
        Ok(response) => return Ok(response.duration),
        Err(error) => error,
    };
    let url = &homeserver.appservice.url;
    let (step, message) = match &error {
        Error::Matrix { errcode, body, .. } if errcode == "M_BAD_STATUS" => {
            let status = body.get("status").and_then(serde_json::Value::as_u64).unwrap_or(0);
            if status == 401 || status == 403 {
                (Step::PingHsToken, format!("Synapse reached the daemon at {url} but the daemon refused Synapse's hs_token (HTTP {status}): the hs_token in the registration Synapse loaded differs from this config's appservice.hs_token — regenerate the registration with `{}`, install it in Synapse's app_service_config_files and restart Synapse (or add Synapse's token to the hs_token list during a rotation).", homeserver.registration_command()))
            } else {
                (Step::Ping, format!("Synapse reached {url} but got HTTP {status} back: check that the daemon's appservice listener is what answers at that URL."))
            }
        }
        Error::Matrix { errcode, .. } if errcode == "M_CONNECTION_FAILED" || errcode == "M_CONNECTION_TIMEOUT" => (
            Step::PingUnreachable,
            format!("Synapse could not reach the daemon at {url} ({errcode}): check that `openmeet-appservice serve` is running and that appservice.url is reachable from Synapse."),
        ),
        Error::Matrix { errcode, .. } if errcode == "M_URL_NOT_SET" => (
            Step::Ping,
            "the registration Synapse loaded has no url: set appservice.url and regenerate the registration.".to_owned(),
        ),
        Error::Matrix { errcode, .. } if errcode == "M_FORBIDDEN" => (
            Step::Ping,
            format!("Synapse refused the ping for appservice id {:?}: appservice.id differs from the registration Synapse loaded — regenerate it and restart Synapse.", homeserver.appservice.id),
        ),
        _ if error.retry_kind() == RetryKind::CredentialRejected => return Err(token_rejected(&error, homeserver)),
        _ => (Step::Ping, format!("the appservice ping failed ({error}): check Synapse's log for the appservice {:?}.", homeserver.appservice.id)),
    };
    Err(Failure { step, message })
}
