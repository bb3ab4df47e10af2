DROP TABLE moderation_log;
DROP TABLE moderation;
DROP INDEX jobs_key;
ALTER TABLE jobs DROP COLUMN key;
