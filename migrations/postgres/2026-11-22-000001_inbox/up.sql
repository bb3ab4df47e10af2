-- The inbox: what Synapse pushed, written before the transaction is acknowledged.

CREATE TABLE as_transactions (
    id BIGSERIAL PRIMARY KEY,
    txn_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    txn_number BIGINT,
    event_count INTEGER NOT NULL,
    received_at BIGINT NOT NULL,
    CONSTRAINT as_transactions_txn_id_fingerprint_key UNIQUE (txn_id, fingerprint)
);
CREATE INDEX as_transactions_txn_number ON as_transactions (txn_number);
COMMENT ON TABLE as_transactions IS 'One row per distinct transaction Synapse pushed; a retry of the same one finds its row and is acknowledged without being stored again.';
COMMENT ON COLUMN as_transactions.txn_id IS 'Synapse''s txnId from the URL path.';
COMMENT ON COLUMN as_transactions.fingerprint IS 'SHA-256 over the event ids (or the body, when it holds none): tells a retry from a new transaction reusing an id after Synapse''s database was reset.';
COMMENT ON COLUMN as_transactions.txn_number IS 'txn_id as a number when it is one (Synapse counts up), to detect a reset.';
COMMENT ON COLUMN as_transactions.event_count IS 'How many events the transaction carried.';
COMMENT ON COLUMN as_transactions.received_at IS 'Unix time in milliseconds when it was stored.';

CREATE TABLE inbox_events (
    id BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    sender TEXT NOT NULL,
    state_key TEXT,
    txn_id TEXT NOT NULL,
    event_json TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    processed_at BIGINT,
    outcome TEXT,
    CONSTRAINT inbox_events_event_id_key UNIQUE (event_id)
);
CREATE INDEX inbox_events_pending ON inbox_events (id) WHERE processed_at IS NULL;
COMMENT ON TABLE inbox_events IS 'Every event Synapse delivered, once (deduplicated on event_id), processed in id order.';
COMMENT ON COLUMN inbox_events.id IS 'Arrival order; the processor works through pending rows in this order, which keeps each room in order.';
COMMENT ON COLUMN inbox_events.event_id IS 'The Matrix event id; a second delivery of the same event is ignored.';
COMMENT ON COLUMN inbox_events.room_id IS 'The room the event belongs to (opaque: never parsed).';
COMMENT ON COLUMN inbox_events.event_type IS 'The event''s type, e.g. m.room.member.';
COMMENT ON COLUMN inbox_events.sender IS 'The event''s sender.';
COMMENT ON COLUMN inbox_events.state_key IS 'The state key for state events, NULL otherwise.';
COMMENT ON COLUMN inbox_events.txn_id IS 'The transaction that first delivered it.';
COMMENT ON COLUMN inbox_events.event_json IS 'The event exactly as Synapse sent it.';
COMMENT ON COLUMN inbox_events.received_at IS 'Unix time in milliseconds when it was stored.';
COMMENT ON COLUMN inbox_events.processed_at IS 'Unix time in milliseconds when the processor handled it; NULL while pending.';
COMMENT ON COLUMN inbox_events.outcome IS 'What the processor recorded the event as.';

CREATE TABLE quarantine (
    id BIGSERIAL PRIMARY KEY,
    txn_id TEXT NOT NULL,
    event_id TEXT,
    reason TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
COMMENT ON TABLE quarantine IS 'Bodies and events that could not be understood: acknowledged to Synapse, kept here for inspection, never processed.';
COMMENT ON COLUMN quarantine.txn_id IS 'The transaction that carried it.';
COMMENT ON COLUMN quarantine.event_id IS 'The event id, when the event had a readable one.';
COMMENT ON COLUMN quarantine.reason IS 'Why it could not be understood.';
COMMENT ON COLUMN quarantine.body IS 'The whole transaction body, or the one event, as received.';
COMMENT ON COLUMN quarantine.received_at IS 'Unix time in milliseconds when it was stored.';
