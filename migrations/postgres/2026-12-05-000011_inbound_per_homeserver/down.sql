ALTER TABLE quarantine DROP COLUMN homeserver;
ALTER TABLE inbox_events DROP COLUMN homeserver;
DROP INDEX as_transactions_numbered;
-- Only the top-level homeserver's transactions fit the old key.
DELETE FROM as_transactions WHERE homeserver <> 'default';
ALTER TABLE as_transactions DROP CONSTRAINT as_transactions_homeserver_txn_id_fingerprint_key;
ALTER TABLE as_transactions ADD CONSTRAINT as_transactions_txn_id_fingerprint_key UNIQUE (txn_id, fingerprint);
ALTER TABLE as_transactions DROP COLUMN homeserver;
