ALTER TABLE quarantine DROP COLUMN homeserver;
ALTER TABLE inbox_events DROP COLUMN homeserver;
CREATE TABLE as_transactions_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    txn_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    txn_number BIGINT,
    event_count INTEGER NOT NULL,
    received_at BIGINT NOT NULL,
    CONSTRAINT as_transactions_txn_id_fingerprint_key UNIQUE (txn_id, fingerprint)
);
-- Only the top-level homeserver's transactions fit the old key.
INSERT INTO as_transactions_old
    SELECT id, txn_id, fingerprint, txn_number, event_count, received_at
    FROM as_transactions WHERE homeserver = 'default' ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'as_transactions_old';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'as_transactions_old', seq FROM sqlite_sequence WHERE name = 'as_transactions';
DROP TABLE as_transactions;
ALTER TABLE as_transactions_old RENAME TO as_transactions;
CREATE INDEX as_transactions_txn_number ON as_transactions (txn_number);
