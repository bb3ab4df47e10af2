//! `PUT /_matrix/app/v1/transactions/{txnId}`
//!
//! Spec: <https://spec.matrix.org/v1.19/application-service-api/#put_matrixappv1transactionstxnid>
//!
//! Synapse sends one transaction at a time and every tenant waits while we answer, so the handler
//! only stores the transaction (deduplicated on txnId and on event id) and answers; the inbox
//! processor does the rest afterwards. Whatever cannot be understood is quarantined and still
//! acknowledged — only a database outage answers 503, so Synapse keeps the transaction. Here only
//! the envelope is checked; the processor parses the content and quarantines what fails there.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ruma::{EventId, RoomId, UserId};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::auth::CallingHomeserver;
use super::error::{ApiError, empty_object};
use crate::app::App;
use crate::homeservers::probe;
use crate::inbox::{self, classify};
use crate::store::inbox::{IncomingTransaction, NewEvent, NewQuarantine};
use crate::store::unix_ms;

/// Synapse's own limit for a transaction body.
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

#[tracing::instrument(name = "as.transaction", skip_all, fields(txn_id = %txn_id))]
pub async fn handler(
    State(app): State<Arc<App>>,
    Extension(CallingHomeserver(homeserver)): Extension<CallingHomeserver>,
    Path(txn_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            tracing::warn!("refused a transaction over the body limit");
            return ApiError::TooLarge(BODY_LIMIT).into_response();
        }
        Err(rejection) => return ApiError::BadRequest(rejection.body_text()).into_response(),
    };
    if txn_id.contains('\0') {
        // Synapse never sends one; PostgreSQL's `text` could not store it (a 503 for good).
        return ApiError::InvalidParam("the txnId holds a NUL character").into_response();
    }
    app.metrics
        .transactions_received
        .with_label_values(&[&homeserver])
        .inc();
    let received_at = unix_ms(app.clock.now());
    // Parsed before taking SQLite's write turn, so concurrent pushes parse side by side.
    let mut txn = parse(&homeserver, txn_id, &body, received_at);
    drop(body);
    let config = app.config();
    for event in &mut txn.events {
        event.settled = classify::settled(
            &config,
            &event.event_type,
            &event.sender,
            event.state_key.as_deref(),
        )
        .map(|observed| observed.label());
    }
    let stored = app.store.record_transaction(txn).await;
    let response = match stored {
        Ok((txn, recorded)) => {
            let metrics = &app.metrics;
            if recorded.duplicate {
                metrics
                    .transactions_duplicate
                    .with_label_values(&[&homeserver])
                    .inc();
                tracing::debug!("duplicate transaction acknowledged");
            } else {
                metrics.events_received.inc_by(recorded.new_events as u64);
                if txn.unreadable {
                    metrics.transactions_quarantined.inc();
                } else {
                    metrics
                        .events_quarantined
                        .inc_by(txn.quarantined.len() as u64);
                }
                for entry in &txn.quarantined {
                    tracing::warn!(event_id = entry.event_id.as_deref(), reason = %entry.reason, "quarantined");
                }
                if let Some(highest) = recorded.reset_from {
                    metrics
                        .transaction_id_resets
                        .with_label_values(&[&homeserver])
                        .inc();
                    tracing::warn!(
                        highest_seen = highest,
                        "txnId fell below the highest seen: Synapse's transaction counter restarted (was its database reset?); new events are still processed, event ids deduplicate"
                    );
                }
                // The settled events were stored processed: counted here, as the processor counts
                // the rest.
                let settled = (txn.events.iter().enumerate())
                    .filter(|(position, _)| recorded.seen_before.binary_search(position).is_err())
                    .filter(|(_, event)| event.settled.is_some())
                    .map(|(_, event)| event.event_type.as_str());
                inbox::count_processed(metrics, settled);
                if recorded.new_events > 0 {
                    app.inbox_wakeup.notify_one();
                }
                let mut probes = txn
                    .events
                    .iter()
                    .filter(|e| e.event_type == probe::EVENT_TYPE)
                    .peekable();
                if let (Some(_), Some(calling)) =
                    (probes.peek(), config.homeserver_by_id(&homeserver))
                {
                    let sender = calling.sender_user_id();
                    for event in probes.filter(|e| e.sender == sender.as_str()) {
                        probe::received(&app, &event.event_json);
                    }
                }
            }
            empty_object().into_response()
        }
        Err(error) => {
            tracing::error!(%error, "could not store a transaction; answering 503 so Synapse retries");
            ApiError::DatabaseUnavailable.into_response()
        }
    };
    app.metrics
        .transaction_ack_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// The fields every stored event needs, borrowed from the body where no escape needs decoding;
