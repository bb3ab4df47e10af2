-- Reports members made about a managed room or one of its events; pruned after
-- retention.inbox_days. Column meanings: ../../postgres/2026-12-08-000019_reports/up.sql.
CREATE TABLE reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    room_kind TEXT NOT NULL,
    room_slug TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT,                     -- NULL: a report of the room itself
    reporter TEXT NOT NULL,            -- the token's owner, by whoami
    reason TEXT,
    score BIGINT,
    event_sender TEXT,                 -- the reported event, as the tenant bot read it
    event_type TEXT,
    event_content TEXT,                -- a JSON object
    at BIGINT NOT NULL,                -- unix ms
    forwarded_at BIGINT,               -- unix ms it reached the homeserver; NULL: not yet
    forward_error TEXT                 -- the homeserver's refusal; not tried again
);
CREATE INDEX reports_tenant ON reports (tenant_id, id);
CREATE INDEX reports_at ON reports (at);
