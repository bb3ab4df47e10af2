-- Reports that reach the tenant (DESIGN §7.3 "Across the tenant"): a report a member made through
-- Synapse's report endpoints about a managed room or one of its events, routed to the daemon by
-- the reverse proxy. It holds chat content (the reported event), so it is pruned with the inbox's
-- window (`retention.inbox_days`). A new table: the previous release reads nothing here.
CREATE TABLE reports (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    room_kind TEXT NOT NULL,
    room_slug TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT,
    reporter TEXT NOT NULL,
    reason TEXT,
    score BIGINT,
    event_sender TEXT,
    event_type TEXT,
    event_content TEXT,
    at BIGINT NOT NULL,
    forwarded_at BIGINT,
    forward_error TEXT
);
COMMENT ON TABLE reports IS 'Reports members made about a managed room or one of its events (Synapse''s report endpoints, routed to the daemon); pruned after retention.inbox_days.';
COMMENT ON COLUMN reports.tenant_id IS 'The tenant whose room was reported, case kept.';
COMMENT ON COLUMN reports.room_kind IS 'The room''s kind (event, group) when the report arrived.';
COMMENT ON COLUMN reports.room_slug IS 'The room''s slug when the report arrived.';
COMMENT ON COLUMN reports.room_id IS 'The Matrix room id.';
COMMENT ON COLUMN reports.event_id IS 'The reported event; NULL for a report of the room itself.';
COMMENT ON COLUMN reports.reporter IS 'The Matrix user who reported, as Synapse''s whoami named the token''s owner.';
COMMENT ON COLUMN reports.reason IS 'The reporter''s reason, as given; NULL when none was given.';
COMMENT ON COLUMN reports.score IS 'The score of an event report, when given (-100 to 0 in older clients); NULL otherwise.';
COMMENT ON COLUMN reports.event_sender IS 'The reported event''s sender, as the tenant bot read the event; NULL for a room report.';
COMMENT ON COLUMN reports.event_type IS 'The reported event''s type; NULL for a room report.';
COMMENT ON COLUMN reports.event_content IS 'The reported event''s content (a JSON object) as the tenant bot read it; NULL for a room report.';
COMMENT ON COLUMN reports.at IS 'Unix ms the report arrived.';
COMMENT ON COLUMN reports.forwarded_at IS 'Unix ms the report reached the homeserver (with the reporter''s token, or later by the forward_report job as the tenant bot); NULL: not yet.';
COMMENT ON COLUMN reports.forward_error IS 'What the homeserver answered when it refused the forwarded report (it is not tried again); NULL otherwise.';
CREATE INDEX reports_tenant ON reports (tenant_id, id);
CREATE INDEX reports_at ON reports (at);