/// every other field is skipped unread (the processor reads the content of the few types it acts
/// on).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    room_id: Cow<'a, str>,
    #[serde(borrow)]
    sender: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(default, borrow)]
    state_key: Option<Cow<'a, str>>,
}

/// Splits a transaction body into events to store and entries to quarantine. Never fails: what
/// cannot be read is quarantined with the reason. Quarantined text is stored lossily: invalid UTF-8
/// and NUL characters (which PostgreSQL's `text` refuses, which would answer 503 and have Synapse
/// retry the transaction forever) become U+FFFD.
pub fn parse(
    homeserver: &str,
    txn_id: String,
    body: &[u8],
    received_at: i64,
) -> IncomingTransaction {
    let mut fingerprint = Sha256::new();
    let mut events = Vec::new();
    let mut quarantined = Vec::new();
    let mut unreadable = false;
    // Valid UTF-8 (always, from Synapse) is checked in one pass; only invalid bytes pay for the
    // lossy copy.
    let text = match std::str::from_utf8(body) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    };
    match serde_json::from_str::<Body>(&text) {
        Err(error) => {
            unreadable = true;
            fingerprint.update(body);
            quarantined.push(NewQuarantine {
                homeserver: homeserver.to_owned(),
                txn_id: txn_id.clone(),
                event_id: None,
                reason: format!("the body is not a transaction ({error})"),
                body: without_nul(&text),
                received_at,
            });
        }
        Ok(parsed) => {
            for raw in parsed.events {
                let json = raw.get();
                match read_event(json) {
                    Ok(envelope) => {
                        fingerprint.update(envelope.event_id.as_bytes());
                        events.push(NewEvent {
                            event_id: envelope.event_id.into_owned(),
                            room_id: envelope.room_id.into_owned(),
                            event_type: envelope.event_type.into_owned(),
                            sender: envelope.sender.into_owned(),
                            state_key: envelope.state_key.map(Cow::into_owned),
                            event_json: json.to_owned(),
                            settled: None,
                        });
                    }
                    Err(reason) => {
                        let event_id = serde_json::from_str::<serde_json::Value>(json)
                            .ok()
                            .and_then(|v| v.get("event_id")?.as_str().map(without_nul));
                        fingerprint.update(event_id.as_deref().unwrap_or(json).as_bytes());
                        quarantined.push(NewQuarantine {
                            homeserver: homeserver.to_owned(),
                            txn_id: txn_id.clone(),
                            event_id,
                            reason,
                            body: json.to_owned(),
                            received_at,
                        });
                    }
                }
                fingerprint.update(b"\n");
            }
        }
    }
    let fingerprint = hex(&fingerprint.finalize());
    IncomingTransaction {
        homeserver: homeserver.to_owned(),
        txn_id,
        fingerprint,
        received_at,
        unreadable,
        events,
        quarantined,
    }
}

/// Lowercase hexadecimal, the fingerprint's stored form.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// Reads one event's envelope: ids that ruma accepts, and for a membership a user as state key.
/// (The content waits for the inbox processor, off the acknowledgement's path.)
fn read_event(json: &str) -> Result<Envelope<'_>, String> {
    let envelope: Envelope = serde_json::from_str(json)
        .map_err(|error| format!("the event lacks a valid envelope ({error})"))?;
    let fields = [
        &envelope.event_id,
        &envelope.room_id,
        &envelope.sender,
        &envelope.event_type,
        envelope.state_key.as_ref().unwrap_or(&Cow::Borrowed("")),
    ];
    if fields.iter().any(|field| field.contains('\0')) {
        return Err("the event's envelope holds a NUL character".into());
    }
    let invalid = |field: &str, error: ruma::IdParseError| {
        format!("the event lacks a valid envelope ({field}: {error})")
    };
    <&EventId>::try_from(&*envelope.event_id).map_err(|error| invalid("event_id", error))?;
    <&RoomId>::try_from(&*envelope.room_id).map_err(|error| invalid("room_id", error))?;
    <&UserId>::try_from(&*envelope.sender).map_err(|error| invalid("sender", error))?;
    if envelope.event_type == "m.room.member" {
        let state_key = envelope.state_key.as_deref().unwrap_or_default();
        <&UserId>::try_from(state_key).map_err(|error| {
            format!("the m.room.member event's state_key {state_key:?} is not a user id ({error})")
        })?;
    }
    Ok(envelope)
}

