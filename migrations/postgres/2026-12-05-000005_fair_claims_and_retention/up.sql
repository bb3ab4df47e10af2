-- Fair claims: the tenants with runnable jobs, and each one's runnable jobs in id order.
CREATE INDEX jobs_runnable_by_tenant ON jobs (tenant_id, id) WHERE status IN ('queued', 'running');

-- The status report lists failed and dead jobs per tenant (it listed only dead ones before).
CREATE INDEX jobs_failed_by_tenant ON jobs (tenant_id, id) WHERE status IN ('failed', 'dead');
DROP INDEX jobs_dead_by_tenant;

-- Retention (retention.jobs_days, retention.inbox_days): the pruner finds the oldest rows.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE status IN ('succeeded', 'failed', 'dead', 'cancelled');
CREATE INDEX inbox_events_processed ON inbox_events (received_at) WHERE processed_at IS NOT NULL;
CREATE INDEX as_transactions_received ON as_transactions (received_at);
CREATE INDEX quarantine_received ON quarantine (received_at);
