//! What one push from Synapse holds once parsed, ready to be stored in the inbox: the transaction,
//! its events, and what was quarantined.

use diesel::prelude::*;

use super::schema::quarantine;

/// A transaction as parsed from Synapse's push, ready to be stored.
#[derive(Debug)]
pub struct IncomingTransaction {
    /// The homeserver that pushed it (its config id): txnIds are its own.
    pub homeserver: String,
    pub txn_id: String,
    pub fingerprint: String,
    pub received_at: i64,
    /// The body was not a transaction at all; it is the one quarantined entry.
    pub unreadable: bool,
    pub events: Vec<NewEvent>,
    pub quarantined: Vec<NewQuarantine>,
}

/// An event to store; its txnId and receive time are the transaction's.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: String,
    pub room_id: String,
    pub event_type: String,
    pub sender: String,
    pub state_key: Option<String>,
    pub event_json: String,
    /// The outcome of an event the processor would do nothing with (`inbox::classify::settled`): it is
    /// stored processed, at its receive time. `None`: it waits for the processor.
    pub settled: Option<&'static str>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = quarantine)]
pub struct NewQuarantine {
    pub homeserver: String,
    pub txn_id: String,
    pub event_id: Option<String>,
    pub reason: String,
    pub body: String,
    pub received_at: i64,
}
