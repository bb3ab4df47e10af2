#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The inbox's acknowledgement write (`Store::record_transaction`, `src/store/inbox.rs`) on real
//! SQLite and real PostgreSQL, with no processor running: settled events (those the processor
//! would do nothing with) are stored processed with their outcome, the others wait for it; events
//! stored before under another txnId are reported by position and not stored again; a
//! transaction's quarantined entries are stored with it, once.

mod support;

use openmeet_appservice::store::Store;
use openmeet_appservice::store::inbox::{
    Handled, IncomingTransaction, NewEvent, NewQuarantine, Recorded,
};
use openmeet_appservice::store::inbox_views::{self, StoredEvent};
use support::Backend;
use support::test_store;

on_both_backends!(
    settled_events_are_stored_processed_and_the_rest_wait_for_the_processor,
    events_stored_before_are_reported_by_position_and_stored_once,
    quarantined_entries_are_stored_with_their_transaction_once,
    every_row_of_a_large_transaction_keeps_its_own_fields,
    an_event_sharing_an_old_ones_entry_in_the_id_set_is_stored_and_then_known,
);

const AT: i64 = 1_700_000_000_000;

fn event(event_id: &str, event_type: &str, settled: Option<&'static str>) -> NewEvent {
    NewEvent {
        event_id: event_id.into(),
        room_id: "!r:example.org".into(),
        event_type: event_type.into(),
        sender: "@alice:example.org".into(),
        state_key: (event_type == "m.room.member").then(|| "@alice:example.org".into()),
        event_json: format!(r#"{{"event_id":"{event_id}","type":"{event_type}"}}"#),
        settled,
    }
}

fn transaction(txn_id: &str, events: Vec<NewEvent>) -> IncomingTransaction {
    IncomingTransaction {
        homeserver: "default".into(),
        txn_id: txn_id.into(),
        fingerprint: format!("fingerprint of {txn_id}"),
        received_at: AT,
        unreadable: false,
        events,
        quarantined: Vec::new(),
    }
}

async fn record(store: &Store, txn: IncomingTransaction) -> Recorded {
    store.record_transaction(txn).await.unwrap().1
}

/// Every stored event, oldest first.
fn stored(store: &Store) -> Vec<StoredEvent> {
    let mut events = inbox_views::recent_events(&mut store.connection().unwrap(), 1_000).unwrap();
    events.reverse();
    events
}

async fn settled_events_are_stored_processed_and_the_rest_wait_for_the_processor(backend: Backend) {
    let store = test_store::fresh("inbox_settled", backend);
    let recorded = record(
        &store,
        transaction(
            "1",
            vec![
                event("$message", "m.room.message", Some("message")),
                event("$member", "m.room.member", None),
                event("$levels", "m.room.power_levels", None),
                event("$echo", "m.room.name", Some("own_echo")),
            ],
        ),
    )
    .await;
    assert_eq!(recorded.new_events, 4);
    assert!(recorded.seen_before.is_empty());

    // Stored in id order: the two that wait first, side by side (the processor rewrites their
    // rows), then the settled ones; each group in arrival order.
    let rows: Vec<_> = stored(&store)
        .into_iter()
        .map(|e| (e.event_id, e.processed_at, e.outcome))
        .collect();
    assert_eq!(
        rows,
        [
            ("$member".into(), None, None),
            ("$levels".into(), None, None),
            ("$message".into(), Some(AT), Some("message".into())),
            ("$echo".into(), Some(AT), Some("own_echo".into())),
        ]
    );
    let (pending, oldest) = inbox_views::pending_summary(&mut store.connection().unwrap()).unwrap();
    assert_eq!((pending, oldest), (2, Some(AT)));

    // The processor is handed only the two that wait, in order.
    let processed = store
        .process_inbox(
            100,
            AT + 5,
            |event| Handled {
                outcome: format!("looked at {}", event.event_type),
                quarantine: None,
                meaning: (),
            },
            |_, _| Ok(()),
        )
        .await
        .unwrap();
    let handed: Vec<_> = processed.iter().map(|(e, _)| e.event_id.as_str()).collect();
    assert_eq!(handed, ["$member", "$levels"]);
    let outcomes: Vec<_> = stored(&store).into_iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Some("looked at m.room.member".into()),
            Some("looked at m.room.power_levels".into()),
            Some("message".into()),
            Some("own_echo".into()),
        ]
    );
}

async fn events_stored_before_are_reported_by_position_and_stored_once(backend: Backend) {
    let store = test_store::fresh("inbox_seen_before", backend);
    let first = vec![
        event("$a", "m.room.message", Some("message")),
        event("$b", "m.room.member", None),
    ];
    assert_eq!(record(&store, transaction("1", first)).await.new_events, 2);

    // $b and $a again under a new txnId, and $c twice in this one.
    let second = || {
        vec![
            event("$b", "m.room.member", None),
            event("$c", "m.room.message", Some("message")),
            event("$c", "m.room.message", Some("message")),
            event("$a", "m.room.message", Some("message")),
            event("$d", "m.room.member", None),
        ]
    };
    let recorded = record(&store, transaction("2", second())).await;
    assert_eq!(
        recorded,
        Recorded {
            duplicate: false,
            new_events: 2,
            reset_from: None,
            seen_before: vec![0, 2, 3],
        }
    );
    // The same transaction again is a duplicate as a whole.
    let again = record(&store, transaction("2", second())).await;
    assert!(again.duplicate && again.new_events == 0 && again.seen_before.is_empty());

    let ids: Vec<_> = stored(&store).into_iter().map(|e| e.event_id).collect();
    assert_eq!(ids, ["$b", "$a", "$d", "$c"]);
}

