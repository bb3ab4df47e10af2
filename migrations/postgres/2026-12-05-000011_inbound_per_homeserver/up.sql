-- contract: the unique key (txn_id, fingerprint) becomes (homeserver, txn_id, fingerprint); the
-- previous release's ON CONFLICT (txn_id, fingerprint) matches no key here, so it cannot run beside
-- this schema: upgrade across this migration with the old pods stopped (scale to 0, then upgrade),
-- and roll back across it with `migrate --revert` first. (Found by tests/migrations_expand.rs.)
-- Several homeservers (DESIGN §13): Synapse's transactions are deduplicated and their txnId resets
-- detected per homeserver (txnId "1" from two homeservers are two transactions); events and
-- quarantined entries say which homeserver delivered them. Existing rows belong to the top-level
-- homeserver, `default`. Event ids stay unique across homeservers: an event of a room shared by two
-- of them is processed once, whichever delivers it first.
ALTER TABLE as_transactions ADD COLUMN homeserver TEXT NOT NULL DEFAULT 'default';
COMMENT ON COLUMN as_transactions.homeserver IS 'The homeserver that pushed it (its id in the config; default: the top-level one).';
ALTER TABLE as_transactions DROP CONSTRAINT as_transactions_txn_id_fingerprint_key;
ALTER TABLE as_transactions ADD CONSTRAINT as_transactions_homeserver_txn_id_fingerprint_key
    UNIQUE (homeserver, txn_id, fingerprint);
-- The last numbered transaction of one homeserver, read at every acknowledgement.
CREATE INDEX as_transactions_numbered ON as_transactions (homeserver, id) WHERE txn_number IS NOT NULL;

ALTER TABLE inbox_events ADD COLUMN homeserver TEXT NOT NULL DEFAULT 'default';
COMMENT ON COLUMN inbox_events.homeserver IS 'The homeserver that delivered it first.';
ALTER TABLE quarantine ADD COLUMN homeserver TEXT NOT NULL DEFAULT 'default';
COMMENT ON COLUMN quarantine.homeserver IS 'The homeserver whose transaction carried it.';
