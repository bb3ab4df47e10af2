-- Webhook delivery: one cursor per tenant with a webhook, its retry state and its lease.
-- Column meanings are documented in ../../postgres/2026-12-05-000009_webhook_deliveries/up.sql.

CREATE TABLE webhook_deliveries (
    tenant TEXT PRIMARY KEY,
    delivered_seq BIGINT NOT NULL,     -- outbox seq acknowledged or given up; new: the head
    attempts INT NOT NULL DEFAULT 0,   -- failed attempts at the next event
    next_attempt_ms BIGINT NOT NULL,   -- unix ms; backoff
    failing_since_ms BIGINT NULL,      -- first failure of the next event; NULL: healthy
    last_error TEXT NULL,              -- a sentence, never a secret
    last_error_ms BIGINT NULL,
    last_delivered_ms BIGINT NULL,
    failed_total BIGINT NOT NULL DEFAULT 0,  -- events given up after the retry window
    last_failed_seq BIGINT NULL,
    lease_owner TEXT NULL,             -- jobs.worker_id of the delivering replica
    lease_until_ms BIGINT NULL,
    created_ms BIGINT NOT NULL
);
