DROP INDEX quarantine_received;
DROP INDEX as_transactions_received;
DROP INDEX inbox_events_processed;
DROP INDEX jobs_finished;
CREATE INDEX jobs_dead_by_tenant ON jobs (tenant_id, id) WHERE status = 'dead';
DROP INDEX jobs_failed_by_tenant;
DROP INDEX jobs_runnable_by_tenant;