async fn quarantined_entries_are_stored_with_their_transaction_once(backend: Backend) {
    let store = test_store::fresh("inbox_quarantine", backend);
    let with_quarantine = || {
        let mut txn = transaction("7", vec![event("$ok", "m.room.message", Some("message"))]);
        txn.quarantined = ["$bad1", "$bad2"]
            .iter()
            .map(|id| NewQuarantine {
                homeserver: "default".into(),
                txn_id: "7".into(),
                event_id: Some((*id).into()),
                reason: format!("{id} lacks a valid envelope"),
                body: format!(r#"{{"event_id":"{id}"}}"#),
                received_at: AT,
            })
            .collect();
        txn
    };
    assert_eq!(record(&store, with_quarantine()).await.new_events, 1);
    assert!(record(&store, with_quarantine()).await.duplicate);

    let mut entries = inbox_views::recent_quarantine(&mut store.connection().unwrap(), 10).unwrap();
    entries.reverse();
    let entries: Vec<_> = entries
        .into_iter()
        .map(|q| (q.txn_id, q.event_id, q.reason, q.received_at))
        .collect();
    assert_eq!(
        entries,
        [
            (
                "7".into(),
                Some("$bad1".into()),
                "$bad1 lacks a valid envelope".into(),
                AT
            ),
            (
                "7".into(),
                Some("$bad2".into()),
                "$bad2 lacks a valid envelope".into(),
                AT
            ),
        ]
    );
}

/// 135 events go to SQLite as statements of 128, 4, 2 and 1 rows whose shared values are bound
/// once: every row must still get its own fields, and only the settled ones the receive time.
async fn every_row_of_a_large_transaction_keeps_its_own_fields(backend: Backend) {
    let store = test_store::fresh("inbox_large", backend);
    let events: Vec<NewEvent> = (0..135)
        .map(|i| {
            let (event_type, settled) = if i % 3 == 0 {
                ("m.room.member", None)
            } else {
                ("m.room.message", Some("message"))
            };
            NewEvent {
                room_id: format!("!room{i}:example.org"),
                sender: format!("@user{i}:example.org"),
                state_key: (event_type == "m.room.member")
                    .then(|| format!("@member{i}:example.org")),
                ..event(&format!("$event{i}"), event_type, settled)
            }
        })
        .collect();
    let recorded = record(&store, transaction("7", events.clone())).await;
    assert_eq!(recorded.new_events, 135);

    let expected_order = (events.iter().filter(|e| e.settled.is_none()))
        .chain(events.iter().filter(|e| e.settled.is_some()));
    let rows = stored(&store);
    assert_eq!(rows.len(), 135);
    for (row, event) in rows.iter().zip(expected_order) {
        assert_eq!(
            (
                row.event_id.as_str(),
                row.room_id.as_str(),
                row.event_type.as_str(),
                row.txn_id.as_str(),
                row.homeserver.as_str(),
                row.processed_at,
                row.outcome.as_deref(),
            ),
            (
                event.event_id.as_str(),
                event.room_id.as_str(),
                event.event_type.as_str(),
                "7",
                "default",
                event.settled.map(|_| AT),
                event.settled,
            )
        );
    }

    // The pending ones, as the processor reads them back: sender, state key and JSON too.
    let processed = store
        .process_inbox(
            1_000,
            AT + 5,
            |_| Handled {
                outcome: "looked at".into(),
                quarantine: None,
                meaning: (),
            },
            |_, _| Ok(()),
        )
        .await
        .unwrap();
    let pending: Vec<_> = events.iter().filter(|e| e.settled.is_none()).collect();
    assert_eq!(processed.len(), pending.len());
    for ((read, _), event) in processed.iter().zip(pending) {
        assert_eq!(
            (
                read.event_id.as_str(),
                read.sender.as_str(),
                read.state_key.as_deref(),
                read.event_json.as_str(),
                read.txn_id.as_str(),
                read.homeserver.as_str(),
            ),
            (
                event.event_id.as_str(),
                event.sender.as_str(),
                event.state_key.as_deref(),
                event.event_json.as_str(),
                "7",
                "default",
            )
        );
    }
}

/// Two event ids whose fingerprints agree in the 44 bits SQLite's in-memory id set keeps
/// (`store/seen_events.rs`; found by a birthday search over 24 million ids). The second is a new
/// event, not a duplicate: it must be stored, and only then be known. PostgreSQL has its unique
/// index and no set, and must agree.
async fn an_event_sharing_an_old_ones_entry_in_the_id_set_is_stored_and_then_known(
    backend: Backend,
) {
    let (first, second) = ("$collide5649918:server", "$collide14845550:server");
    assert!(
        openmeet_appservice::harness::seen_events_share_an_entry(first, second),
        "the pair no longer shares an entry (the std hasher changed?): find a new pair with a \
         birthday search over the set's 44 bits and put it here"
    );
    let store = test_store::fresh("inbox_shared_entry", backend);
    let one = record(
        &store,
        transaction("1", vec![event(first, "m.room.message", None)]),
    )
    .await;
    assert_eq!((one.new_events, one.seen_before.len()), (1, 0));
    let two = record(
        &store,
        transaction("2", vec![event(second, "m.room.message", None)]),
    )
    .await;
    assert_eq!(
        (two.new_events, two.seen_before),
        (1, vec![]),
        "a new event whose entry an old one shares was taken for a duplicate"
    );
    let three = record(
        &store,
        transaction(
            "3",
            vec![
                event(second, "m.room.message", None),
                event(first, "m.room.message", None),
            ],
        ),
    )
    .await;
    assert_eq!((three.new_events, three.seen_before), (0, vec![0, 1]));
}
