//! The homeserver client: ruma's typed requests sent with reqwest, as the appservice.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ruma::UserId;
use ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use ruma::api::path_builder::{PathBuilder, SinglePath, VersionHistory};
use ruma::api::{
    AppserviceUserIdentity, IncomingResponseExt, MatrixVersion, OutgoingRequest,
    OutgoingRequestAppserviceExt, OutgoingRequestExt, SupportedVersions,
};

use super::Error;
use crate::config::{Homeserver, Secret};
use crate::observability::metrics::Metrics;

pub struct Client {
    /// The homeserver's id in the config (`default` for the top-level one): the metrics' label.
    homeserver_id: String,
    http: reqwest::Client,
    base_url: String,
    as_token: Secret,
    timeout: Duration,
    versions: SupportedVersions,
    metrics: Arc<Metrics>,
}

/// Marks a request the daemon forwarded (`forward_as_user`): one that comes back to the daemon
/// went through the proxy, not to Synapse, and is refused instead of going round again.
pub const FORWARDED_HEADER: &str = "x-openmeet-forwarded";

/// Whose credentials a request carries.
#[derive(Clone, Copy)]
enum Caller<'a> {
    /// The as_token, acting as this user (identity assertion) or as the sender.
    Appservice(Option<&'a UserId>),
    /// A user's own access token.
    User(&'a str),
}

/// Supplies the path-builder input for both kinds of ruma endpoint.
pub trait PathInput: PathBuilder {
    fn input(versions: &SupportedVersions) -> Self::Input<'_>;
}

impl PathInput for VersionHistory {
    fn input(versions: &SupportedVersions) -> Cow<'_, SupportedVersions> {
        Cow::Borrowed(versions)
    }
}

impl PathInput for SinglePath {
    fn input(_: &SupportedVersions) {}
}

impl Client {
    /// Fails only when the TLS set-up cannot be made (e.g. no CA certificates on the system).
    pub fn new(
        homeserver_id: &str,
        homeserver: &Homeserver,
        as_token: Secret,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Error> {
        // reqwest is built without a default crypto provider; ring is ours. A second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(homeserver.timeout)
            .connect_timeout(Duration::from_secs(5).min(homeserver.timeout))
            .user_agent(concat!("openmeet-appservice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                let mut message = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message = format!("{message}: {cause}");
                    source = cause.source();
                }
                Error::Request(format!(
                    "the HTTP client for the homeserver could not be set up ({message}): install the system's CA certificates (Debian: apt-get install ca-certificates)"
                ))
            })?;
        let versions = SupportedVersions {
            versions: [MatrixVersion::V1_1, MatrixVersion::V1_11].into(),
            features: Default::default(),
        };
        Ok(Self {
            homeserver_id: homeserver_id.to_owned(),
            http,
            base_url: homeserver.url.as_str().trim_end_matches('/').to_owned(),
            as_token,
            timeout: homeserver.timeout,
            versions,
            metrics,
        })
    }

