//! `tenants[].webhook`: where a tenant's events are POSTed and the secret that signs them
//! (DESIGN §7.4, signed the Standard Webhooks way by `webhooks::sign`).
//!
//! The secret is either Standard Webhooks' own form, `whsec_` and the base64 of 24 to 64 random
//! bytes (the key is those bytes: what the Standard Webhooks libraries and Svix expect), or any
//! other string of at least 16 characters, whose UTF-8 bytes are the key (for receivers that
//! verify with a plain HMAC).

use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Url;
use serde::Deserialize;

use super::checks::{http_url, required};
use super::secret;

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
}

/// A tenant's webhook; two are equal when they send to the same URL with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// http or https, without credentials or query.
    pub url: Url,
    pub key: SigningKey,
}

/// The HMAC key; its `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// The key of a secret: `whsec_<base64>` decoded, any other string as its bytes. The error
    /// says what is wrong without repeating the secret.
    pub fn parse(secret: &str) -> Result<Self, String> {
        let Some(encoded) = secret.strip_prefix("whsec_") else {
            return Ok(Self(secret.as_bytes().to_vec()));
        };
        match STANDARD.decode(encoded) {
            Ok(bytes) if (24..=64).contains(&bytes.len()) => Ok(Self(bytes)),
            Ok(bytes) => Err(format!(
                "decodes to {} bytes, but a whsec_ secret holds 24 to 64: generate one with `openssl rand -base64 32` and prefix it with whsec_",
                bytes.len()
            )),
            Err(_) => Err("starts with whsec_ but the rest is not base64: give whsec_ and the base64 of random bytes, or a secret without the prefix".into()),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Checks `tenants[i].webhook` (named `at`); `None` when it is absent or wrong (each problem
/// recorded).
pub fn validate(
    at: &str,
    section: Option<WebhookSection>,
    problems: &mut Vec<String>,
) -> Option<Webhook> {
    let section = section?;
    let url = required(problems, &format!("{at}.url"), section.url)
        .and_then(|url| http_url(problems, &format!("{at}.url"), &url));
    let name = format!("{at}.secret");
    let key = secret::resolve(
        &name,
        section.secret.as_deref(),
        section.secret_file.as_deref(),
        problems,
    )
    .and_then(|secret| {
        SigningKey::parse(secret.expose())
            .map_err(|problem| problems.push(format!("{name} {problem}.")))
            .ok()
    });
    Some(Webhook {
        url: url?,
        key: key?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(url: &str, secret: &str) -> Option<WebhookSection> {
        Some(WebhookSection {
            url: Some(url.into()),
            secret: Some(secret.into()),
            secret_file: None,
        })
    }

    #[test]
    fn a_whsec_secret_is_decoded_and_a_raw_one_taken_as_it_is() {
        let mut problems = Vec::new();
        let webhook = validate(
            "w",
            section(
                "https://api.example.org/hooks",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
            &mut problems,
        )
        .expect("valid");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(webhook.key.bytes().len(), 24);
        let raw = validate(
            "w",
            section(
                "http://openmeet-api:3000/matrix/events",
                "a-raw-secret-0123456789",
            ),
            &mut problems,
        )
        .expect("valid");
        assert_eq!(raw.key.bytes(), b"a-raw-secret-0123456789");
        assert_eq!(format!("{raw:?}").matches("[redacted]").count(), 1);
        assert!(!format!("{raw:?}").contains("a-raw-secret"));
    }

    #[test]
    fn wrong_webhooks_are_reported_without_their_secret() {
        for (url, secret, expected) in [
            (
                "ftp://example.org/x",
                "a-raw-secret-0123456789",
                "is not an http(s) URL",
            ),
            (
                "https://user:pw@example.org/x",
                "a-raw-secret-0123456789",
                "must not carry credentials",
            ),
            ("https://example.org/x", "short", "shorter than 16"),
            (
                "https://example.org/x",
                "whsec_not*base64*at*all!!",
                "not base64",
            ),
            (
                "https://example.org/x",
                "whsec_c2hvcnRzaG9ydHNob3J0",
                "decodes to 15 bytes",
            ),
        ] {
            let mut problems = Vec::new();
            assert!(validate("tenants[0].webhook", section(url, secret), &mut problems).is_none());
            let text = problems.join("\n");
            assert!(text.contains(expected), "{url} {secret}: {text}");
            assert!(
                !text.contains(secret) || secret == "short",
                "the secret leaked: {text}"
            );
        }
        let mut problems = Vec::new();
        let missing = WebhookSection {
            url: Some("https://example.org/x".into()),
            ..WebhookSection::default()
        };
        assert!(validate("tenants[0].webhook", Some(missing), &mut problems).is_none());
        assert!(
            problems[0].contains("tenants[0].webhook.secret is missing"),
            "{problems:?}"
        );
        assert!(validate("w", None, &mut problems).is_none());
    }
}
