-- Expand only: a nullable column that older binaries ignore.
ALTER TABLE rooms ADD COLUMN previous_room_id TEXT;
COMMENT ON COLUMN rooms.previous_room_id IS 'The Matrix room this one replaced when reconcile found the old one lost (unknown to the homeserver, or out of the bot''s reach); NULL if never replaced.';

-- Small facts the daemon keeps about itself, shared by its replicas.
CREATE TABLE appservice_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
COMMENT ON TABLE appservice_state IS 'Small facts the daemon keeps about itself, shared by its replicas (e.g. the loop-back probe room).';
COMMENT ON COLUMN appservice_state.key IS 'What the value is, e.g. probe_room_id.';
COMMENT ON COLUMN appservice_state.value IS 'The value, as text.';
COMMENT ON COLUMN appservice_state.updated_at IS 'Unix milliseconds of the last change.';

-- The status report and the dead-jobs gauge look up dead jobs per tenant every few seconds.
CREATE INDEX jobs_dead_by_tenant ON jobs (tenant_id, id) WHERE status = 'dead';
