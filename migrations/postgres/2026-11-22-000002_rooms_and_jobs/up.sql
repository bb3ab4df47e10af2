-- Rooms the platform declared, their members, and the durable jobs that make Synapse match.

CREATE TABLE rooms (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    topic TEXT,
    visibility TEXT NOT NULL,
    room_id TEXT,
    room_version TEXT,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
COMMENT ON TABLE rooms IS 'One row per room the platform declared (PUT /v1/tenants/{tenant}/rooms/{kind}/{slug}): the desired settings and what exists in Synapse.';
COMMENT ON COLUMN rooms.tenant_id IS 'The tenant, case kept as configured.';
COMMENT ON COLUMN rooms.kind IS 'event or group.';
COMMENT ON COLUMN rooms.slug IS 'The current slug: the canonical alias is #{kind}-{slug}-{tenant}:{server}. Earlier slugs stay in room_slugs.';
COMMENT ON COLUMN rooms.name IS 'Desired m.room.name.';
COMMENT ON COLUMN rooms.topic IS 'Desired m.room.topic, NULL for none.';
COMMENT ON COLUMN rooms.visibility IS 'public (preset public_chat, join rule public) or private (private_chat, invite).';
COMMENT ON COLUMN rooms.room_id IS 'The Matrix room id once created (opaque, never parsed); NULL before.';
COMMENT ON COLUMN rooms.room_version IS 'The room version Synapse created it with.';
COMMENT ON COLUMN rooms.status IS 'pending, ready, failed, lost or deleted.';
COMMENT ON COLUMN rooms.last_error IS 'The last error a job for this room hit, as a sentence; NULL when fine.';
COMMENT ON COLUMN rooms.created_at IS 'Unix ms of the first declaration.';
COMMENT ON COLUMN rooms.updated_at IS 'Unix ms of the last change.';

CREATE TABLE room_slugs (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    slug TEXT NOT NULL,
    room_key BIGINT NOT NULL REFERENCES rooms (id),
    PRIMARY KEY (tenant_id, kind, slug)
);
CREATE INDEX room_slugs_room_key ON room_slugs (room_key);
COMMENT ON TABLE room_slugs IS 'Every slug a room has had (the current one included): an alias of an earlier slug still finds the same room and never creates a second.';
COMMENT ON COLUMN room_slugs.tenant_id IS 'The tenant, case kept.';
COMMENT ON COLUMN room_slugs.kind IS 'event or group.';
COMMENT ON COLUMN room_slugs.slug IS 'A slug of the room.';
COMMENT ON COLUMN room_slugs.room_key IS 'The room (rooms.id).';

CREATE TABLE room_members (
    room_key BIGINT NOT NULL REFERENCES rooms (id),
    user_id TEXT NOT NULL,
    role TEXT,
    applied_level INTEGER,
    reason TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (room_key, user_id)
);
COMMENT ON TABLE room_members IS 'Members the platform declared for a room, and the power-level entries the daemon owns.';
COMMENT ON COLUMN room_members.room_key IS 'The room (rooms.id).';
COMMENT ON COLUMN room_members.user_id IS 'The member''s Matrix user id.';
COMMENT ON COLUMN room_members.role IS 'The declared role; NULL when the member was removed and is still to be kicked.';
COMMENT ON COLUMN room_members.applied_level IS 'The power level the daemon last wrote for this user; NULL while it owns no entry.';
COMMENT ON COLUMN room_members.reason IS 'The reason the platform gave for a removal, used when kicking; NULL for the default.';
COMMENT ON COLUMN room_members.updated_at IS 'Unix ms of the last change.';

CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    room_key BIGINT REFERENCES rooms (id),
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    run_after BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    last_error TEXT,
    result TEXT,
    txn_prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_runnable ON jobs (id) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_room ON jobs (room_key, id);
COMMENT ON TABLE jobs IS 'Durable work: at least once, one job at a time per room in id order, leased by one worker at a time.';
COMMENT ON COLUMN jobs.tenant_id IS 'The tenant the job acts for (its bot).';
COMMENT ON COLUMN jobs.room_key IS 'The room it works on (rooms.id); jobs of one room run one at a time in id order. NULL for none.';
COMMENT ON COLUMN jobs.kind IS 'What the job does, e.g. ensure_room.';
COMMENT ON COLUMN jobs.payload IS 'The job''s input as JSON.';
COMMENT ON COLUMN jobs.status IS 'queued, running, succeeded, failed (permanent error), dead (out of attempts) or cancelled.';
COMMENT ON COLUMN jobs.attempts IS 'How many times a worker took it.';
COMMENT ON COLUMN jobs.run_after IS 'Unix ms before which it is not taken (backoff, rate limits).';
COMMENT ON COLUMN jobs.lease_owner IS 'The worker holding it while running.';
COMMENT ON COLUMN jobs.lease_expires_at IS 'Unix ms when the lease lapses; a lapsed running job is taken again.';
COMMENT ON COLUMN jobs.last_error IS 'The last error as a sentence saying what to fix.';
COMMENT ON COLUMN jobs.result IS 'The result as JSON once succeeded.';
COMMENT ON COLUMN jobs.txn_prefix IS 'Unique prefix of the client-server transaction ids the job sends, so a retry reuses them.';
COMMENT ON COLUMN jobs.created_at IS 'Unix ms when queued.';
COMMENT ON COLUMN jobs.updated_at IS 'Unix ms of the last change.';