    /// Sends `request` with the as_token, as `acting_as` when given (identity assertion), else as
    /// the appservice's sender.
    pub async fn send<R>(
        &self,
        request: R,
        acting_as: Option<&UserId>,
    ) -> Result<R::IncomingResponse, Error>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.measured(
            endpoint_name::<R>(),
            self.send_inner(request, Caller::Appservice(acting_as)),
        )
        .await
    }

    /// Sends `request` with a user's own access token (a reporter's, DESIGN §7.3), not the
    /// as_token. The token goes in the `Authorization` header only; it is never logged.
    pub async fn send_with_token<R>(
        &self,
        request: R,
        access_token: &str,
    ) -> Result<R::IncomingResponse, Error>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.measured(
            endpoint_name::<R>(),
            self.send_inner(request, Caller::User(access_token)),
        )
        .await
    }

    /// POSTs `body` (JSON) to `path` (from `/_matrix/…`, as the client sent it) with a user's own
    /// access token, and hands back the homeserver's answer whatever its status: what a client's
    /// request routed to the daemon is passed on as (the report endpoints, DESIGN §7.3). `Err`
    /// only when there is no answer. `endpoint` is the metrics' label.
    pub async fn forward_as_user(
        &self,
        endpoint: &'static str,
        path: &str,
        access_token: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), Error> {
        let url = format!("{}{path}", self.base_url);
        let request = self
            .http
            .post(url)
            .bearer_auth(access_token)
            .header(FORWARDED_HEADER, "1")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        let forward = async {
            let response = request
                .send()
                .await
                .map_err(|error| self.transport_error(error))?;
            let status = response.status().as_u16();
            let body = response
                .bytes()
                .await
                .map_err(|error| self.transport_error(error))?;
            if status >= 500 {
                return Err(Error::from_response(status, None, &body));
            }
            Ok((status, body.to_vec()))
        };
        self.measured(endpoint, forward).await
    }

    /// Runs `call` to `endpoint`, counting and timing it in the homeserver metrics.
    async fn measured<T>(
        &self,
        endpoint: &'static str,
        call: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let result = call.await;
        let errcode = result
            .as_ref()
            .map_or_else(|error| error.errcode().to_owned(), |_| "ok".to_owned());
        self.metrics
            .homeserver_requests
            .with_label_values(&[&self.homeserver_id, endpoint, &errcode])
            .inc();
        self.metrics
            .homeserver_request_seconds
            .with_label_values(&[&self.homeserver_id, endpoint])
            .observe(started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            tracing::debug!(homeserver = %self.homeserver_id, endpoint, %error, "homeserver call failed");
        }
        result
    }

    async fn send_inner<R>(
        &self,
        request: R,
        caller: Caller<'_>,
    ) -> Result<R::IncomingResponse, Error>
    where
        R: OutgoingRequest,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        // Always: with identity assertion every request must carry the token, also on endpoints
        // where it is optional (`/register`, `/directory/room/{alias}`), where `Appservice` would
        // leave it out.
        let input = <R::PathBuilder as PathInput>::input(&self.versions);
        let http_request: http::Request<Vec<u8>> = match caller {
            Caller::Appservice(Some(user_id)) => request.try_into_http_request_with_identity(
                &self.base_url,
                SendAccessToken::Always(self.as_token.expose()),
                AppserviceUserIdentity::new(user_id),
                input,
            ),
            Caller::Appservice(None) => request.try_into_http_request(
                &self.base_url,
                SendAccessToken::Always(self.as_token.expose()),
                input,
            ),
            Caller::User(token) => {
                request.try_into_http_request(&self.base_url, SendAccessToken::Always(token), input)
            }
        }
        .map_err(|error| Error::Request(error.to_string()))?;
        let request = reqwest::Request::try_from(http_request)
            .map_err(|error| Error::Request(error.to_string()))?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|error| self.transport_error(error))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(error))?;
        if !status.is_success() {
            let retry_after = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs);
            return Err(Error::from_response(status.as_u16(), retry_after, &body));
        }
        let mut builder = http::Response::builder().status(status);
        if let Some(map) = builder.headers_mut() {
            *map = headers;
        }
        let response = builder
            .body(body.as_ref())
            .map_err(|error| Error::InvalidResponse(error.to_string()))?;
        R::IncomingResponse::try_from_http_response(response)
            .map_err(|error| Error::InvalidResponse(error.to_string()))
    }

    /// The homeserver's id in the config.
    pub fn homeserver_id(&self) -> &str {
        &self.homeserver_id
    }

    fn transport_error(&self, error: reqwest::Error) -> Error {
        if error.is_timeout() {
            Error::Timeout(self.timeout)
        } else {
            // Without the URL: it is safe (the token travels in a header) but noisy. With the
            // causes: "error sending request" alone does not say that the connection was refused.
            let error = error.without_url();
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            Error::Unreachable(message)
        }
    }
}

/// A short, bounded metric label from ruma's module path, e.g. `register` or `request_ping`.
fn endpoint_name<R>() -> &'static str {
    let path = std::any::type_name::<R>();
    let mut segments = path
        .split("::")
        .filter(|segment| *segment != "Request" && !is_version(segment));
    let (mut parent, mut operation) = ("", "unknown");
    for segment in segments.by_ref() {
        (parent, operation) = (operation, segment);
    }
    // Two operations of the spec share this name: the server-wide directory's and an appservice's
    // own room list (`/directory/list/appservice/{networkId}/{roomId}`).
    if (parent, operation) == ("appservice", "set_room_visibility") {
        return "set_appservice_room_visibility";
    }
    operation
}

fn is_version(segment: &str) -> bool {
    segment.len() > 1
        && segment.starts_with('v')
        && segment[1..].chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_are_the_operation() {
        assert_eq!(
            endpoint_name::<ruma::api::client::account::register::v3::Request>(),
            "register"
        );
        assert_eq!(
            endpoint_name::<ruma::api::client::appservice::request_ping::v1::Request>(),
            "request_ping"
        );
        assert_eq!(
            endpoint_name::<ruma::api::client::discovery::get_supported_versions::Request>(),
            "get_supported_versions"
        );
        assert_eq!(
            endpoint_name::<ruma::api::client::directory::set_room_visibility::v3::Request>(),
            "set_room_visibility"
        );
        assert_eq!(
            endpoint_name::<ruma::api::client::appservice::set_room_visibility::v3::Request>(),
            "set_appservice_room_visibility"
        );
    }
}
