-- Expand only: a nullable column that older binaries ignore.
ALTER TABLE rooms ADD COLUMN previous_room_id TEXT;

-- Small facts the daemon keeps about itself, shared by its replicas.
CREATE TABLE appservice_state (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The status report and the dead-jobs gauge look up dead jobs per tenant every few seconds.
CREATE INDEX jobs_dead_by_tenant ON jobs (tenant_id, id) WHERE status = 'dead';
