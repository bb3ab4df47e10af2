-- The outbox (DESIGN §7.4): every event the platform may care about, written in the transaction of
-- the change that causes it, numbered per tenant in commit order. The feed serves it and the
-- webhook worker delivers it. Expand only: new tables.

CREATE TABLE outbox_heads (
    tenant TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
COMMENT ON TABLE outbox_heads IS 'The last event number given out per tenant; its row lock orders appends, so numbers follow commit order.';
COMMENT ON COLUMN outbox_heads.tenant IS 'The tenant, case kept.';
COMMENT ON COLUMN outbox_heads.last_seq IS 'The seq of the tenant''s newest event (1 for the first).';

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
COMMENT ON TABLE outbox_events IS 'Events for the platform (feed and webhooks), one row per event, oldest first per tenant.';
COMMENT ON COLUMN outbox_events.tenant IS 'The tenant, case kept.';
COMMENT ON COLUMN outbox_events.seq IS 'The event''s id in the feed: monotonic per tenant, in commit order.';
COMMENT ON COLUMN outbox_events.type IS 'room.ready | room.failed | room.lost | room.replaced | room.deleted | job.dead | message.sent | moderation.applied | member.joined | member.left.';
COMMENT ON COLUMN outbox_events.at_ms IS 'Unix ms of the change.';
COMMENT ON COLUMN outbox_events.room_kind IS 'event | group; NULL when the event is not about a room.';
COMMENT ON COLUMN outbox_events.room_slug IS 'The room''s slug; NULL when the event is not about a room.';
COMMENT ON COLUMN outbox_events.data IS 'The event''s data object, JSON.';
