-- Nothing changes on PostgreSQL: several replicas may acknowledge transactions, so the unique
-- index on inbox_events.event_id stays the dedupe there. (SQLite, one process, dropped it for a
-- set in memory in this migration; the names stay in step across backends.)
SELECT 1;
