DROP INDEX moderation_log_job;
DROP TABLE outbox_events;
DROP TABLE outbox_heads;
