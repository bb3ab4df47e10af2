-- Webhook delivery (DESIGN §7.4, src/webhooks/): one cursor per tenant with a webhook. Events are
-- POSTed in seq order; a 2xx moves delivered_seq, a failure schedules a retry with backoff, and an
-- event still failing after the retry window (24 h) is given up (failed_total) and the cursor
-- moves on. A replica claims a tenant by taking its lease, so no two deliver one event at once.
-- Expand only: a new table.

CREATE TABLE webhook_deliveries (
    tenant TEXT PRIMARY KEY,
    delivered_seq BIGINT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    failing_since_ms BIGINT NULL,
    last_error TEXT NULL,
    last_error_ms BIGINT NULL,
    last_delivered_ms BIGINT NULL,
    failed_total BIGINT NOT NULL DEFAULT 0,
    last_failed_seq BIGINT NULL,
    lease_owner TEXT NULL,
    lease_until_ms BIGINT NULL,
    created_ms BIGINT NOT NULL
);
COMMENT ON TABLE webhook_deliveries IS 'Per tenant with a webhook: how far its events were delivered, the retry state of the next one, and the lease of the replica delivering them.';
COMMENT ON COLUMN webhook_deliveries.tenant IS 'The tenant, case kept (outbox_events.tenant).';
COMMENT ON COLUMN webhook_deliveries.delivered_seq IS 'The outbox seq up to which events were acknowledged (2xx) or given up; a new webhook starts at the tenant''s outbox head then.';
COMMENT ON COLUMN webhook_deliveries.attempts IS 'Failed attempts at the next event (0 after an acknowledgement); drives the backoff.';
COMMENT ON COLUMN webhook_deliveries.next_attempt_ms IS 'Unix ms before which the next event is not tried (backoff after a failure).';
COMMENT ON COLUMN webhook_deliveries.failing_since_ms IS 'Unix ms of the first failed attempt at the next event; NULL while deliveries succeed. The event is given up once this is older than the retry window.';
COMMENT ON COLUMN webhook_deliveries.last_error IS 'The last failure, as a sentence (HTTP status or network error; never a secret). Kept after a recovery.';
COMMENT ON COLUMN webhook_deliveries.last_error_ms IS 'Unix ms of last_error.';
COMMENT ON COLUMN webhook_deliveries.last_delivered_ms IS 'Unix ms of the last acknowledgement; NULL before the first.';
COMMENT ON COLUMN webhook_deliveries.failed_total IS 'Events given up after the retry window, ever.';
COMMENT ON COLUMN webhook_deliveries.last_failed_seq IS 'The seq of the last event given up (read it from the feed); NULL if none.';
COMMENT ON COLUMN webhook_deliveries.lease_owner IS 'jobs.worker_id of the replica delivering this tenant''s events; NULL when none.';
COMMENT ON COLUMN webhook_deliveries.lease_until_ms IS 'Unix ms until which lease_owner''s claim holds; after it another replica may take the tenant (the owner crashed).';
COMMENT ON COLUMN webhook_deliveries.created_ms IS 'Unix ms the webhook was first seen in the config.';
