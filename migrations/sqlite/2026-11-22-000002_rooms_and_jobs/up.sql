-- Rooms the platform declared, their members, and the durable jobs that make Synapse match.
-- Column meanings are documented in ../../postgres/2026-11-22-000002_rooms_and_jobs/up.sql.

-- One row per declared room: desired settings and what exists in Synapse.
CREATE TABLE rooms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,           -- case kept
    kind TEXT NOT NULL,                -- event | group
    slug TEXT NOT NULL,                -- current slug; earlier ones stay in room_slugs
    name TEXT NOT NULL,
    topic TEXT,
    visibility TEXT NOT NULL,          -- public | private
    room_id TEXT,                      -- Matrix room id once created
    room_version TEXT,
    status TEXT NOT NULL,              -- pending | ready | failed | lost | deleted
    last_error TEXT,
    created_at BIGINT NOT NULL,        -- unix ms
    updated_at BIGINT NOT NULL         -- unix ms
);

-- Every slug a room has had, the current one included.
CREATE TABLE room_slugs (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    slug TEXT NOT NULL,
    room_key BIGINT NOT NULL REFERENCES rooms (id),
    PRIMARY KEY (tenant_id, kind, slug)
);
CREATE INDEX room_slugs_room_key ON room_slugs (room_key);

-- Declared members and the power-level entries the daemon owns.
CREATE TABLE room_members (
    room_key BIGINT NOT NULL REFERENCES rooms (id),
    user_id TEXT NOT NULL,
    role TEXT,                         -- NULL: removed, still to be kicked
    applied_level INTEGER,             -- what the daemon last wrote; NULL: owns no entry
    reason TEXT,                       -- the platform's reason for a removal, used when kicking
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (room_key, user_id)
);

-- Durable work: at least once, one job at a time per room in id order, leased.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    room_key BIGINT REFERENCES rooms (id), -- jobs of one room run one at a time in id order
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,             -- JSON
    status TEXT NOT NULL,              -- queued | running | succeeded | failed | dead | cancelled
    attempts INTEGER NOT NULL,
    run_after BIGINT NOT NULL,         -- unix ms
    lease_owner TEXT,
    lease_expires_at BIGINT,           -- unix ms; a lapsed running job is taken again
    last_error TEXT,
    result TEXT,                       -- JSON
    txn_prefix TEXT NOT NULL,          -- client-server txn ids the job sends start with this
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_runnable ON jobs (id) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_room ON jobs (room_key, id);
