-- Moderation as declared state, its audit log, and job keys.
-- Column meanings are documented in ../../postgres/2026-12-05-000006_moderation_and_job_keys/up.sql.

-- What the job is for, per tenant: replaced or cancelled by a later job with the same key, or the
-- answer to a repeated call with the same Idempotency-Key. NULL: no key.
ALTER TABLE jobs ADD COLUMN key TEXT;
CREATE INDEX jobs_key ON jobs (tenant_id, key) WHERE key IS NOT NULL;

-- Bans and mutes the platform declared (room_key 0: tenant-wide).
CREATE TABLE moderation (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    room_key BIGINT NOT NULL,          -- rooms.id; 0 for tenant-wide
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,                -- ban | mute
    reason TEXT,
    expires_at BIGINT,                 -- unix ms; NULL: until lifted
    actor TEXT,                        -- X-OpenMeet-Actor
    lifted_at BIGINT,                  -- unix ms; the row goes once the rooms are converged
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT moderation_scope_key UNIQUE (tenant_id, room_key, user_id, kind)
);
CREATE INDEX moderation_user ON moderation (tenant_id, user_id);

-- The audit log: one entry per moderation call.
CREATE TABLE moderation_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    at BIGINT NOT NULL,                -- unix ms
    action TEXT NOT NULL,              -- ban | unban | mute | unmute | redact
    user_id TEXT NOT NULL,
    room_kind TEXT,                    -- NULL: tenant-wide
    room_slug TEXT,
    reason TEXT,
    actor TEXT,
    expires_at BIGINT,
    job_id BIGINT
);
CREATE INDEX moderation_log_tenant ON moderation_log (tenant_id, id);
CREATE INDEX moderation_log_at ON moderation_log (at);
