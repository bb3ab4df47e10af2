//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, "Signature scheme"):
//! `v1,` and the base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

use crate::config::webhook::SigningKey;

/// The `webhook-signature` header for one attempt.
pub fn signature(key: &SigningKey, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

/// Whether `header` (space-separated `v1,<base64>` entries, as receivers get it) holds a valid
/// signature of the message by `key`; compared in constant time. The receiver's side, which the
/// tests take (a delivery is checked as well by the Standard Webhooks library, `tests/webhooks.rs`).
#[cfg(test)]
pub fn verify(key: &SigningKey, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, key.bytes());
    let message = [
        id.as_bytes(),
        b".",
        timestamp.to_string().as_bytes(),
        b".",
        body,
    ]
    .concat();
    header.split(' ').any(|entry| {
        entry
            .strip_prefix("v1,")
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .is_some_and(|tag| hmac::verify(&hmac_key, &message, &tag).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference libraries: interoperability, not only
    /// agreement with our own `verify`.
    #[test]
    fn signature_matches_the_standard_webhooks_test_vector() {
        let key =
            SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
        let body = br#"{"test": 2432232314}"#;
        let header = signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
            &format!("v1,bm9wZQ== {header}")
        ));
    }

    #[test]
    fn a_changed_body_id_timestamp_or_key_fails_verification() {
        let key =
            SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
        let header = signature(&key, "t-1", 1_000, b"{}");
        assert!(verify(&key, "t-1", 1_000, b"{}", &header));
        assert!(!verify(&key, "t-1", 1_000, b"{ }", &header));
        assert!(!verify(&key, "t-2", 1_000, b"{}", &header));
        assert!(!verify(&key, "t-1", 1_001, b"{}", &header));
        let other = SigningKey::parse("a-raw-secret-of-some-length").expect("a valid secret");
        assert!(!verify(&other, "t-1", 1_000, b"{}", &header));
    }
}
