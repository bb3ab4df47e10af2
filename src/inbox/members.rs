//! What Synapse's transactions tell the platform (DESIGN §7.4): `member.joined` and `member.left`
//! of declared members of managed rooms, written in the transaction that marks the inbox batch
//! processed.

use serde_json::Value;

use super::classify::Observed;
use crate::store::inbox::{Handled, PendingEvent};
use crate::store::outbox::{self, EventType};
use crate::store::outbox_data::{EventData, MemberChange};
use crate::store::rooms as room_store;
use crate::store::{DbConnection, StoreError, members};

/// For each membership event of the inbox batch: a declared member of a managed room joined
/// (`member.joined`), or, having joined, left, was kicked or was banned (`member.left`). Whether
/// they were joined before comes from `unsigned.prev_content`, which Synapse sends with state
/// events: a display name change (join → join) or a declined invite (invite → leave) is no news.
/// The bots' kicks and bans of a member (echoes) count; the bots' own memberships do not.
///
/// Called after the batch's repairs: a transaction that appends holds the tenant's outbox head
/// until it commits, so appending last keeps the locks in one order everywhere — rooms, then
/// heads — as the worker takes them (`record_job_failure`, then `job_finished`).
pub fn members_seen(
    conn: &mut DbConnection,
    processed: &[(PendingEvent, Handled<Observed>)],
    now_ms: i64,
) -> Result<(), StoreError> {
    let memberships: Vec<(&PendingEvent, &str)> = processed
        .iter()
        .filter(|(event, handled)| {
            event.event_type == "m.room.member"
                && matches!(handled.meaning, Observed::Membership | Observed::OwnEcho)
        })
        .filter_map(|(event, _)| Some((event, event.state_key.as_deref()?)))
        .collect();
    if memberships.is_empty() {
        return Ok(());
    }
    // One query for the batch's rooms, not one per event: most memberships are in rooms we do
    // not manage, and the acknowledgements wait while this transaction holds SQLite's writer.
    let mut room_ids: Vec<&str> = memberships
        .iter()
        .map(|(event, _)| event.room_id.as_str())
        .collect();
    room_ids.sort_unstable();
    room_ids.dedup();
    let managed = room_store::find_live_by_room_ids(conn, &room_ids)?;
    for (event, user_id) in memberships {
        let Some(room) = managed.get(&event.room_id) else {
            continue;
        };
        let Some((event_type, membership)) = membership_change(&event.event_json) else {
            continue;
        };
        if members::is_declared(conn, room.id, user_id)? {
            let change = MemberChange {
                user_id: user_id.to_string(),
                room_id: event.room_id.clone(),
                membership,
            };
            let data = match event_type {
                EventType::MemberJoined => EventData::MemberJoined(change),
                _ => EventData::MemberLeft(change),
            };
            outbox::append_for_room(conn, room, &data, now_ms)?;
        }
    }
    Ok(())
}

/// `member.joined` or `member.left` with the new membership, when the event is one of those.
fn membership_change(event_json: &str) -> Option<(EventType, String)> {
    let event: Value = serde_json::from_str(event_json).ok()?;
    let now = event["content"]["membership"].as_str()?;
    let before = event["unsigned"]["prev_content"]["membership"].as_str();
    let event_type = match (before, now) {
        (Some("join"), "join") => return None,
        (_, "join") => EventType::MemberJoined,
        (Some("join"), "leave" | "ban") => EventType::MemberLeft,
        _ => return None,
    };
    Some((event_type, now.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(content: &str, prev: Option<&str>) -> Option<(EventType, String)> {
        let mut event = json!({"content": serde_json::from_str::<Value>(content).unwrap()});
        if let Some(prev) = prev {
            event["unsigned"] =
                json!({"prev_content": serde_json::from_str::<Value>(prev).unwrap()});
        }
        membership_change(&event.to_string())
    }

    #[test]
    fn joins_and_leaves_of_joined_members_are_news_and_the_rest_is_not() {
        let join = r#"{"membership":"join"}"#;
        let invite = r#"{"membership":"invite"}"#;
        let joined = Some((EventType::MemberJoined, "join".to_owned()));
        assert_eq!(change(join, Some(invite)), joined);
        assert_eq!(
            change(join, None),
            joined,
            "a public room joined without an invite"
        );
        assert_eq!(
            change(r#"{"membership":"join","displayname":"A"}"#, Some(join)),
            None
        );
        for left in ["leave", "ban"] {
            let content = format!(r#"{{"membership":"{left}"}}"#);
            assert_eq!(
                change(&content, Some(join)),
                Some((EventType::MemberLeft, left.to_owned()))
            );
            assert_eq!(
                change(&content, Some(invite)),
                None,
                "an invite declined or revoked"
            );
        }
        assert_eq!(change(invite, None), None);
        assert_eq!(change("{}", None), None);
    }
}
