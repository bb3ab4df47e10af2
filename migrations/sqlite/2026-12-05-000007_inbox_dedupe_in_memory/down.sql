-- Puts the unique index on event_id back; of events stored twice meanwhile, the first stays.
CREATE TABLE inbox_events_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT OR IGNORE INTO inbox_events_old
    SELECT id, event_id, room_id, event_type, sender, state_key, txn_id, event_json,
           received_at, processed_at, outcome
    FROM inbox_events ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'inbox_events_old';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'inbox_events_old', seq FROM sqlite_sequence WHERE name = 'inbox_events';
DROP TABLE inbox_events;
ALTER TABLE inbox_events_old RENAME TO inbox_events;
CREATE INDEX inbox_events_pending ON inbox_events (id) WHERE processed_at IS NULL;
CREATE INDEX inbox_events_processed ON inbox_events (received_at) WHERE processed_at IS NOT NULL;
