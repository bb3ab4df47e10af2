-- The outbox: events for the platform, numbered per tenant in commit order.
-- Column meanings are documented in ../../postgres/2026-12-05-000008_outbox/up.sql.

-- The last event number given out per tenant.
CREATE TABLE outbox_heads (
    tenant TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

-- Events for the platform (feed and webhooks).
CREATE TABLE outbox_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    seq BIGINT NOT NULL,               -- monotonic per tenant
    type TEXT NOT NULL,                -- room.ready, member.joined, ...
    at_ms BIGINT NOT NULL,             -- unix ms
    room_kind TEXT NULL,               -- NULL: not about a room
    room_slug TEXT NULL,
    data TEXT NOT NULL,                -- JSON object
    CONSTRAINT outbox_events_tenant_seq UNIQUE (tenant, seq)
);