/// `text` with every NUL replaced by U+FFFD.
fn without_nul(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_ID;

    fn message(event_id: &str) -> String {
        format!(
            r#"{{"type":"m.room.message","event_id":"{event_id}","room_id":"!r:example.org","sender":"@alice:example.org","origin_server_ts":1,"content":{{"msgtype":"m.text","body":"hi"}}}}"#
        )
    }

    #[test]
    fn good_events_are_kept_in_order() {
        let body = format!(r#"{{"events":[{},{}]}}"#, message("$a"), message("$b"));
        let txn = parse(DEFAULT_ID, "1".into(), body.as_bytes(), 0);
        assert!(txn.quarantined.is_empty(), "{:?}", txn.quarantined);
        let ids: Vec<_> = txn.events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["$a", "$b"]);
    }

    #[test]
    fn unreadable_bodies_are_quarantined_whole() {
        for body in [r#"{"events": "nope"}"#, "[]", "not json", ""] {
            let txn = parse(DEFAULT_ID, "1".into(), body.as_bytes(), 0);
            assert!(txn.events.is_empty() && txn.unreadable);
            assert_eq!(txn.quarantined.len(), 1, "{body}");
            assert_eq!(txn.quarantined[0].body, body);
        }
    }

    #[test]
    fn bad_events_are_quarantined_one_by_one() {
        let no_room = r#"{"type":"m.room.message","event_id":"$x","sender":"@a:b.c","origin_server_ts":1,"content":{}}"#;
        let bad_member = r#"{"type":"m.room.member","event_id":"$y","room_id":"!r:b.c","sender":"@a:b.c","origin_server_ts":1,"state_key":"javascript:alert(1)","content":{"membership":"join"}}"#;
        let body = format!(
            r#"{{"events":[{no_room},{},{bad_member}]}}"#,
            message("$ok")
        );
        let txn = parse(DEFAULT_ID, "1".into(), body.as_bytes(), 0);
        assert_eq!(txn.events.len(), 1);
        let quarantined: Vec<_> = txn
            .quarantined
            .iter()
            .map(|q| q.event_id.as_deref())
            .collect();
        assert_eq!(quarantined, [Some("$x"), Some("$y")]);
    }

    #[test]
    fn nul_characters_are_never_stored() {
        // A raw NUL makes the body unreadable; it is kept without it.
        let txn = parse(DEFAULT_ID, "1".into(), b"{\"events\": [\0]}", 0);
        assert!(txn.unreadable);
        assert_eq!(txn.quarantined[0].body, "{\"events\": [\u{fffd}]}");
        // Decoded from an escape into the envelope: the event is quarantined.
        let event = message("$a\\u0000b").replace("m.room.message", "m.room\\u0000message");
        let txn = parse(
            DEFAULT_ID,
            "1".into(),
            format!(r#"{{"events":[{event}]}}"#).as_bytes(),
            0,
        );
        assert!(txn.events.is_empty());
        assert_eq!(txn.quarantined.len(), 1);
        assert!(txn.quarantined[0].reason.contains("NUL"));
        assert_eq!(txn.quarantined[0].event_id.as_deref(), Some("$a\u{fffd}b"));
        assert!(!txn.quarantined[0].body.contains('\0'));
    }

    #[test]
    fn fingerprint_depends_on_event_ids_not_on_volatile_fields() {
        let first = format!(r#"{{"events":[{}]}}"#, message("$a"));
        let retried = first.replace(
            r#""origin_server_ts":1"#,
            r#""origin_server_ts":1,"unsigned":{"age":99}"#,
        );
        let other = format!(r#"{{"events":[{}]}}"#, message("$b"));
        let fp = |body: &str| parse(DEFAULT_ID, "1".into(), body.as_bytes(), 0).fingerprint;
        assert_eq!(fp(&first), fp(&retried));
        assert_ne!(fp(&first), fp(&other));
    }
}
