//! What a report must be before the tenant hears of it: a body the homeserver would take, a
//! reporter in the room, an event the tenant bot can read.

use ruma::{OwnedEventId, RoomId, UserId};
use serde_json::Value;

use super::reported_event;
use crate::matrix;
use crate::store::outbox_data::ReportedEvent;

/// A report's body, as Synapse 1.163 reads it (`synapse/rest/client/reporting.py`): an event
/// report may carry a string `reason` and an integer `score`; a room report must carry a string
/// `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub reason: Option<String>,
    pub score: Option<i64>,
}

impl Body {
    /// `None` when the homeserver would refuse the body: it is then passed through, so the
    /// client gets the homeserver's own error.
    pub fn parse(body: &[u8], of_event: bool) -> Option<Self> {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        let reason = match fields.get("reason") {
            None if of_event => None,
            Some(Value::String(reason)) => Some(reason.clone()),
            _ => return None,
        };
        let score = match fields.get("score") {
            None => None,
            Some(score) if of_event => Some(score.as_i64()?),
            Some(_) => None,
        };
        Some(Self { reason, score })
    }
}

/// What the checks found.
pub enum Checked {
    /// The reporter is in the room; for an event report, the event as the tenant bot read it.
    Event(Option<ReportedEvent>),
    /// The reporter has not joined the room.
    NotAMember,
    /// No such event in the room (or the tenant bot may not see it).
    NoEvent,
}

/// Asks the homeserver, as `bot`, whether `reporter` has joined the room and reads the
/// reported event.
pub async fn reporter_and_event(
    client: &matrix::Client,
    bot: &UserId,
    room_id: &RoomId,
    event_id: Option<OwnedEventId>,
    reporter: &UserId,
) -> Result<Checked, matrix::Error> {
    let membership = client.membership(bot, room_id, reporter).await?;
    if membership.as_deref() != Some("join") {
        return Ok(Checked::NotAMember);
    }
    let Some(event_id) = event_id else {
        return Ok(Checked::Event(None));
    };
    match client.room_event(bot, room_id.to_owned(), event_id).await? {
        Some(event) => Ok(Checked::Event(Some(reported_event(&event)))),
        None => Ok(Checked::NoEvent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_read_as_synapse_reads_them() {
        let event = |body: &str| Body::parse(body.as_bytes(), true);
        let room = |body: &str| Body::parse(body.as_bytes(), false);
        assert_eq!(
            event(r#"{"reason":"spam","score":-100}"#),
            Some(Body {
                reason: Some("spam".into()),
                score: Some(-100)
            })
        );
        assert_eq!(
            event("{}"),
            Some(Body {
                reason: None,
                score: None
            })
        );
        assert_eq!(event(r#"{"reason":5}"#), None);
        assert_eq!(event(r#"{"score":"high"}"#), None);
        assert_eq!(event(r#"{"score":1.5}"#), None);
        assert_eq!(event("[]"), None);
        assert_eq!(event("not json"), None);
        assert_eq!(room("{}"), None, "a room report needs a reason");
        assert_eq!(
            room(r#"{"reason":"abuse"}"#).map(|b| b.reason),
            Some(Some("abuse".into()))
        );
    }
}
