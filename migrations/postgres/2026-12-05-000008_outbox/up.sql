-- The outbox (DESIGN §7.4): what the platform is told, written in the transaction of the change
-- that causes it, with a sequence number per tenant that the events feed and webhooks page by.
-- Expand only: new tables and indexes.

CREATE TABLE outbox_heads (
    tenant TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
COMMENT ON TABLE outbox_heads IS 'Per tenant, the last sequence number given to an outbox event. Appending raises it with UPDATE … RETURNING inside the change''s transaction; the row lock held to commit makes a tenant''s sequence numbers commit in order. Never pruned.';
COMMENT ON COLUMN outbox_heads.tenant IS 'The tenant, case kept.';
COMMENT ON COLUMN outbox_heads.last_seq IS 'The sequence number of the tenant''s newest event (1 for the first); 0 never stored.';

CREATE TABLE outbox_events (
    id BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    room_kind TEXT NULL,
    room_slug TEXT NULL,
    data TEXT NOT NULL,
    CONSTRAINT outbox_events_tenant_seq UNIQUE (tenant, seq)
);
COMMENT ON TABLE outbox_events IS 'Events for the platform (the feed GET /v1/tenants/{t}/events and webhooks), one row per event; kept for retention.jobs_days.';
COMMENT ON COLUMN outbox_events.tenant IS 'The tenant, case kept.';
COMMENT ON COLUMN outbox_events.seq IS 'The event''s id in the API: 1, 2, 3… per tenant, in commit order.';
COMMENT ON COLUMN outbox_events.type IS 'room.ready | room.failed | room.lost | room.replaced | room.deleted | job.dead | message.sent | moderation.applied | member.joined | member.left.';
COMMENT ON COLUMN outbox_events.at_ms IS 'Unix ms of the change.';
COMMENT ON COLUMN outbox_events.room_kind IS 'event | group; NULL when the event is about no room.';
COMMENT ON COLUMN outbox_events.room_slug IS 'The room''s current slug at the time; NULL when the event is about no room.';
COMMENT ON COLUMN outbox_events.data IS 'A JSON object with the event''s details (room ids, job id and error, event id, user id); never secrets or chat content.';
CREATE INDEX outbox_events_at ON outbox_events (at_ms);

-- A job's end tells the platform which moderation calls it carried out (moderation.applied).
CREATE INDEX moderation_log_job ON moderation_log (job_id) WHERE job_id IS NOT NULL;
