-- Moderation as declared state (bans and mutes, per room or tenant-wide), its audit log, and job
-- keys (a scheduled lifting that a later call replaces or cancels; a message's Idempotency-Key).
-- Expand only: new tables and a nullable column.

ALTER TABLE jobs ADD COLUMN key TEXT;
COMMENT ON COLUMN jobs.key IS 'Names what the job is for, per tenant: a queued job with the same key is replaced or cancelled instead of a second one running (the lifting of a ban or mute), or a repeated call answers with the first job (a message''s Idempotency-Key). NULL: no key.';
CREATE INDEX jobs_key ON jobs (tenant_id, key) WHERE key IS NOT NULL;

CREATE TABLE moderation (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    room_key BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT,
    expires_at BIGINT,
    actor TEXT,
    lifted_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT moderation_scope_key UNIQUE (tenant_id, room_key, user_id, kind)
);
COMMENT ON TABLE moderation IS 'Bans and mutes the platform declared; ensure_room converges every managed room of the tenant to them.';
COMMENT ON COLUMN moderation.tenant_id IS 'The tenant, case kept.';
COMMENT ON COLUMN moderation.room_key IS 'rooms.id of the room; 0 for a tenant-wide ban or mute (every managed room of the tenant, also rooms declared later).';
COMMENT ON COLUMN moderation.user_id IS 'The Matrix user banned or muted.';
COMMENT ON COLUMN moderation.kind IS 'ban | mute.';
COMMENT ON COLUMN moderation.reason IS 'The platform''s reason, given to Matrix with the ban.';
COMMENT ON COLUMN moderation.expires_at IS 'Unix ms when it lifts by itself; NULL: until the platform lifts it.';
COMMENT ON COLUMN moderation.actor IS 'The platform user who acted (X-OpenMeet-Actor), when given.';
COMMENT ON COLUMN moderation.lifted_at IS 'Unix ms it was lifted; the row stays until the rooms are converged (unbanned, the level restored), then goes. NULL: in force.';
COMMENT ON COLUMN moderation.created_at IS 'Unix ms.';
COMMENT ON COLUMN moderation.updated_at IS 'Unix ms.';
CREATE INDEX moderation_user ON moderation (tenant_id, user_id);

CREATE TABLE moderation_log (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    action TEXT NOT NULL,
    user_id TEXT NOT NULL,
    room_kind TEXT,
    room_slug TEXT,
    reason TEXT,
    actor TEXT,
    expires_at BIGINT,
    job_id BIGINT
);
COMMENT ON TABLE moderation_log IS 'The audit log: one entry per moderation call, written in the transaction that stores it. Kept for retention.jobs_days.';
COMMENT ON COLUMN moderation_log.tenant_id IS 'The tenant, case kept.';
COMMENT ON COLUMN moderation_log.at IS 'Unix ms of the call.';
COMMENT ON COLUMN moderation_log.action IS 'ban | unban | mute | unmute | redact, as the call asked.';
COMMENT ON COLUMN moderation_log.user_id IS 'The user acted on.';
COMMENT ON COLUMN moderation_log.room_kind IS 'event | group; NULL for a tenant-wide call.';
COMMENT ON COLUMN moderation_log.room_slug IS 'The room''s slug at the time of the call; NULL for a tenant-wide call.';
COMMENT ON COLUMN moderation_log.reason IS 'The platform''s reason.';
COMMENT ON COLUMN moderation_log.actor IS 'X-OpenMeet-Actor, when given.';
COMMENT ON COLUMN moderation_log.expires_at IS 'Unix ms until which a ban or mute holds; NULL: until lifted, or not applicable.';
COMMENT ON COLUMN moderation_log.job_id IS 'jobs.id of the job that carries the call out.';
CREATE INDEX moderation_log_tenant ON moderation_log (tenant_id, id);
CREATE INDEX moderation_log_at ON moderation_log (at);
