-- The inbox: what Synapse pushed, written before the transaction is acknowledged.
-- Column meanings are documented in ../../postgres/2026-11-22-000001_inbox/up.sql; kept in step.

-- One row per distinct transaction Synapse pushed; a retry of the same one finds its row.
CREATE TABLE as_transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    txn_id TEXT NOT NULL,              -- Synapse's txnId from the URL path
    fingerprint TEXT NOT NULL,         -- SHA-256 over the event ids (or the body): retry vs reset
    txn_number BIGINT,                 -- txn_id as a number when it is one, to detect a reset
    event_count INTEGER NOT NULL,      -- how many events it carried
    received_at BIGINT NOT NULL,       -- unix ms
    CONSTRAINT as_transactions_txn_id_fingerprint_key UNIQUE (txn_id, fingerprint)
);
CREATE INDEX as_transactions_txn_number ON as_transactions (txn_number);

-- Every event Synapse delivered, once, processed in id (arrival) order.
CREATE TABLE inbox_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order; keeps each room in order
    event_id TEXT NOT NULL,            -- Matrix event id; a second delivery is ignored
    room_id TEXT NOT NULL,             -- opaque, never parsed
    event_type TEXT NOT NULL,          -- e.g. m.room.member
    sender TEXT NOT NULL,
    state_key TEXT,                    -- NULL for non-state events
    txn_id TEXT NOT NULL,              -- the transaction that first delivered it
    event_json TEXT NOT NULL,          -- the event exactly as sent
    received_at BIGINT NOT NULL,       -- unix ms
    processed_at BIGINT,               -- unix ms; NULL while pending
    outcome TEXT,                      -- what the processor recorded it as
    CONSTRAINT inbox_events_event_id_key UNIQUE (event_id)
);
CREATE INDEX inbox_events_pending ON inbox_events (id) WHERE processed_at IS NULL;

-- Bodies and events that could not be understood: acknowledged, kept for inspection, never processed.
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    txn_id TEXT NOT NULL,              -- the transaction that carried it
    event_id TEXT,                     -- when the event had a readable one
    reason TEXT NOT NULL,              -- why it could not be understood
    body TEXT NOT NULL,                -- the whole body, or the one event, as received
    received_at BIGINT NOT NULL        -- unix ms
);
