-- contract: the unique index on inbox_events(event_id) goes (see below); earlier binaries rely on it
-- for ON CONFLICT (event_id), so a rollback across this migration runs `migrate --revert 1` first.
-- SQLite deduplicates event ids in memory (store/seen_events.rs): the unique index on the random
-- `event_id` dirtied one page per event of every acknowledged transaction (137 of the 159 pages a
-- 100-event commit wrote), which capped acknowledgements at ~350 transactions per second. SQLite
-- serves one process, whose single writer sees every insert, so the set loaded from this table at
-- the first transaction and kept in step after each commit is exact.
--
-- Rolling the binary back past this release: run this release's `migrate --revert 1` first
-- (down.sql puts the unique index back, dropping later duplicates), since earlier binaries rely on
-- the index for `ON CONFLICT (event_id)`.
CREATE TABLE inbox_events_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order; keeps each room in order
    event_id TEXT NOT NULL,            -- Matrix event id; deduplicated before insert (see above)
    room_id TEXT NOT NULL,             -- opaque, never parsed
    event_type TEXT NOT NULL,          -- e.g. m.room.member
    sender TEXT NOT NULL,
    state_key TEXT,                    -- NULL for non-state events
    txn_id TEXT NOT NULL,              -- the transaction that first delivered it
    event_json TEXT NOT NULL,          -- the event exactly as sent
    received_at BIGINT NOT NULL,       -- unix ms
    processed_at BIGINT,               -- unix ms; NULL while pending
    outcome TEXT                       -- what the processor recorded it as
);
INSERT INTO inbox_events_new
    SELECT id, event_id, room_id, event_type, sender, state_key, txn_id, event_json,
           received_at, processed_at, outcome
    FROM inbox_events ORDER BY id;
-- Ids are never reused, even those of pruned rows.
DELETE FROM sqlite_sequence WHERE name = 'inbox_events_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'inbox_events_new', seq FROM sqlite_sequence WHERE name = 'inbox_events';
DROP TABLE inbox_events;
ALTER TABLE inbox_events_new RENAME TO inbox_events;
CREATE INDEX inbox_events_pending ON inbox_events (id) WHERE processed_at IS NULL;
CREATE INDEX inbox_events_processed ON inbox_events (received_at) WHERE processed_at IS NOT NULL;
