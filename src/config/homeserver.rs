//! `homeserver`: how the daemon reaches one homeserver's client-server API.

use std::time::Duration;

use reqwest::Url;
use ruma::{OwnedServerName, ServerName};

use super::checks::{http_url, required};
use super::file::HomeserverSection;

#[derive(Debug, Clone)]
pub struct Homeserver {
    /// Base of the client-server API the daemon calls.
    pub url: Url,
    /// The part after `:` in user ids and aliases.
    pub server_name: OwnedServerName,
    /// Upper bound for one call to the homeserver.
    pub timeout: Duration,
    /// The room version new rooms get; `None`: the homeserver's default.
    pub room_version: Option<String>,
    /// How often the as_token and the appservice ping are checked while all is well, and at most
    /// how often while the token is refused (one homeserver call per interval then).
    pub check_interval: Duration,
    /// How often the sender posts a loop-back probe marker; `None`: no probe.
    pub probe_interval: Option<Duration>,
}

impl Homeserver {
    /// The section at `at` (`homeserver`, or `homeservers[N].homeserver`), or `None` with the
    /// problems recorded.
    pub fn validate(section: HomeserverSection, at: &str, p: &mut Vec<String>) -> Option<Self> {
        let url = required(p, &format!("{at}.url"), section.url)
            .and_then(|url| http_url(p, &format!("{at}.url"), &url));
        let server_name = required(p, &format!("{at}.server_name"), section.server_name)
            .and_then(|name| match ServerName::parse(&name) {
                Ok(name) => Some(name),
                Err(error) => {
                    p.push(format!("{at}.server_name {name:?} is not a Matrix server name ({error}): use the part after ':' in your user ids, e.g. matrix.example.org."));
                    None
                }
            });
        let room_version = section.room_version.filter(|version| {
            let ok = !version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
            if !ok {
                p.push(format!("{at}.room_version {version:?} is not a room version: use e.g. \"10\", \"11\" or \"12\", or leave it out for the homeserver's default."));
            }
            ok
        });
        let check_interval = match section.check_interval_seconds.unwrap_or(120) {
            0 => {
                p.push(format!("{at}.check_interval_seconds is 0: give the seconds between token and ping checks (default 120)."));
                Duration::from_secs(120)
            }
            seconds => Duration::from_secs(seconds),
        };
        let probe_interval = match section.probe_interval_seconds.unwrap_or(60) {
            0 => None,
            seconds => Some(Duration::from_secs(seconds)),
        };
        Some(Self {
            url: url?,
            server_name: server_name?,
            timeout: Duration::from_secs(section.timeout_seconds.unwrap_or(30)),
            room_version,
            check_interval,
            probe_interval,
        })
    }
}
