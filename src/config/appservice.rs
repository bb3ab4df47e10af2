//! `appservice`: one homeserver's registration, as the daemon holds it.

use reqwest::Url;

use super::checks::{http_url, localpart_ok, required};
use super::file::{AppserviceSection, OneOrMany};
use super::secret::{self, Secret};

#[derive(Debug, Clone)]
pub struct Appservice {
    pub id: String,
    pub sender_localpart: String,
    pub bot_prefix: String,
    pub as_token: Secret,
    /// Every token Synapse may present; the first is the one `registration` prints.
    pub hs_tokens: Vec<Secret>,
    /// Where Synapse reaches us; goes into the registration.
    pub url: Url,
    /// The token this homeserver's `synapse-http-antispam` module presents; `None`: the rules
    /// callbacks answer no one from it.
    pub antispam_token: Option<Secret>,
}

impl Appservice {
    /// The section at `at` (`appservice`, or `homeservers[N].appservice`), or `None` with the
    /// problems recorded.
    pub fn validate(section: AppserviceSection, at: &str, p: &mut Vec<String>) -> Option<Self> {
        let id = required(p, &format!("{at}.id"), section.id).filter(|id| {
            let ok = id.chars().all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c));
            if !ok {
                p.push(format!("{at}.id {id:?} may only hold letters, digits and . _ ~ -: it is part of a URL path."));
            }
            ok
        });
        let sender_localpart = required(
            p,
            &format!("{at}.sender_localpart"),
            section.sender_localpart,
        )
        .filter(|localpart| localpart_ok(p, &format!("{at}.sender_localpart"), localpart));
        let bot_prefix = required(p, &format!("{at}.bot_prefix"), section.bot_prefix)
            .filter(|prefix| localpart_ok(p, &format!("{at}.bot_prefix"), prefix));
        let as_token = secret::resolve(
            &format!("{at}.as_token"),
            section.as_token.as_deref(),
            section.as_token_file.as_deref(),
            p,
        );
        let hs_tokens = secret::resolve_lines(
            &format!("{at}.hs_token"),
            section.hs_token.map(OneOrMany::into_vec),
            section.hs_token_file.as_deref(),
            p,
        );
        let url = required(p, &format!("{at}.url"), section.url)
            .and_then(|url| http_url(p, &format!("{at}.url"), &url));
        let antispam_token = match (&section.antispam_token, &section.antispam_token_file) {
            (None, None) => None,
            (inline, path) => secret::resolve(
                &format!("{at}.antispam_token"),
                inline.as_deref(),
                path.as_deref(),
                p,
            ),
        };
        Some(Self {
            id: id?,
            sender_localpart: sender_localpart?,
            bot_prefix: bot_prefix?,
            as_token: as_token?,
            hs_tokens: hs_tokens?,
            url: url?,
            antispam_token,
        })
    }
}
