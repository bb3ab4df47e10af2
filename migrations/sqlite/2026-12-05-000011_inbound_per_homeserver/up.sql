-- contract: the unique key (txn_id, fingerprint) becomes (homeserver, txn_id, fingerprint): the
-- previous release's ON CONFLICT (txn_id, fingerprint) matches no key here; roll back across this
-- migration with `migrate --revert` first. (SQLite runs one process, so no release runs beside it.)
-- Several homeservers (DESIGN §13); see ../../postgres/2026-12-05-000011_inbound_per_homeserver.
-- SQLite cannot change a table's constraints in place: as_transactions is rebuilt with the
-- homeserver in its key, keeping its ids.
CREATE TABLE as_transactions_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    homeserver TEXT NOT NULL DEFAULT 'default', -- the homeserver that pushed it (config id)
    txn_id TEXT NOT NULL,              -- Synapse's txnId from the URL path
    fingerprint TEXT NOT NULL,         -- SHA-256 over the event ids (or the body): retry vs reset
    txn_number BIGINT,                 -- txn_id as a number when it is one, to detect a reset
    event_count INTEGER NOT NULL,      -- how many events it carried
    received_at BIGINT NOT NULL,       -- unix ms
    CONSTRAINT as_transactions_homeserver_txn_id_fingerprint_key UNIQUE (homeserver, txn_id, fingerprint)
);
INSERT INTO as_transactions_new (id, txn_id, fingerprint, txn_number, event_count, received_at)
    SELECT id, txn_id, fingerprint, txn_number, event_count, received_at
    FROM as_transactions ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'as_transactions_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'as_transactions_new', seq FROM sqlite_sequence WHERE name = 'as_transactions';
DROP TABLE as_transactions;
ALTER TABLE as_transactions_new RENAME TO as_transactions;
CREATE INDEX as_transactions_txn_number ON as_transactions (txn_number);
-- The last numbered transaction of one homeserver, read at every acknowledgement.
CREATE INDEX as_transactions_numbered ON as_transactions (homeserver, id) WHERE txn_number IS NOT NULL;

ALTER TABLE inbox_events ADD COLUMN homeserver TEXT NOT NULL DEFAULT 'default'; -- delivered it first
ALTER TABLE quarantine ADD COLUMN homeserver TEXT NOT NULL DEFAULT 'default'; -- its transaction's
