-- The outbox: what the platform is told, with a sequence number per tenant.
-- Column meanings are documented in ../../postgres/2026-12-05-000008_outbox/up.sql.

-- Per tenant, the last sequence number given (raised inside the change's transaction).
CREATE TABLE outbox_heads (
    tenant TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

-- Events for the feed and webhooks.
CREATE TABLE outbox_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    seq BIGINT NOT NULL,               -- the event's id in the API, per tenant
    type TEXT NOT NULL,                -- room.ready | … | member.left
    at_ms BIGINT NOT NULL,             -- unix ms
    room_kind TEXT NULL,               -- NULL: about no room
    room_slug TEXT NULL,
    data TEXT NOT NULL,                -- a JSON object
    CONSTRAINT outbox_events_tenant_seq UNIQUE (tenant, seq)
);
CREATE INDEX outbox_events_at ON outbox_events (at_ms);

-- A job's end finds the moderation calls it carried out.
CREATE INDEX moderation_log_job ON moderation_log (job_id) WHERE job_id IS NOT NULL;
